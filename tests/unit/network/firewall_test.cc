#include "runtime/network/firewall.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::net {
namespace {

TEST(FirewallTest, ParsesDockerStylePortMappings) {
  auto m = ParsePortMapping("8080:80");
  EXPECT_EQ(m.protocol, "tcp");
  EXPECT_EQ(m.host_port, 8080);
  EXPECT_EQ(m.container_port, 80);
  EXPECT_FALSE(m.host_ip);
  auto u = ParsePortMapping("127.0.0.1:5353:53/udp");
  EXPECT_EQ(u.protocol, "udp");
  EXPECT_EQ(u.host_ip->ToString(), "127.0.0.1");
  EXPECT_EQ(ToString(u), "127.0.0.1:5353:53/udp");
  EXPECT_EQ(ParsePortMapping(ToString(u)), u);
  for (const char* bad : {"80", "0:80", "70000:80", "80:80/sctp", "x:80:80", "80:", ":80",
                          "1:2:3:4", "80:80/", "8080:80; drop"}) {
    EXPECT_THROW(ParsePortMapping(bad), Error) << bad;
  }
}

TEST(FirewallTest, NoEndpointsMeansRemoveOurTablesOnly) {
  FirewallState state;
  state.transit = "berth0-h";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  EXPECT_EQ(RenderNatRuleset(state),
            "table ip berth\ndelete table ip berth\ntable bridge berth\ndelete table bridge "
            "berth\n")
      << "the host also loses a bridge table of ours from the days the bridge lived there";
  EXPECT_EQ(RenderRemoval("berth"), RenderNatRuleset(state));
  EXPECT_EQ(RenderBridgeRuleset(state), "table bridge berth\ndelete table bridge berth\n");
}

FirewallState OneInstance() {
  FirewallState state;
  state.transit = "berth0-h";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-0011aabb",
                             ip,
                             MacAddress::FromIpv4(ip),
                             {ParsePortMapping("8080:80"), ParsePortMapping("1.2.3.4:53:53/udp")},
                             ""});
  return state;
}

TEST(FirewallTest, RendersNatKeyedOnTheTransit) {
  FirewallState state = OneInstance();
  std::string s = RenderNatRuleset(state);
  auto has = [&](const std::string& needle) { return s.find(needle) != std::string::npos; };
  EXPECT_EQ(s.rfind("table ip berth\ndelete table ip berth\n", 0), 0u) << "replace, atomically";
  EXPECT_TRUE(has("tcp dport 8080 dnat to 10.88.0.5:80\n")) << s;
  EXPECT_TRUE(has("ip daddr 1.2.3.4 udp dport 53 dnat to 10.88.0.5:53\n")) << s;
  EXPECT_TRUE(has("type nat hook output priority -100")) << "published ports from the host";
  EXPECT_TRUE(
      has("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 oifname != \"berth0-h\" "
          "masquerade"))
      << s;
  EXPECT_TRUE(
      has("ip saddr 10.88.0.0/16 ip daddr 10.88.0.0/16 ct status dnat oifname "
          "\"berth0-h\" masquerade"))
      << "hairpin: " << s;
  EXPECT_TRUE(has("ip saddr 127.0.0.0/8 oifname \"berth0-h\" masquerade")) << "ports on 127.0.0.1";
  EXPECT_FALSE(has("bridge berth {")) << "the bridge's table is not the host's";
  EXPECT_FALSE(has("ip daddr 10.88.0.1 jump published")) << "no gateway given";
  state.gateway = Ipv4Address::Parse("10.88.0.1");
  s = RenderNatRuleset(state);
  EXPECT_NE(s.find("ip daddr 10.88.0.1 jump published"),
            s.rfind("ip daddr 10.88.0.1 jump published"))
      << "in prerouting and output: " << s;
  EXPECT_TRUE(
      has("type nat hook output priority -100; policy accept;\n"
          "    fib daddr type local jump published\n"
          "    ip daddr 10.88.0.1 jump published\n"))
      << "from the host, ports answer on the gateway too: " << s;
}

TEST(FirewallTest, RendersAntiSpoofingForTheBridgeNamespace) {
  FirewallState state = OneInstance();
  state.gateway = Ipv4Address::Parse("10.88.0.1");
  std::string s = RenderBridgeRuleset(state);
  auto has = [&](const std::string& needle) { return s.find(needle) != std::string::npos; };
  EXPECT_EQ(s.rfind("table bridge berth\ndelete table bridge berth\ntable bridge berth {", 0), 0u)
      << s;
  EXPECT_FALSE(has("table ip")) << "NAT stays in the host: " << s;
  // One base chain; each instance is a set element (port, MAC, address), not a list of
  // rules that every frame walks.
  EXPECT_EQ(s.find("type filter hook prerouting"), s.rfind("type filter hook prerouting"))
      << "one bridge chain: " << s;
  EXPECT_TRUE(has("\"bt-0011aabb\" . 02:42:0a:58:00:05 . 10.88.0.5")) << s;
  EXPECT_TRUE(has("\"bt-0011aabb\" . 02:42:0a:58:00:05 . 02:42:0a:58:00:05 . 10.88.0.5")) << s;
  // The hot path is the first rule.
  EXPECT_TRUE(
      has("type filter hook prerouting priority -300; policy accept;\n"
          "    ether type ip iifname . ether saddr . ip saddr @ipv4_sources accept\n"))
      << s;
  EXPECT_TRUE(
      has("    ether type arp iifname . ether saddr . arp saddr ether . arp saddr ip "
          "@arp_sources accept\n"))
      << s;
  EXPECT_TRUE(has("    iifname @ports drop\n  }\n}\n")) << "the rest from a port: dropped, last";
  EXPECT_FALSE(has("notrack")) << "br_netfilter is off in the bridge namespace: nothing to untrack";
}

