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
  state.bridge = "berth0";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  EXPECT_EQ(RenderRuleset(state),
            "table ip berth\ndelete table ip berth\ntable bridge berth\ndelete table bridge "
            "berth\n");
  EXPECT_EQ(RenderRemoval("berth"), RenderRuleset(state));
}

TEST(FirewallTest, RendersNatPortsAndAntiSpoofing) {
  FirewallState state;
  state.bridge = "berth0";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-0011aabb",
                             ip,
                             MacAddress::FromIpv4(ip),
                             {ParsePortMapping("8080:80"), ParsePortMapping("1.2.3.4:53:53/udp")},
                             ""});
  std::string s = RenderRuleset(state);
  auto has = [&](const std::string& needle) { return s.find(needle) != std::string::npos; };
  EXPECT_EQ(s.rfind("table ip berth\ndelete table ip berth\n", 0), 0u) << "replace, atomically";
  EXPECT_TRUE(has("tcp dport 8080 dnat to 10.88.0.5:80\n")) << s;
  EXPECT_TRUE(has("ip daddr 1.2.3.4 udp dport 53 dnat to 10.88.0.5:53\n")) << s;
  EXPECT_TRUE(has("type nat hook output priority -100")) << "published ports from the host";
  EXPECT_TRUE(
      has("ip saddr 10.88.0.0/16 ip daddr != 10.88.0.0/16 oifname != \"berth0\" "
          "masquerade"))
      << s;
  EXPECT_TRUE(has("ip saddr 127.0.0.0/8 oifname \"berth0\" masquerade")) << "ports on 127.0.0.1";
  EXPECT_TRUE(has("iifname \"bt-0011aabb\" ether saddr != 02:42:0a:58:00:05 drop")) << s;
  EXPECT_TRUE(has("iifname \"bt-0011aabb\" ip saddr != 10.88.0.5 drop")) << s;
  EXPECT_TRUE(has("iifname \"bt-0011aabb\" arp saddr ip != 10.88.0.5 drop")) << s;
  EXPECT_TRUE(has("iifname \"bt-0011aabb\" arp saddr ether != 02:42:0a:58:00:05 drop")) << s;
  EXPECT_TRUE(has("iifname \"bt-0011aabb\" ether type != { ip, arp, ip6 } drop")) << s;
  EXPECT_FALSE(has("notrack")) << "no gateway given: everything stays tracked";

  // East-west traffic is not tracked; traffic to the gateway (NAT, ports) is.
  state.gateway = Ipv4Address::Parse("10.88.0.1");
  s = RenderRuleset(state);
  EXPECT_TRUE(
      has("type filter hook prerouting priority -300; policy accept;\n"
          "    ip saddr 10.88.0.0/16 ip daddr 10.88.0.0/16 ip daddr != 10.88.0.1 notrack\n"))
      << s;
}

TEST(FirewallTest, Ipv6OnlyFromTheInstancesOwnAddressOrLinkLocal) {
  FirewallState state;
  state.bridge = "berth0";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-1", ip, MacAddress::FromIpv4(ip), {}, ""});
  EXPECT_NE(RenderRuleset(state).find("iifname \"bt-1\" ip6 saddr != { ::, fe80::/10 } drop\n"),
            std::string::npos);
  state.endpoints[0].address6 = "fd00:88:0::a58:5";
  std::string s = RenderRuleset(state);
  EXPECT_NE(s.find("iifname \"bt-1\" ip6 saddr != { ::, fe80::/10, fd00:88::a58:5 } drop\n"),
            std::string::npos)
      << s;
  state.gateway = Ipv4Address::Parse("10.88.0.1");
  state.subnet6 = "fd00:88::/64";
  state.gateway6 = "fd00:88::1";
  s = RenderRuleset(state);
  EXPECT_NE(s.find("ip6 saddr fd00:88::/64 ip6 daddr fd00:88::/64 ip6 daddr != fd00:88::1 notrack"),
            std::string::npos)
      << s;
  state.gateway6 = "fd00:88::1; accept";
  EXPECT_THROW(RenderRuleset(state), Error);
  state.gateway6 = "fd00:88::1";
  state.endpoints[0].address6 = "fd00::1 } accept; {";
  EXPECT_THROW(RenderRuleset(state), Error) << "not an address: never rendered";
}

TEST(FirewallTest, RefusesNamesThatCouldInjectRules) {
  FirewallState state;
  state.bridge = "berth0\" accept";
  state.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
  auto ip = Ipv4Address::Parse("10.88.0.5");
  state.endpoints.push_back({"bt-1", ip, MacAddress::FromIpv4(ip), {}, ""});
  EXPECT_THROW(RenderRuleset(state), Error);
  state.bridge = "berth0";
  state.endpoints[0].host_ifname = "bt-1\"; flush";
  EXPECT_THROW(RenderRuleset(state), Error);
  state.endpoints[0].host_ifname = "bt-1";
  state.table = "berth; flush ruleset";
  EXPECT_THROW(RenderRuleset(state), Error);
}

}  // namespace
}  // namespace berth::net
