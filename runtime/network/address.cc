#include "runtime/network/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstdio>

#include "runtime/common/error.h"

namespace berth::net {
namespace {

Error Invalid(std::string_view what, std::string_view text) {
  return Error(ErrorKind::kInvalidArgument,
               std::string(what) + " \"" + std::string(text) + "\" is not valid");
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Ipv4Address Ipv4Address::Parse(std::string_view text) {
  // inet_pton accepts only the dotted quad (no "10.1" shorthands, no octal).
  std::string copy(text);
  in_addr addr{};
  if (inet_pton(AF_INET, copy.c_str(), &addr) != 1) throw Invalid("IPv4 address", text);
  return Ipv4Address{ntohl(addr.s_addr)};
}

std::string Ipv4Address::ToString() const {
  auto b = Bytes();
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
  return buf;
}

std::array<uint8_t, 4> Ipv4Address::Bytes() const {
  return {static_cast<uint8_t>(value >> 24), static_cast<uint8_t>(value >> 16),
          static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value)};
}

Ipv4Subnet Ipv4Subnet::Parse(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) throw Invalid("IPv4 subnet", cidr);
  Ipv4Subnet subnet;
  try {
    subnet.network = Ipv4Address::Parse(cidr.substr(0, slash));
  } catch (const Error&) {
    throw Invalid("IPv4 subnet", cidr);
  }
  auto len = cidr.substr(slash + 1);
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), subnet.prefix_len);
  if (ec != std::errc() || end != len.data() + len.size() || len.empty() || subnet.prefix_len < 0 ||
      subnet.prefix_len > 32) {
    throw Invalid("IPv4 subnet", cidr);
  }
  if ((subnet.network.value & ~subnet.Mask()) != 0) {
    throw Error(ErrorKind::kInvalidArgument,
                "IPv4 subnet \"" + std::string(cidr) + "\" has host bits set");
  }
  return subnet;
}

Ipv6Subnet Ipv6Subnet::Parse(std::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string_view::npos) throw Invalid("IPv6 subnet", cidr);
  Ipv6Subnet subnet;
  std::string addr(cidr.substr(0, slash));
  if (inet_pton(AF_INET6, addr.c_str(), subnet.network.data()) != 1) {
    throw Invalid("IPv6 subnet", cidr);
  }
  auto len = cidr.substr(slash + 1);
  auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), subnet.prefix_len);
  if (ec != std::errc() || end != len.data() + len.size() || len.empty() || subnet.prefix_len < 1 ||
      subnet.prefix_len > 96) {
    throw Error(ErrorKind::kInvalidArgument,
                "IPv6 subnet \"" + std::string(cidr) +
                    "\" is not valid (want a prefix of 1..96: instances get their IPv4 "
                    "address in the last 32 bits)");
  }
  for (int bit = subnet.prefix_len; bit < 128; ++bit) {
    if (subnet.network[bit / 8] & (0x80 >> (bit % 8))) {
      throw Error(ErrorKind::kInvalidArgument,
                  "IPv6 subnet \"" + std::string(cidr) + "\" has host bits set");
    }
  }
  return subnet;
}

std::string Ipv6Subnet::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, network.data(), buf, sizeof buf);
  return std::string(buf) + "/" + std::to_string(prefix_len);
}

std::string Ipv6Subnet::At(uint32_t low) const {
  std::array<uint8_t, 16> a = network;
  for (int i = 0; i < 4; ++i) a[12 + i] = static_cast<uint8_t>(low >> (24 - 8 * i));
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  return buf;
}

std::string CanonicalIpv6(std::string_view text) {
  std::string copy(text);
  unsigned char a[16];
  if (inet_pton(AF_INET6, copy.c_str(), a) != 1) throw Invalid("IPv6 address", text);
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a, buf, sizeof buf);
  return buf;
}

std::string Ipv4Subnet::ToString() const {
  return network.ToString() + "/" + std::to_string(prefix_len);
}

uint32_t Ipv4Subnet::Mask() const {
  return prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - prefix_len);
}

bool Ipv4Subnet::Contains(Ipv4Address address) const {
  return (address.value & Mask()) == network.value;
}

Ipv4Address Ipv4Subnet::At(uint32_t offset) const {
  if (offset >= Size()) {
    throw Error(ErrorKind::kInvalidArgument,
                "offset " + std::to_string(offset) + " is outside " + ToString());
  }
  return Ipv4Address{network.value + offset};
}

Ipv4Address Ipv4Subnet::Broadcast() const { return Ipv4Address{network.value | ~Mask()}; }

MacAddress MacAddress::Parse(std::string_view text) {
  MacAddress mac;
  if (text.size() != 17) throw Invalid("MAC address", text);
  for (size_t i = 0; i < 6; ++i) {
    int hi = HexDigit(text[i * 3]);
    int lo = HexDigit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != ':')) throw Invalid("MAC address", text);
    mac.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return mac;
}

MacAddress MacAddress::FromIpv4(Ipv4Address address) {
  auto b = address.Bytes();
  return MacAddress{{0x02, 0x42, b[0], b[1], b[2], b[3]}};
}

std::string MacAddress::ToString() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

uint32_t StableHash(std::string_view text) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string HashedIfname(std::string_view prefix, std::string_view key) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", StableHash(key));
  return std::string(prefix) + hex;
}

}  // namespace berth::net
