// The bridge mode end to end, inside namespaces the test makes: a namespace that plays the
// host (bridge, veth host ends, nftables tables), instances as children in their own
// namespaces, and for egress/ingress an "outside" namespace joined to the host by a veth
// (192.0.2.0/24, TEST-NET-1, which exists only between those two namespaces).
#include "runtime/network/bridge_network.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/network/command.h"
#include "runtime/network/firewall.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"
#include "tests/integration/network/net_fixture.h"
#include "tests/support/test_env.h"

namespace berth::net {
namespace {

using testing::HttpGet;
using testing::HttpServer;
using testing::InstanceProcess;
using testing::Ping;

class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    host_ = CreateNetns();
    Netlink::OpenIn(NetnsRef::Fd(host_.get())).SetUp("lo");
    net_ = std::make_unique<BridgeNetwork>(Config());
  }

  BridgeConfig Config() {
    BridgeConfig config;
    config.bridge = "berth0";
    config.subnet = Ipv4Subnet::Parse("10.88.0.0/16");
    config.state_dir = tmp_.Sub("state");
    config.host_netns_fd = host_.get();
    return config;
  }

  void TearDown() override {
    if (!net_) return;
    net_->Cleanup();
    // Nothing of ours is left: no device but lo, no table, no lease, no record.
    Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
    for (const auto& link : host.ListLinks()) {
      if (link.name != "lo" && link.name.rfind("berth-tup", 0) != 0) {
        ADD_FAILURE() << "left behind: " << link.name;
      }
    }
    EXPECT_EQ(QueryNft(host_.get(), "list tables"), "");
    EXPECT_TRUE(net_->List().empty());
    EXPECT_TRUE(Ipam(tmp_.Sub("state/leases"), Ipv4Subnet::Parse("10.88.0.0/16"),
                     Ipv4Address::Parse("10.88.0.1"))
                    .List()
                    .empty());
  }

  // An "outside" namespace on a veth from the host namespace: 192.0.2.1 (host) - .2.
  UniqueFd MakeOutside() {
    UniqueFd outside = CreateNetns();
    Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
    host.CreateVethPair({.name = "berth-tup0",
                         .peer_name = "up0",
                         .peer_netns = NetnsRef::Fd(outside.get()),
                         .peer_mac = std::nullopt,
                         .mtu = 0});
    host.AddAddress("berth-tup0", "192.0.2.1/24");
    host.SetUp("berth-tup0");
    Netlink out = Netlink::OpenIn(NetnsRef::Fd(outside.get()));
    out.SetUp("lo");
    out.AddAddress("up0", "192.0.2.2/24");
    out.SetUp("up0");
    return outside;
  }

  berth::testing::TempDir tmp_;
  UniqueFd host_;
  std::unique_ptr<BridgeNetwork> net_;
};

TEST_F(BridgeTest, AttachConfiguresBothEnds) {
  InstanceProcess a;
  Attachment att =
      net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()), AttachOptions{"eth0", 1400, {}});
  EXPECT_EQ(att.host_ifname, HostIfname("berth-test-a"));
  EXPECT_LE(att.host_ifname.size(), 15u);
  EXPECT_EQ(att.gateway.ToString(), "10.88.0.1");
  EXPECT_EQ(att.address.ToString(), "10.88.0.2");
  EXPECT_EQ(att.mac.ToString(), "02:42:0a:58:00:02");

  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  auto bridge = host.GetLink("berth0");
  EXPECT_TRUE(bridge.up);
  auto veth = host.GetLink(att.host_ifname);
  EXPECT_EQ(veth.master_index, bridge.index);
  EXPECT_EQ(veth.mtu, 1400u);

  Netlink inside = Netlink::OpenIn(NetnsRef::Fd(a.netns()));
  auto eth0 = inside.GetLink("eth0");
  EXPECT_TRUE(eth0.up);
  EXPECT_EQ(eth0.mac, "02:42:0a:58:00:02");
  EXPECT_EQ(eth0.mtu, 1400u);
  EXPECT_EQ(inside.ListAddresses("eth0").at(0), "10.88.0.2/16");
  EXPECT_TRUE(Ping(a.netns(), "10.88.0.1")) << "instance -> gateway";
  EXPECT_EQ(RunInNetns(host_.get(), [] { return ReadFile("/proc/sys/net/ipv4/ip_forward"); }),
            "1\n")
      << "forwarding is on in the namespace that plays the host";

  EXPECT_TRUE(net_->Detach("berth-test-a"));
  EXPECT_FALSE(net_->Detach("berth-test-a"));
  EXPECT_FALSE(host.FindLink(att.host_ifname));
  EXPECT_FALSE(inside.FindLink("eth0")) << "the peer dies with the host end";
  EXPECT_EQ(QueryNft(host_.get(), "list tables"), "") << "last detach removes our tables";
}

