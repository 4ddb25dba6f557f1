#include "runtime/network/firewall.h"

#include <nftables/libnftables.h>

#include <charconv>
#include <memory>
#include <mutex>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/network/netns.h"

namespace berth::net {
namespace {

Error BadMapping(const std::string& text, const std::string& why) {
  return Error(ErrorKind::kInvalidArgument, "published port \"" + text + "\" is not valid: " + why);
}

uint16_t ParsePort(const std::string& text, const std::string& whole) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value == 0 ||
      value > 65535) {
    throw BadMapping(whole, "port \"" + text + "\" is not in 1-65535");
  }
  return static_cast<uint16_t>(value);
}

std::string Quote(const std::string& name) { return "\"" + name + "\""; }

// Nothing from a request may inject nft syntax: interface and table names are limited to
// a safe alphabet here, and addresses and ports are rendered from typed values.
void CheckIfname(const std::string& name) {
  if (name.empty() || name.size() > 15) {
    throw Error(ErrorKind::kInvalidArgument, "interface name \"" + name + "\" is not valid");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) {
      throw Error(ErrorKind::kInvalidArgument,
                  "interface name \"" + name + "\" is not valid for a firewall rule");
    }
  }
}

void CheckTable(const std::string& table) {
  if (table.empty() || table.size() > 32) {
    throw Error(ErrorKind::kInvalidArgument, "nft table name \"" + table + "\" is not valid");
  }
  for (char c : table) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      throw Error(ErrorKind::kInvalidArgument, "nft table name \"" + table + "\" is not valid");
    }
  }
}

std::mutex& NftMutex() {
  // libnftables keeps some process-wide state (its parser's scanner, caches): one script
  // at a time.
  static std::mutex mu;
  return mu;
}

struct CtxFree {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};

std::string Run(int netns_fd, const std::string& script, bool want_output) {
  return RunInNetns(netns_fd, [&]() -> std::string {
    std::lock_guard lock(NftMutex());
    std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) throw Error(ErrorKind::kSystem, "nft: cannot create a libnftables context");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    if (nft_run_cmd_from_buffer(ctx.get(), script.c_str()) != 0) {
      const char* err = nft_ctx_get_error_buffer(ctx.get());
      std::string msg = err ? err : "";
      while (!msg.empty() && msg.back() == '\n') msg.pop_back();
      throw Error(ErrorKind::kSystem, "nft: " + msg);
    }
    const char* out = nft_ctx_get_output_buffer(ctx.get());
    return want_output && out ? std::string(out) : std::string();
  });
}

std::string RenderFamilyRemoval(const std::string& family, const std::string& table) {
  CheckTable(table);
  // "table X" creates it when missing, so the delete that follows never fails.
  return "table " + family + " " + table + "\ndelete table " + family + " " + table + "\n";
}

}  // namespace

PortMapping ParsePortMapping(const std::string& text) {
  PortMapping mapping;
  std::string rest = text;
  if (auto slash = rest.rfind('/'); slash != std::string::npos) {
    mapping.protocol = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (mapping.protocol != "tcp" && mapping.protocol != "udp") {
      throw BadMapping(text, "protocol must be tcp or udp");
    }
  }
  std::vector<std::string> parts;
  std::stringstream in(rest);
  for (std::string part; std::getline(in, part, ':');) parts.push_back(part);
  if (parts.size() == 3) {
    try {
      mapping.host_ip = Ipv4Address::Parse(parts[0]);
    } catch (const Error&) {
      throw BadMapping(text, "host address \"" + parts[0] + "\" is not IPv4");
    }
    parts.erase(parts.begin());
  }
  if (parts.size() != 2) throw BadMapping(text, "expected [HOST_IP:]HOST_PORT:PORT[/PROTO]");
  mapping.host_port = ParsePort(parts[0], text);
  mapping.container_port = ParsePort(parts[1], text);
  return mapping;
}

