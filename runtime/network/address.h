// IPv4 addresses, subnets and MAC addresses as values: parsing, formatting and the small
// arithmetic that IPAM and the bridge mode need. Pure; no system calls.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

namespace berth::net {

struct Ipv4Address {
  uint32_t value = 0;  // host byte order: 10.88.0.1 is 0x0a580001

  // "10.88.0.1"; kInvalidArgument otherwise.
  static Ipv4Address Parse(std::string_view text);
  std::string ToString() const;
  std::array<uint8_t, 4> Bytes() const;
  auto operator<=>(const Ipv4Address&) const = default;
};

struct Ipv4Subnet {
  Ipv4Address network;  // host bits are zero
  int prefix_len = 0;

  // "10.88.0.0/16"; host bits set ("10.88.0.1/16") or a prefix outside 0..32 are
  // kInvalidArgument, so a typo in the config cannot silently pick another subnet.
  static Ipv4Subnet Parse(std::string_view cidr);
  std::string ToString() const;
  uint32_t Mask() const;
  bool Contains(Ipv4Address address) const;
  // network + offset; offset must lie inside the subnet.
  Ipv4Address At(uint32_t offset) const;
  Ipv4Address Broadcast() const;
  uint64_t Size() const { return uint64_t{1} << (32 - prefix_len); }
  auto operator<=>(const Ipv4Subnet&) const = default;
};

// The bridge mode's optional IPv6 subnet. An instance's IPv6 address is the subnet with
// its IPv4 address in the low 32 bits (fd00:88::/64 and 10.88.0.5 give fd00:88::a58:5):
// unique because the IPv4 lease is, and as crash-safe, with no second IPAM.
struct Ipv6Subnet {
  std::array<uint8_t, 16> network{};  // host bits are zero
  int prefix_len = 0;

  // "fd00:88::/64"; a prefix outside 1..96 (32 bits are needed for the IPv4 address) or
  // host bits set are kInvalidArgument.
  static Ipv6Subnet Parse(std::string_view cidr);
  std::string ToString() const;
  // The subnet with `low` in its last 32 bits, canonical text (inet_ntop).
  std::string At(uint32_t low) const;
  auto operator<=>(const Ipv6Subnet&) const = default;
};

// Canonical text of an IPv6 address; kInvalidArgument when `text` is not one.
std::string CanonicalIpv6(std::string_view text);

struct MacAddress {
  std::array<uint8_t, 6> bytes{};

  // "02:42:0a:58:00:05" (case-insensitive); kInvalidArgument otherwise.
  static MacAddress Parse(std::string_view text);
  // Docker's scheme: 02:42 (locally administered, unicast) followed by the IPv4 bytes, so
  // the MAC is unique wherever the address is, and stable across restarts.
  static MacAddress FromIpv4(Ipv4Address address);
  std::string ToString() const;  // lower-case, colon-separated
  auto operator<=>(const MacAddress&) const = default;
};

// FNV-1a of `text`: the same on every run and build (std::hash is not), for the interface
// names and MACs derived from ids that must survive a berthd restart.
uint32_t StableHash(std::string_view text);
// `prefix` + 8 hex digits of StableHash(key); at most 15 bytes for a prefix of up to 7.
std::string HashedIfname(std::string_view prefix, std::string_view key);

}  // namespace berth::net