TEST_F(BridgeTest, TwoInstancesPingAndTalkHttp) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Fd(b.netns()));
  EXPECT_NE(att_a.address, att_b.address);
  EXPECT_TRUE(Ping(a.netns(), att_b.address.ToString()));
  EXPECT_TRUE(Ping(b.netns(), att_a.address.ToString()));

  HttpServer server(b.netns(), 80, "hello from b");
  auto body = HttpGet(a.netns(), att_b.address.ToString(), 80);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body, "hello from b " + att_a.address.ToString()) << "no NAT between instances";
}

TEST_F(BridgeTest, PublishedPortFromHostAndOutsideAndMasqueradedEgress) {
  UniqueFd outside = MakeOutside();
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()),
                            AttachOptions{"eth0", 0, {ParsePortMapping("8080:80")}});
  HttpServer server(b.netns(), 80, "published");

  // From the host itself (output chain), to two of its local addresses.
  auto via_gateway = HttpGet(host_.get(), "10.88.0.1", 8080);
  ASSERT_TRUE(via_gateway);
  EXPECT_EQ(*via_gateway, "published 10.88.0.1");
  auto via_uplink = HttpGet(host_.get(), "192.0.2.1", 8080);
  ASSERT_TRUE(via_uplink);
  EXPECT_EQ(via_uplink->rfind("published", 0), 0u);
  // From outside the host (prerouting chain): the client's own address is kept.
  auto from_outside = HttpGet(outside.get(), "192.0.2.1", 8080);
  ASSERT_TRUE(from_outside);
  EXPECT_EQ(*from_outside, "published 192.0.2.2");
  // A port nobody published stays closed.
  EXPECT_FALSE(HttpGet(outside.get(), "192.0.2.1", 8081));

  // Egress: an instance reaches the outside with the host's address (masquerade).
  HttpServer out_server(outside.get(), 7000, "outside");
  auto egress = HttpGet(a.netns(), "192.0.2.2", 7000);
  ASSERT_TRUE(egress);
  EXPECT_EQ(*egress, "outside 192.0.2.1");

  // Two instances cannot publish the same host port.
  InstanceProcess c;
  try {
    net_->Attach("berth-test-c", NetnsRef::Pid(c.pid()),
                 AttachOptions{"eth0", 0, {ParsePortMapping("8080:81")}});
    FAIL() << "expected a conflict";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict) << e.what();
  }
  net_->Detach("berth-test-b");
  EXPECT_FALSE(HttpGet(host_.get(), "10.88.0.1", 8080)) << "detach unpublishes";
  (void)att_a;
  (void)att_b;
}

TEST_F(BridgeTest, SpoofedSourcesAreDropped) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  const std::string ip_a = att_a.address.ToString(), ip_b = att_b.address.ToString();
  testing::UdpReceiver rx(b.netns(), ip_b, 9999);

  // Control: the assigned address gets through (and resolves ARP both ways).
  testing::SendUdp(a.netns(), ip_a, ip_b, 9999, "legit");
  EXPECT_EQ(rx.Receive(2000), "legit");

  // Another IP on eth0 (one that another instance could hold): dropped.
  Netlink inside_a = Netlink::OpenIn(NetnsRef::Pid(a.pid()));
  inside_a.AddAddress("eth0", "10.88.0.200/16");
  testing::SendUdp(a.netns(), "10.88.0.200", ip_b, 9999, "spoofed-ip");
  EXPECT_EQ(rx.Receive(1000), std::nullopt);
  EXPECT_FALSE(Ping(b.netns(), "10.88.0.200")) << "ARP for the stolen address is dropped";

  // Another MAC: dropped, even with the right IP.
  inside_a.SetMac("eth0", MacAddress::Parse("02:42:0a:58:ff:ff"));
  testing::SendUdp(a.netns(), ip_a, ip_b, 9999, "spoofed-mac");
  EXPECT_EQ(rx.Receive(1000), std::nullopt);
  inside_a.SetMac("eth0", att_a.mac);
  testing::SendUdp(a.netns(), ip_a, ip_b, 9999, "legit-again");
  EXPECT_EQ(rx.Receive(2000), "legit-again");

  std::string rules = QueryNft(host_.get(), "list table bridge berth");
  EXPECT_NE(rules.find(att_a.host_ifname), std::string::npos) << rules;
}

