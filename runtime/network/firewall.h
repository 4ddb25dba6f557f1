// The nftables rules of the bridge mode, in tables of our own named "berth": one in the ip
// family for NAT, in the host's namespace, and one in the bridge family for anti-spoofing,
// in the bridge's own namespace (bridge_network.h); no other table is ever read or touched.
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
  // The host's way to the instances: the host end of the transit veth ("berth0-h").
  std::string transit;
  Ipv4Subnet subnet;
  // The bridge's address (the instances' gateway). It lives in the bridge's namespace, not
  // the host's; published ports also answer on it from the host.
  std::optional<Ipv4Address> gateway;
  std::vector<FirewallEndpoint> endpoints;
};

// For the host's namespace: replaces our ip-family table (NAT: published ports, egress,
// hairpin) with exactly `state`, in one nft transaction. It also removes a bridge-family
// table of ours from the host, where the bridge's rules lived before the bridge had a
// namespace of its own. With no endpoints: nothing of ours remains in the host.
std::string RenderNatRuleset(const FirewallState& state);
// For the bridge's namespace: replaces our bridge-family table (anti-spoofing) with
// exactly `state`; with no endpoints, removes it.
std::string RenderBridgeRuleset(const FirewallState& state);
// For the bridge's namespace, in a table RenderBridgeRuleset made: adds or deletes one
// endpoint's elements in its sets, in one transaction, leaving the table exactly as
// RenderBridgeRuleset of the state with (or without) that endpoint would. An attach or
// detach then changes no chain: a whole table replaced unregisters and registers its hook,
// and each costs the kernel an RCU grace period.
enum class ElementChange { kAdd, kDelete };
std::string RenderBridgeElements(const std::string& table, const FirewallEndpoint& endpoint,
                                 ElementChange change);
// Removes our tables of both families if present (idempotent).
std::string RenderRemoval(const std::string& table = "berth");

// Runs an nft script through libnftables inside the namespace (netns_fd < 0: the current
// one). Failures are kSystem errors carrying nft's own message ("nft: Error: ...").
void RunNft(int netns_fd, const std::string& script);
// Runs a command and returns its output (e.g. "list table bridge berth").
std::string QueryNft(int netns_fd, const std::string& command);

}  // namespace berth::net