std::string ToString(const PortMapping& m) {
  std::string s = m.host_ip ? m.host_ip->ToString() + ":" : "";
  return s + std::to_string(m.host_port) + ":" + std::to_string(m.container_port) + "/" +
         m.protocol;
}

std::string RenderNatRuleset(const FirewallState& state) {
  std::string out = RenderRemoval(state.table);
  if (state.endpoints.empty()) return out;
  CheckIfname(state.transit);
  const std::string subnet = state.subnet.ToString();
  const std::string transit = Quote(state.transit);

  std::ostringstream nat;
  nat << "table ip " << state.table << " {\n";
  // Published ports: DNAT for connections to any local address of the host, whether they
  // arrive from outside or from an instance (prerouting) or start on the host itself
  // (output); and, from the host, to the bridge's address, which is no longer a local one.
  std::string match = "fib daddr type local jump published\n";
  if (state.gateway) {
    match += "    ip daddr " + state.gateway->ToString() + " jump published\n";
  }
  nat << "  chain prerouting {\n"
      << "    type nat hook prerouting priority dstnat; policy accept;\n"
      << "    " << match << "  }\n";
  nat << "  chain output {\n"
      << "    type nat hook output priority -100; policy accept;\n"
      << "    " << match << "  }\n";
  nat << "  chain published {\n";
  for (const auto& ep : state.endpoints) {
    for (const auto& p : ep.ports) {
      if (p.protocol != "tcp" && p.protocol != "udp") {
        throw Error(ErrorKind::kInvalidArgument, "protocol \"" + p.protocol + "\" is not valid");
      }
      nat << "    ";
      if (p.host_ip) nat << "ip daddr " << p.host_ip->ToString() << " ";
      nat << p.protocol << " dport " << p.host_port << " dnat to " << ep.address.ToString() << ":"
          << p.container_port << "\n";
    }
  }
  nat << "  }\n";
  nat << "  chain postrouting {\n"
      << "    type nat hook postrouting priority srcnat; policy accept;\n"
      // Egress: instances leave the host with the host's address.
      << "    ip saddr " << subnet << " ip daddr != " << subnet << " oifname != " << transit
      << " masquerade\n"
      // Hairpin: an instance reaching another through a published port of the host goes
      // back toward the instances; without the host's address as its source the answer
      // would go straight back over the bridge, bypassing the host's DNAT.
      << "    ip saddr " << subnet << " ip daddr " << subnet << " ct status dnat oifname "
      << transit
      << " masquerade\n"
      // The host's own connections to 127.0.0.1:<published port>: the instance cannot
      // answer a loopback source, so they reach it from the transit's address.
      << "    ip saddr 127.0.0.0/8 oifname " << transit << " masquerade\n  }\n";
  nat << "}\n";
  return out + nat.str();
}

namespace {

// One endpoint's elements in each set of the bridge table (ipv6 empty without IPv6).
struct BridgeElements {
  std::string port, mac, ipv4, arp, ipv6;
};

BridgeElements ElementsOf(const FirewallEndpoint& ep) {
  CheckIfname(ep.host_ifname);
  const std::string port = Quote(ep.host_ifname), mac = ep.mac.ToString();
  const std::string ip = ep.address.ToString();
  BridgeElements e{port, port + " . " + mac, port + " . " + mac + " . " + ip,
                   port + " . " + mac + " . " + mac + " . " + ip, ""};
  if (!ep.address6.empty()) e.ipv6 = port + " . " + mac + " . " + CanonicalIpv6(ep.address6);
  return e;
}

}  // namespace

std::string RenderBridgeElements(const std::string& table, const FirewallEndpoint& endpoint,
                                 ElementChange change) {
  CheckTable(table);
  const BridgeElements e = ElementsOf(endpoint);
  const std::string verb = change == ElementChange::kAdd ? "add" : "delete";
  std::string out;
  auto element = [&](const char* set, const std::string& value) {
    if (!value.empty())
      out += verb + " element bridge " + table + " " + set + " { " + value + " }\n";
  };
  element("ipv4_sources", e.ipv4);
  element("arp_sources", e.arp);
  element("ipv6_sources", e.ipv6);
  element("mac_sources", e.mac);
  element("ports", e.port);
  return out;
}