// The sets the rules look frames up in are keyed on the port too: holding another
// instance's MAC and address is not enough, the frame must also enter by that instance's
// port.
TEST_F(BridgeTest, AnInstanceCannotImpersonateAnother) {
  InstanceProcess a, b, c;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  auto att_c = net_->Attach("berth-test-c", NetnsRef::Pid(c.pid()));
  const std::string ip_b = att_b.address.ToString(), ip_c = att_c.address.ToString();
  testing::UdpReceiver rx(c.netns(), ip_c, 9999);
  testing::SendUdp(b.netns(), ip_b, ip_c, 9999, "from-b");
  EXPECT_EQ(rx.Receive(2000), "from-b");

  // a takes b's MAC and b's address (c already knows b's MAC from the exchange above).
  Netlink inside_a = Netlink::OpenIn(NetnsRef::Pid(a.pid()));
  inside_a.SetMac("eth0", att_b.mac);
  inside_a.AddAddress("eth0", ip_b + "/32");
  testing::SendUdp(a.netns(), ip_b, ip_c, 9999, "a-as-b");
  EXPECT_EQ(rx.Receive(1000), std::nullopt) << "b's MAC and address from a's port";
  EXPECT_FALSE(Ping(a.netns(), ip_c)) << "nor with its own address from b's MAC";

  // Nothing was learned from those frames: b still reaches c.
  testing::SendUdp(b.netns(), ip_b, ip_c, 9999, "b-again");
  EXPECT_EQ(rx.Receive(2000), "b-again");
  inside_a.SetMac("eth0", att_a.mac);
  EXPECT_TRUE(Ping(a.netns(), ip_c)) << "a with its own MAC again";
}

// A VLAN-tagged frame is dropped even with the right MAC and address. The kernel moves a
// tag out of the frame into the packet's metadata before the bridge sees it, so nft's
// implicit `meta protocol ip` would take the frame for plain IPv4; the rules match `ether
// type`, which reads the tag. A VLAN-0 (priority) tag makes the test visible: the
// receiver, without VLAN devices, takes such a frame as untagged.
TEST_F(BridgeTest, TaggedFramesAreDroppedEvenFromTheRightSource) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  const std::string ip_a = att_a.address.ToString(), ip_b = att_b.address.ToString();
  testing::UdpReceiver rx(b.netns(), ip_b, 9999);
  testing::SendRawUdp(a.netns(), att_a.mac, att_b.mac, ip_a, ip_b, 9999, "plain", false);
  EXPECT_EQ(rx.Receive(2000), "plain") << "control: the hand-made frame itself passes";
  testing::SendRawUdp(a.netns(), att_a.mac, att_b.mac, ip_a, ip_b, 9999, "tagged", true);
  EXPECT_EQ(rx.Receive(1000), std::nullopt);

  // Without our bridge table the same tagged frame arrives: the test shows the rule.
  RunNft(host_.get(), "delete table bridge berth");
  testing::SendRawUdp(a.netns(), att_a.mac, att_b.mac, ip_a, ip_b, 9999, "tagged-open", true);
  EXPECT_EQ(rx.Receive(2000), "tagged-open");
}

TEST_F(BridgeTest, RestartKeepsAddressesAndReconcileFreesTheDead) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  // berthd "crashes": the object goes, the kernel state and the state dir stay.
  net_.reset();
  net_ = std::make_unique<BridgeNetwork>(Config());
  auto found = net_->Find("berth-test-a");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->address, att_a.address);

  // b's instance died meanwhile.
  auto detached = net_->Reconcile({"berth-test-a"});
  EXPECT_EQ(detached, std::vector<std::string>{"berth-test-b"});
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  EXPECT_FALSE(host.FindLink(att_b.host_ifname));
  EXPECT_TRUE(host.FindLink(att_a.host_ifname));
  EXPECT_TRUE(Ping(a.netns(), "10.88.0.1")) << "a still works after the restart";

  InstanceProcess c;
  auto att_c = net_->Attach("berth-test-c", NetnsRef::Pid(c.pid()));
  EXPECT_NE(att_c.address, att_a.address);
  EXPECT_NE(att_c.address, att_b.address) << "next-fit: b's freed address is not reused at once";
}