TEST(FirewallTest, EveryInstanceIsOneElementOfEachSet) {
  FirewallState state;
  state.transit = "berth0-h";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  state.gateway = Ipv4Address::Parse("10.88.0.1");
  for (int i = 2; i <= 4; ++i) {
    auto ip = Ipv4Address::Parse("10.88.0." + std::to_string(i));
    state.endpoints.push_back({"bt-" + std::to_string(i), ip, MacAddress::FromIpv4(ip), {}, ""});
  }
  std::string s = RenderBridgeRuleset(state);
  std::string rules = s.substr(s.find("chain prerouting {\n    type filter"));
  EXPECT_EQ(rules.find("bt-"), std::string::npos) << "no per-instance rule: " << rules;
  EXPECT_NE(s.find("  set ports {\n    type ifname\n    elements = { \"bt-2\",\n      \"bt-3\",\n"
                   "      \"bt-4\" }\n  }\n"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("\"bt-4\" . 02:42:0a:58:00:04 . 10.88.0.4 }"), std::string::npos) << s;
  EXPECT_NE(s.find("  set ipv6_sources {\n    type ifname . ether_addr . ipv6_addr\n  }\n"),
            std::string::npos)
      << "no IPv6 address: an empty set, and no IPv6 source but link-local passes: " << s;
}

TEST(FirewallTest, Ipv6OnlyFromTheInstancesOwnAddressOrLinkLocal) {
  FirewallState state;
  state.transit = "berth0-h";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-1", ip, MacAddress::FromIpv4(ip), {}, ""});
  std::string s = RenderBridgeRuleset(state);
  EXPECT_NE(s.find("    ether type ip6 ip6 saddr { ::, fe80::/10 } iifname . ether saddr "
                   "@mac_sources accept\n"),
            std::string::npos)
      << s;
  state.endpoints[0].address6 = "fd00:88:0::a58:5";
  s = RenderBridgeRuleset(state);
  EXPECT_NE(s.find("elements = { \"bt-1\" . 02:42:0a:58:00:05 . fd00:88::a58:5 }"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("    ether type ip6 iifname . ether saddr . ip6 saddr @ipv6_sources accept\n"),
            std::string::npos)
      << s;
  state.endpoints[0].address6 = "fd00::1 } accept; {";
  EXPECT_THROW(RenderBridgeRuleset(state), Error) << "not an address: never rendered";
}

// An attach or detach changes the bridge table's sets, not its chain: the elements of the
// one instance, in every set the whole rendering would have them in.
TEST(FirewallTest, OneInstancesElementsAddedOrDeletedAlone) {
  auto ip = Ipv4Address::Parse("10.88.0.5");
  FirewallEndpoint ep{"bt-1", ip, MacAddress::FromIpv4(ip), {}, ""};
  EXPECT_EQ(RenderBridgeElements("berth", ep, ElementChange::kAdd),
            "add element bridge berth ipv4_sources { \"bt-1\" . 02:42:0a:58:00:05 . 10.88.0.5 }\n"
            "add element bridge berth arp_sources { \"bt-1\" . 02:42:0a:58:00:05 . "
            "02:42:0a:58:00:05 . 10.88.0.5 }\n"
            "add element bridge berth mac_sources { \"bt-1\" . 02:42:0a:58:00:05 }\n"
            "add element bridge berth ports { \"bt-1\" }\n");
  ep.address6 = "fd00:88:0::a58:5";
  std::string del = RenderBridgeElements("berth", ep, ElementChange::kDelete);
  EXPECT_NE(del.find("delete element bridge berth ipv6_sources { \"bt-1\" . 02:42:0a:58:00:05 . "
                     "fd00:88::a58:5 }\n"),
            std::string::npos)
      << del;
  EXPECT_EQ(del.find("add "), std::string::npos) << del;
  // Every element it adds is one the whole rendering has.
  FirewallState state;
  state.transit = "berth0-h";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  state.endpoints.push_back(ep);
  std::string whole = RenderBridgeRuleset(state);
  std::string add = RenderBridgeElements("berth", ep, ElementChange::kAdd);
  for (size_t at = 0; (at = add.find(" { ", at)) != std::string::npos; ++at) {
    std::string element = add.substr(at + 3, add.find(" }", at) - at - 3);
    EXPECT_NE(whole.find(element), std::string::npos) << element << " not in " << whole;
  }
  ep.host_ifname = "bt-1\"; flush";
  EXPECT_THROW(RenderBridgeElements("berth", ep, ElementChange::kAdd), Error);
  ep.host_ifname = "bt-1";
  EXPECT_THROW(RenderBridgeElements("berth; flush ruleset", ep, ElementChange::kAdd), Error);
}

TEST(FirewallTest, RefusesNamesThatCouldInjectRules) {
  FirewallState state;
  state.transit = "berth0\" accept";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-1", ip, MacAddress::FromIpv4(ip), {}, ""});
  EXPECT_THROW(RenderNatRuleset(state), Error);
  state.transit = "berth0-h";
  state.endpoints[0].host_ifname = "bt-1\"; flush";
  EXPECT_THROW(RenderBridgeRuleset(state), Error);
  state.endpoints[0].host_ifname = "bt-1";
  state.table = "berth; flush ruleset";
  EXPECT_THROW(RenderNatRuleset(state), Error);
  EXPECT_THROW(RenderBridgeRuleset(state), Error);
}

}  // namespace
}  // namespace berth::net
