// The nftables rules of the bridge mode, in tables of our own named "berth" (one in the
// ip family for NAT, one in the bridge family for anti-spoofing); no other table is ever
// read or touched.
//
// The rules are rendered from the whole desired state (pure functions, unit-tested) and
// applied through libnftables as one script, which nftables runs as ONE transaction:
// "create the table if missing; delete it; create it with these chains" — so a sync either
// replaces everything of ours atomically or changes nothing, and rules can never drift
// from the state berthd has on disk. See docs/networking.md for what is enforced.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/network/address.h"

namespace berth::net {

struct PortMapping {
  std::string protocol = "tcp";        // "tcp" or "udp"
  std::optional<Ipv4Address> host_ip;  // empty: every local address of the host
  uint16_t host_port = 0;
  uint16_t container_port = 0;
  bool operator==(const PortMapping&) const = default;
};

// "8080:80", "8080:80/udp", "127.0.0.1:8080:80/tcp" (Docker's -p syntax without ranges).
PortMapping ParsePortMapping(const std::string& text);
std::string ToString(const PortMapping& mapping);

// One attached instance as the firewall sees it.
struct FirewallEndpoint {
  std::string host_ifname;  // its host-side veth: the bridge port its frames come in by
  Ipv4Address address;
  MacAddress mac;
  std::vector<PortMapping> ports;
  std::string address6;  // its IPv6 address (bridge mode with subnet6); empty: none
};

struct FirewallState {
  std::string table = "berth";
  std::string bridge;  // the host bridge ("berth0")
  Ipv4Subnet subnet;
  // The bridge's own addresses: traffic to them is routed by the host (NAT, published
  // ports) and keeps connection tracking; traffic between instances does not need it.
  std::optional<Ipv4Address> gateway;
  std::string subnet6;   // "fd00:88::/64" or empty
  std::string gateway6;  // "fd00:88::1" or empty
  std::vector<FirewallEndpoint> endpoints;
};

// Replaces our tables with exactly `state` (one nft transaction). With no endpoints it is
// the removal script: nothing of ours remains.
std::string RenderRuleset(const FirewallState& state);
// Removes our tables if present (idempotent).
std::string RenderRemoval(const std::string& table = "berth");

// Runs an nft script through libnftables inside the namespace (netns_fd < 0: the current
// one). Failures are kSystem errors carrying nft's own message ("nft: Error: ...").
void RunNft(int netns_fd, const std::string& script);
// Runs a command and returns its output (e.g. "list table bridge berth").
std::string QueryNft(int netns_fd, const std::string& command);

}  // namespace berth::net