TEST_F(BridgeTest, FailedAttachLeavesNothing) {
  InstanceProcess a;
  // eth0 already exists inside: the veth cannot be created there.
  Netlink::OpenIn(NetnsRef::Pid(a.pid())).CreateBridge("eth0");
  EXPECT_THROW(net_->Attach("berth-test-a", NetnsRef::Pid(a.pid())), Error);
  EXPECT_TRUE(net_->List().empty());
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  EXPECT_FALSE(host.FindLink(HostIfname("berth-test-a")));
  EXPECT_THROW(net_->Attach("bad/id", NetnsRef::Pid(a.pid())), Error);
  // Attaching twice is refused.
  InstanceProcess b;
  net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  try {
    net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists) << e.what();
  }
}

// busybox ping from `source` (empty: the kernel's choice) inside the namespace.
bool PingFrom(int netns_fd, const std::string& source, const std::string& address) {
  std::vector<std::string> argv = {"/bin/busybox", "ping", "-c", "1", "-W", "2"};
  if (!source.empty()) argv.insert(argv.end(), {"-I", source});
  argv.push_back(address);
  return RunInNetns(netns_fd, [&] { return RunCommand(argv, 10000).exit_code; }) == 0;
}

TEST_F(BridgeTest, Ipv6AddressesRoutesAndAntiSpoofing) {
  net_.reset();
  BridgeConfig config = Config();
  config.subnet6 = Ipv6Subnet::Parse("fd00:88::/64");
  net_ = std::make_unique<BridgeNetwork>(config);
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  EXPECT_EQ(att_a.address6, "fd00:88::a58:2");
  EXPECT_EQ(att_b.address6, "fd00:88::a58:3");
  EXPECT_EQ(att_a.prefix_len6, 64);
  EXPECT_EQ(att_a.gateway6, "fd00:88::1");
  EXPECT_EQ(net_->Find("berth-test-a")->address6, "fd00:88::a58:2") << "kept in the record";

  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  auto bridge_addrs = host.ListAddresses("berth0");
  EXPECT_NE(std::find(bridge_addrs.begin(), bridge_addrs.end(), "fd00:88::1/64"),
            bridge_addrs.end());
  Netlink inside = Netlink::OpenIn(NetnsRef::Pid(a.pid()));
  auto addrs = inside.ListAddresses("eth0");
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "fd00:88::a58:2/64"), addrs.end());
  std::string routes = RunInNetns(a.netns(), [] {
    return RunCommand({"/bin/busybox", "ip", "-6", "route", "show"}, 10000).out;
  });
  EXPECT_NE(routes.find("default via fd00:88::1 dev eth0"), std::string::npos) << routes;

  EXPECT_TRUE(Ping(a.netns(), att_b.address6)) << "instance -> instance over IPv6";
  EXPECT_TRUE(Ping(b.netns(), att_a.address6));
  EXPECT_TRUE(Ping(a.netns(), "fd00:88::1")) << "instance -> gateway over IPv6";
  EXPECT_TRUE(Ping(host_.get(), att_a.address6)) << "host -> instance over IPv6";
  // IPv4 still works beside it.
  EXPECT_TRUE(Ping(a.netns(), att_b.address.ToString()));

  // Any other IPv6 source is dropped at the bridge. (Unfiltered, this ping would work: the
  // gateway would ask for fd00:88::bad and the instance, holding it, would answer.)
  inside.AddAddress("eth0", "fd00:88::bad/64", /*skip_dad=*/true);
  EXPECT_FALSE(PingFrom(a.netns(), "fd00:88::bad", "fd00:88::1"));
  EXPECT_TRUE(PingFrom(a.netns(), att_a.address6, "fd00:88::1")) << "its own address passes";

  // A restarted BridgeNetwork finds the IPv6 address in the record and re-adds nothing.
  net_ = std::make_unique<BridgeNetwork>(config);
  net_->Reconcile({"berth-test-a", "berth-test-b"});
  InstanceProcess c;
  auto att_c = net_->Attach("berth-test-c", NetnsRef::Pid(c.pid()));
  EXPECT_EQ(att_c.address6, "fd00:88::a58:4");
  EXPECT_TRUE(Ping(c.netns(), att_b.address6));
}

}  // namespace
}  // namespace berth::net
