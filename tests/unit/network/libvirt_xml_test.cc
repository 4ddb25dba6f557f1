// The part of a libvirt network's XML that the libvirt mode reads, and how it picks a
// free address of the DHCP ranges.
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/network/libvirt_network.h"

namespace berth::net {
namespace {

// As `virsh net-dumpxml` prints a NAT network with two static hosts and IPv6.
constexpr const char* kNat = R"(<network connections='1'>
  <name>default</name>
  <uuid>6c7b5a0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b</uuid>
  <forward mode='nat'>
    <nat>
      <port start='1024' end='65535'/>
    </nat>
  </forward>
  <bridge name='virbr0' stp='on' delay='0'/>
  <mac address='52:54:00:aa:bb:cc'/>
  <dns>
    <host ip='192.168.122.7'><hostname>pinned</hostname></host>
  </dns>
  <!-- a comment <ip address='1.2.3.4'/> -->
  <ip address='192.168.122.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.122.2' end='192.168.122.254'/>
      <host mac='52:54:00:00:00:01' name='a' ip='192.168.122.2'/>
      <host mac="52:54:00:00:00:02" ip="192.168.122.4"/>
    </dhcp>
  </ip>
  <ip family='ipv6' address='fd00:122::1' prefix='64'>
    <dhcp>
      <range start='fd00:122::10' end='fd00:122::ff'/>
      <host id='0:1' ip='fd00:122::10'/>
    </dhcp>
  </ip>
</network>
)";

TEST(LibvirtXmlTest, ReadsForwardModeTheFirstIpv4AndItsDhcp) {
  LibvirtNetworkXml x = ParseLibvirtNetworkXml(kNat);
  EXPECT_EQ(x.forward_mode, "nat");
  EXPECT_TRUE(x.dns_enabled);
  ASSERT_TRUE(x.ipv4);
  EXPECT_EQ(x.ipv4->address.ToString(), "192.168.122.1");
  EXPECT_EQ(x.ipv4->prefix_len, 24);
  EXPECT_TRUE(x.ipv4->has_dhcp);
  ASSERT_EQ(x.ipv4->ranges.size(), 1u);
  EXPECT_EQ(x.ipv4->ranges[0].first.ToString(), "192.168.122.2");
  EXPECT_EQ(x.ipv4->ranges[0].second.ToString(), "192.168.122.254");
  // The IPv6 host and the DNS host are not DHCP hosts of the IPv4 network.
  ASSERT_EQ(x.ipv4->hosts.size(), 2u);
  EXPECT_EQ(x.ipv4->hosts[0].first, "52:54:00:00:00:01");
  EXPECT_EQ(x.ipv4->hosts[0].second.ToString(), "192.168.122.2");
  EXPECT_EQ(x.ipv4->hosts[1].second.ToString(), "192.168.122.4");
}

TEST(LibvirtXmlTest, IsolatedNetworkWithPrefixAndDnsOff) {
  LibvirtNetworkXml x = ParseLibvirtNetworkXml(
      "<network><name>iso</name><bridge name='br-iso'/><dns enable='no'/>"
      "<ip address='10.5.0.1' prefix='16'><dhcp><range start='10.5.1.0' end='10.5.1.9'/>"
      "</dhcp></ip></network>");
  EXPECT_EQ(x.forward_mode, "");
  EXPECT_FALSE(x.dns_enabled);
  ASSERT_TRUE(x.ipv4);
  EXPECT_EQ(x.ipv4->prefix_len, 16);
}

TEST(LibvirtXmlTest, NetworkWithoutIpv4OrDhcp) {
  auto bridged = ParseLibvirtNetworkXml(
      "<network><name>host</name><forward mode='bridge'/><bridge name='br0'/></network>");
  EXPECT_EQ(bridged.forward_mode, "bridge");
  EXPECT_FALSE(bridged.ipv4);
  auto nodhcp = ParseLibvirtNetworkXml(
      "<network><forward/><ip address='10.6.0.1' netmask='255.255.255.0'/></network>");
  EXPECT_EQ(nodhcp.forward_mode, "nat");
  ASSERT_TRUE(nodhcp.ipv4);
  EXPECT_FALSE(nodhcp.ipv4->has_dhcp);
}

TEST(LibvirtXmlTest, MalformedXmlIsInvalidArgument) {
  for (const char* bad : {
           "<network><ip address='10.0.0.1' netmask='255.0.255.0'/></network>",
           "<network><ip address='10.0.0.300'/></network>",
           "<network><ip address=10.0.0.1/></network>",
           "<network><ip address='10.0.0.1",
           "<network><ip address='10.0.0.1' prefix='x'/></network>",
           "<network><ip address='10.0.0.1'><dhcp><range start='a' end='b'/></dhcp></ip>",
       }) {
    try {
      ParseLibvirtNetworkXml(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad;
      EXPECT_NE(e.message().find("libvirt network XML"), std::string::npos) << e.message();
    }
  }
}

TEST(LibvirtXmlTest, PicksTheFirstAddressNoHostLeaseOrGatewayHolds) {
  LibvirtIpv4 ip = *ParseLibvirtNetworkXml(kNat).ipv4;
  // .2 and .4 are static hosts.
  EXPECT_EQ(PickLibvirtAddress(ip, {})->ToString(), "192.168.122.3");
  EXPECT_EQ(PickLibvirtAddress(ip, {Ipv4Address::Parse("192.168.122.3")})->ToString(),
            "192.168.122.5");
  LibvirtIpv4 tiny;
  tiny.address = Ipv4Address::Parse("10.0.0.1");
  tiny.prefix_len = 24;
  tiny.ranges = {{Ipv4Address::Parse("10.0.0.1"), Ipv4Address::Parse("10.0.0.2")}};
  EXPECT_EQ(PickLibvirtAddress(tiny, {})->ToString(), "10.0.0.2");  // never the gateway
  EXPECT_FALSE(PickLibvirtAddress(tiny, {Ipv4Address::Parse("10.0.0.2")}));
}

}  // namespace
}  // namespace berth::net