std::string RenderBridgeRuleset(const FirewallState& state) {
  std::string out = RenderFamilyRemoval("bridge", state.table);
  if (state.endpoints.empty()) return out;
  // Anti-spoofing at the bridge's door: the bridge family's prerouting hook sees every
  // frame that enters by a port, before it is switched or delivered to the bridge's own
  // stack (and so routed toward the host), and needs no br_netfilter.
  //
  // Every frame crosses this chain, so its cost is paid per packet (and on a busy host the
  // chain's memory is cold each time): ONE base chain, and each frame from an instance is
  // decided by one rule and one hash lookup keyed on (port, source MAC, source address) —
  // the same few expressions whatever the number of instances — instead of walking a
  // per-instance list. What is allowed: IPv4 from its own MAC and address, ARP whose
  // Ethernet and ARP senders are its own MAC and address, IPv6 from its own MAC and its
  // own, link-local or unspecified address; anything else entering by an instance's port
  // is dropped (dropped frames are not learned by the bridge). `ether type` is matched
  // explicitly, not left to nft's `meta protocol` dependency: it reads the tag of a
  // VLAN-tagged frame even when the tag travels outside the payload, so tagged frames stay
  // dropped.
  //
  // No connection tracking is asked for here: the bridge's namespace has br_netfilter's
  // switches off and no ip-family table, so bridged frames never reach the IP hooks or
  // conntrack (the host's br_netfilter setting does not reach into this namespace).
  std::vector<std::string> ports, macs, v4, arps, v6;
  for (const auto& ep : state.endpoints) {
    BridgeElements e = ElementsOf(ep);
    ports.push_back(e.port);
    macs.push_back(e.mac);
    v4.push_back(e.ipv4);
    arps.push_back(e.arp);
    if (!e.ipv6.empty()) v6.push_back(e.ipv6);
  }
  auto set = [](const std::string& name, const std::string& type,
                const std::vector<std::string>& elements) {
    std::string s = "  set " + name + " {\n    type " + type + "\n";
    if (!elements.empty()) {
      s += "    elements = {";
      for (size_t i = 0; i < elements.size(); ++i) {
        s += (i ? ",\n      " : " ") + elements[i];
      }
      s += " }\n";
    }
    return s + "  }\n";
  };
  std::ostringstream br;
  br << "table bridge " << state.table << " {\n"
     << set("ports", "ifname", ports) << set("mac_sources", "ifname . ether_addr", macs)
     << set("ipv4_sources", "ifname . ether_addr . ipv4_addr", v4)
     << set("arp_sources", "ifname . ether_addr . ether_addr . ipv4_addr", arps)
     << set("ipv6_sources", "ifname . ether_addr . ipv6_addr", v6);
  br << "  chain prerouting {\n"
     << "    type filter hook prerouting priority -300; policy accept;\n"
     << "    ether type ip iifname . ether saddr . ip saddr @ipv4_sources accept\n"
     << "    ether type arp iifname . ether saddr . arp saddr ether . arp saddr ip @arp_sources "
        "accept\n"
     << "    ether type ip6 iifname . ether saddr . ip6 saddr @ipv6_sources accept\n"
     << "    ether type ip6 ip6 saddr { ::, fe80::/10 } iifname . ether saddr @mac_sources "
        "accept\n"
     << "    iifname @ports drop\n";
  br << "  }\n}\n";
  return out + br.str();
}

std::string RenderRemoval(const std::string& table) {
  return RenderFamilyRemoval("ip", table) + RenderFamilyRemoval("bridge", table);
}

void RunNft(int netns_fd, const std::string& script) { Run(netns_fd, script, false); }

std::string QueryNft(int netns_fd, const std::string& command) {
  return Run(netns_fd, command, true);
}

}  // namespace berth::net
