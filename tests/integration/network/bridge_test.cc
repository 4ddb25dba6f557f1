// The bridge mode end to end, inside namespaces the test makes: a namespace that plays the
// host (the transit's host end, routes, the NAT table), the bridge namespace BridgeNetwork
// makes and pins under the test's state dir (bridge, bt- ends, anti-spoofing table),
// instances as children in their own namespaces, and for egress/ingress an "outside"
// namespace joined to the host by a veth (192.0.2.0/24, TEST-NET-1, which exists only
// between those two namespaces).
#include "runtime/network/bridge_network.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

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
    // Nothing of ours is left: no device but lo, no table, no lease, no record, no pin.
    EXPECT_FALSE(PathExists(Pin()));
    EXPECT_FALSE(Mounted(Pin()));
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

  std::string Pin() { return BridgeNetnsPin(tmp_.Sub("state")); }

  static bool Mounted(const std::string& path) {
    std::ifstream in("/proc/self/mountinfo");
    for (std::string line; std::getline(in, line);) {
      if (line.find(" " + path + " ") != std::string::npos) return true;
    }
    return false;
  }

  // The bridge namespace (it must exist).
  UniqueFd BridgeNs() {
    UniqueFd fd = net_->OpenBridgeNetns();
    if (!fd) throw std::runtime_error("no bridge namespace");
    return fd;
  }
  Netlink BridgeNl() { return Netlink::OpenIn(NetnsRef::Fd(BridgeNs().get())); }

  static std::string Sysctl(int netns_fd, const std::string& key) {
    return RunInNetns(netns_fd, [&] { return ReadFile("/proc/sys/" + key); });
  }

  berth::testing::TempDir tmp_;
  UniqueFd host_;
  std::unique_ptr<BridgeNetwork> net_;
};

// Waits up to 5 s (namespaces and their devices go asynchronously).
template <typename Fn>
bool Eventually(Fn&& done) {
  for (int i = 0; i < 250; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_F(BridgeTest, AttachConfiguresBothEnds) {
  InstanceProcess a;
  Attachment att =
      net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()), AttachOptions{"eth0", 1400, {}});
  EXPECT_EQ(att.host_ifname, HostIfname("berth-test-a"));
  EXPECT_LE(att.host_ifname.size(), 15u);
  EXPECT_EQ(att.gateway.ToString(), "10.88.0.1");
  EXPECT_EQ(att.address.ToString(), "10.88.0.2");
  EXPECT_EQ(att.mac.ToString(), "02:42:0a:58:00:02");

  // The bridge and the bt- end are in the bridge namespace, not in the host's; the host
  // has the transit's end and a route to the subnet over it.
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  EXPECT_FALSE(host.FindLink("berth0"));
  EXPECT_FALSE(host.FindLink(att.host_ifname));
  EXPECT_TRUE(host.GetLink("berth0-h").up);
  auto host_routes = host.ListRoutes("berth0-h");
  EXPECT_NE(std::find(host_routes.begin(), host_routes.end(), "10.88.0.0/16 via 169.254.88.1"),
            host_routes.end());
  Netlink br = BridgeNl();
  auto bridge = br.GetLink("berth0");
  EXPECT_TRUE(bridge.up);
  auto veth = br.GetLink(att.host_ifname);
  EXPECT_EQ(veth.master_index, bridge.index);
  EXPECT_EQ(veth.mtu, 1400u);
  auto br_routes = br.ListRoutes("host");
  EXPECT_NE(std::find(br_routes.begin(), br_routes.end(), "default via 169.254.88.0"),
            br_routes.end());
  EXPECT_EQ(Sysctl(BridgeNs().get(), "net/ipv4/ip_forward"), "1\n");

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
  EXPECT_FALSE(br.FindLink(att.host_ifname));
  EXPECT_FALSE(inside.FindLink("eth0")) << "the peer dies with the host end";
  EXPECT_EQ(QueryNft(host_.get(), "list tables"), "") << "last detach removes our tables";
  EXPECT_EQ(QueryNft(BridgeNs().get(), "list tables"), "");
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

  // From the host itself (output chain): to its local addresses, and to the gateway,
  // which is the bridge namespace's. Connections from the host come from the transit's
  // address, except those to a local address, which keep it.
  auto via_gateway = HttpGet(host_.get(), "10.88.0.1", 8080);
  ASSERT_TRUE(via_gateway);
  EXPECT_EQ(*via_gateway, "published 169.254.88.0");
  auto via_uplink = HttpGet(host_.get(), "192.0.2.1", 8080);
  ASSERT_TRUE(via_uplink);
  EXPECT_EQ(*via_uplink, "published 192.0.2.1");
  auto via_loopback = HttpGet(host_.get(), "127.0.0.1", 8080);
  ASSERT_TRUE(via_loopback);
  EXPECT_EQ(*via_loopback, "published 169.254.88.0");
  // Directly, by the instance's address.
  auto direct = HttpGet(host_.get(), att_b.address.ToString(), 80);
  ASSERT_TRUE(direct);
  EXPECT_EQ(*direct, "published 169.254.88.0");
  // Hairpin: another instance through the host's address and published port; its source
  // becomes the host's, so the answer goes back through the host's DNAT.
  auto hairpin = HttpGet(a.netns(), "192.0.2.1", 8080);
  ASSERT_TRUE(hairpin) << "instance -> host address:published port -> instance";
  EXPECT_EQ(*hairpin, "published 169.254.88.0");
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

  std::string rules = QueryNft(BridgeNs().get(), "list table bridge berth");
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
  RunNft(BridgeNs().get(), "delete table bridge berth");
  testing::SendRawUdp(a.netns(), att_a.mac, att_b.mac, ip_a, ip_b, 9999, "tagged-open", true);
  EXPECT_EQ(rx.Receive(2000), "tagged-open");
}

// A table of the test's in the bridge namespace that drops (and counts) every unicast IP
// frame the bridge forwards: what takes the fast path never reaches it.
void DropIpTheBridgeForwards(int bridge_ns) {
  RunNft(bridge_ns,
         "table bridge berthtest {\n  chain forward {\n    type filter hook forward priority 0; "
         "policy accept;\n    meta pkttype != { broadcast, multicast } ether type { ip, ip6 } "
         "counter drop\n  }\n}\n");
}
uint64_t IpFramesTheBridgeForwarded(int bridge_ns) {
  std::string table = QueryNft(bridge_ns, "list table bridge berthtest");
  auto at = table.find("counter packets ");
  if (at == std::string::npos) throw std::runtime_error("no counter in " + table);
  return std::stoull(table.substr(at + 16));
}

TEST_F(BridgeTest, UnicastBetweenInstancesTakesTheFastPath) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  ASSERT_EQ(net_->FastPathStatus(), "on");
  const std::string ip_a = att_a.address.ToString(), ip_b = att_b.address.ToString();
  UniqueFd brns = BridgeNs();
  auto programs = testing::TcxIngressPrograms(brns.get(), att_a.host_ifname);
  ASSERT_EQ(programs.size(), 1u);
  EXPECT_EQ(programs[0].rfind(kFastPathProgramName, 0), 0u) << programs[0];
  EXPECT_EQ(testing::TcxIngressPrograms(brns.get(), att_b.host_ifname), programs) << "one program";
  DropIpTheBridgeForwards(brns.get());

  EXPECT_TRUE(Ping(a.netns(), ip_b));
  EXPECT_TRUE(Ping(b.netns(), ip_a));
  HttpServer server(b.netns(), 80, "hello from b");
  auto body = HttpGet(a.netns(), ip_b, 80);
  ASSERT_TRUE(body) << "TCP between instances";
  EXPECT_EQ(*body, "hello from b " + ip_a);
  EXPECT_TRUE(Ping(a.netns(), "10.88.0.1")) << "the gateway stays on the bridge";
  EXPECT_TRUE(Ping(host_.get(), ip_a)) << "and so does the transit";
  EXPECT_EQ(IpFramesTheBridgeForwarded(brns.get()), 0u) << "nothing crossed the bridge";

  // Without the program the same traffic crosses the bridge, where the test's table drops
  // it: so the pings above did take the fast path.
  testing::DetachTcxIngressPrograms(brns.get(), att_a.host_ifname);
  testing::DetachTcxIngressPrograms(brns.get(), att_b.host_ifname);
  EXPECT_FALSE(Ping(a.netns(), ip_b));
  uint64_t crossed = IpFramesTheBridgeForwarded(brns.get());
  EXPECT_GT(crossed, 0u);

  // A restarted berthd's reconcile attaches its own program again...
  net_ = std::make_unique<BridgeNetwork>(Config());
  net_->Reconcile({"berth-test-a", "berth-test-b"});
  programs = testing::TcxIngressPrograms(brns.get(), att_a.host_ifname);
  ASSERT_EQ(programs.size(), 1u);
  EXPECT_TRUE(Ping(a.netns(), ip_b));
  EXPECT_EQ(IpFramesTheBridgeForwarded(brns.get()), crossed);
  // ...and in place of its predecessor's, which stays attached when berthd goes.
  net_ = std::make_unique<BridgeNetwork>(Config());
  net_->Reconcile({"berth-test-a", "berth-test-b"});
  auto after = testing::TcxIngressPrograms(brns.get(), att_a.host_ifname);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_NE(after, programs) << "a new program, the old one detached";
  EXPECT_EQ(testing::TcxIngressPrograms(brns.get(), att_b.host_ifname), after);
  EXPECT_TRUE(Ping(b.netns(), ip_a));
  EXPECT_EQ(IpFramesTheBridgeForwarded(brns.get()), crossed);

  // b detached: a's frames to b's old MAC go the bridge's way (and nowhere).
  net_->Detach("berth-test-b");
  EXPECT_EQ(testing::TcxIngressPrograms(brns.get(), att_a.host_ifname), after);
}

TEST_F(BridgeTest, WithTheFastPathOffEverythingCrossesTheBridge) {
  BridgeConfig config = Config();
  config.fast_path = false;
  net_ = std::make_unique<BridgeNetwork>(config);
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  EXPECT_EQ(net_->FastPathStatus(), "off: disabled in the configuration");
  UniqueFd brns = BridgeNs();
  EXPECT_TRUE(testing::TcxIngressPrograms(brns.get(), att_a.host_ifname).empty());
  EXPECT_TRUE(Ping(a.netns(), att_b.address.ToString()));
  DropIpTheBridgeForwards(brns.get());
  EXPECT_FALSE(Ping(a.netns(), att_b.address.ToString()));
  EXPECT_GT(IpFramesTheBridgeForwarded(brns.get()), 0u);
}

// nft's listing of a table with each set's elements sorted (their order is the kernel's).
std::string SortedElements(std::string listing) {
  std::string out;
  for (size_t at = 0;;) {
    size_t open = listing.find("elements = {", at);
    if (open == std::string::npos) return out + listing.substr(at);
    size_t close = listing.find('}', open);
    out += listing.substr(at, open - at);
    std::vector<std::string> elements;
    std::string body = listing.substr(open + 12, close - open - 12), element;
    for (char c : body + ",") {
      if (c == ',') {
        elements.push_back(element);
        element.clear();
      } else if (c != ' ' && c != '\n' && c != '\t') {
        element += c;
      }
    }
    std::sort(elements.begin(), elements.end());
    for (const auto& e : elements) out += e + ";";
    at = close + 1;
  }
}

// The kernel's handle of our bridge table: a new one each time the table is made again.
std::string BridgeTableHandle(int bridge_ns) {
  std::string listing = RunInNetns(bridge_ns, [] {
    return RunCommand({"nft", "-a", "list", "table", "bridge", "berth"}, 10000).out;
  });
  auto at = listing.find("# handle ");
  if (at == std::string::npos) throw std::runtime_error("no handle in: " + listing);
  return listing.substr(at + 9, listing.find('\n', at) - at - 9);
}

// An attach or detach adds or deletes one instance's set elements instead of rendering the
// whole table again (whose hook the kernel would unregister and register, an RCU grace
// period each): the table they leave is the one a whole rendering makes.
TEST_F(BridgeTest, AttachAndDetachChangeOnlyTheSetsAndLeaveWhatAWholeSyncMakes) {
  InstanceProcess a, b, c, d;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  UniqueFd brns = BridgeNs();
  const std::string handle = BridgeTableHandle(brns.get());
  net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  net_->Attach("berth-test-c", NetnsRef::Pid(c.pid()));
  net_->Detach("berth-test-b");
  auto att_d = net_->Attach("berth-test-d", NetnsRef::Pid(d.pid()));
  EXPECT_EQ(BridgeTableHandle(brns.get()), handle) << "the same table, changed in place";
  std::string incremental = QueryNft(brns.get(), "list table bridge berth");
  EXPECT_EQ(incremental.find(HostIfname("berth-test-b")), std::string::npos) << incremental;
  EXPECT_NE(incremental.find(att_d.host_ifname), std::string::npos) << incremental;
  EXPECT_TRUE(Ping(d.netns(), att_a.address.ToString()));

  net_->Reconcile({"berth-test-a", "berth-test-c", "berth-test-d"});  // renders it whole
  std::string whole = QueryNft(brns.get(), "list table bridge berth");
  EXPECT_NE(BridgeTableHandle(brns.get()), handle) << "made again";
  EXPECT_EQ(SortedElements(incremental), SortedElements(whole));
  EXPECT_NE(SortedElements(whole).find("\"" + att_d.host_ifname + "\";"), std::string::npos)
      << SortedElements(whole);

  // A table changed behind berthd's back (here: gone) is made whole at the next attach.
  RunNft(brns.get(), "delete table bridge berth");
  InstanceProcess e;
  net_->Attach("berth-test-e", NetnsRef::Pid(e.pid()));
  std::string remade = QueryNft(brns.get(), "list table bridge berth");
  EXPECT_NE(remade.find(att_a.host_ifname), std::string::npos) << remade;
  EXPECT_NE(remade.find("iifname @ports drop"), std::string::npos) << remade;
}

TEST_F(BridgeTest, RestartKeepsAddressesAndReconcileFreesTheDead) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  struct stat before {};
  ASSERT_EQ(::fstat(BridgeNs().get(), &before), 0);
  // berthd "crashes": the object goes, the kernel state and the state dir stay.
  net_.reset();
  net_ = std::make_unique<BridgeNetwork>(Config());
  struct stat after {};
  ASSERT_EQ(::fstat(BridgeNs().get(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the same bridge namespace, found by its pin";
  auto found = net_->Find("berth-test-a");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->address, att_a.address);

  // b's instance died meanwhile.
  auto detached = net_->Reconcile({"berth-test-a"});
  EXPECT_EQ(detached, std::vector<std::string>{"berth-test-b"});
  Netlink br = BridgeNl();
  EXPECT_FALSE(br.FindLink(att_b.host_ifname));
  EXPECT_TRUE(br.FindLink(att_a.host_ifname));
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
  EXPECT_FALSE(BridgeNl().FindLink(HostIfname("berth-test-a")));
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

  auto bridge_addrs = BridgeNl().ListAddresses("berth0");
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
  EXPECT_TRUE(Ping(a.netns(), "fd00:88::2"))
      << "instance -> the host's address on the transit (proxied by the bridge namespace)";
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

// The reason the bridge has a namespace of its own: br_netfilter's switches are per
// namespace, and in the bridge's they are off whatever the host's are (1 on this kind of
// host: Docker, Kubernetes, Neutron's Linux bridge agent), so bridged frames never walk
// the IP hooks. Turned off again when br_netfilter, loaded later, turned them on.
TEST_F(BridgeTest, BridgeNetfilterIsOffInTheBridgeNamespaceWhateverTheHost) {
  const std::string key = "net/bridge/bridge-nf-call-iptables";
  if (!RunInNetns(host_.get(), [&] { return PathExists("/proc/sys/" + key); })) {
    GTEST_SKIP() << "br_netfilter is not loaded: no switch to look at";
  }
  RunInNetns(host_.get(), [&] { WriteToFile("/proc/sys/" + key, "1"); });
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  UniqueFd brns = BridgeNs();
  for (const char* k :
       {"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"}) {
    EXPECT_EQ(Sysctl(brns.get(), std::string("net/bridge/") + k), "0\n") << k;
  }
  EXPECT_EQ(Sysctl(host_.get(), key), "1\n") << "the host's setting is left alone";
  // As if br_netfilter had been loaded after berthd made its namespace.
  RunInNetns(brns.get(), [&] { WriteToFile("/proc/sys/" + key, "1"); });
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  EXPECT_EQ(Sysctl(brns.get(), key), "0\n") << "the next attach turns it off again";
  EXPECT_TRUE(Ping(a.netns(), att_b.address.ToString()));
  (void)att_a;
}

// Cleanup takes the bridge namespace away: no pin, and nothing of this process holds it,
// so the kernel destroys it. A veth the test puts between the bridge namespace and the
// host shows it: a veth dies with its namespace, and takes its peer in the host with it.
TEST_F(BridgeTest, CleanupLeavesNoPinNamespaceVethOrTable) {
  InstanceProcess a;
  auto att = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()),
                          AttachOptions{"eth0", 0, {ParsePortMapping("8080:80")}});
  ASSERT_TRUE(Mounted(Pin()));
  {
    UniqueFd brns = BridgeNs();
    Netlink::OpenIn(NetnsRef::Fd(brns.get()))
        .CreateVethPair({.name = "probe",
                         .peer_name = "berth-tprobe",
                         .peer_netns = NetnsRef::Fd(host_.get()),
                         .peer_mac = std::nullopt,
                         .mtu = 0});
  }
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  ASSERT_TRUE(host.FindLink("berth-tprobe"));
  net_->Cleanup();
  EXPECT_FALSE(PathExists(Pin()));
  EXPECT_FALSE(Mounted(Pin()));
  EXPECT_FALSE(net_->OpenBridgeNetns()) << "no namespace behind the pin's path";
  EXPECT_TRUE(Eventually([&] { return !host.FindLink("berth-tprobe"); }))
      << "the bridge namespace is still alive";
  EXPECT_TRUE(Eventually([&] { return !Netlink::OpenIn(NetnsRef::Pid(a.pid())).FindLink("eth0"); }))
      << "the instance's end went with its bt- end";
  EXPECT_FALSE(host.FindLink("berth0-h"));
  EXPECT_EQ(QueryNft(host_.get(), "list tables"), "");
  (void)att;
}

// After a reboot the pin's file is there but nothing is mounted on it (here: the pin is
// removed and the namespace let go): the records remain, and the bridge namespace, the
// bridge and the transit are made again; an instance that attaches again keeps its address.
TEST_F(BridgeTest, APinGoneIsMadeAgainFromTheRecords) {
  InstanceProcess a, b;
  auto att_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto att_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  net_.reset();
  UnpinNetns(Pin());
  WriteFileAtomic(Pin(), "");  // what a reboot leaves: the file, not the mount
  ASSERT_TRUE(Eventually([&] { return !Netlink::OpenIn(NetnsRef::Pid(a.pid())).FindLink("eth0"); }))
      << "the old bridge namespace did not go";
  net_ = std::make_unique<BridgeNetwork>(Config());
  EXPECT_FALSE(net_->HostEndExists("berth-test-a"));
  net_->Reconcile({"berth-test-a", "berth-test-b"});
  ASSERT_TRUE(Mounted(Pin())) << "pinned again";
  EXPECT_TRUE(BridgeNl().FindLink("berth0"));
  // What berthd's start-up does for a running instance whose bt- end is missing.
  auto again_a = net_->Attach("berth-test-a", NetnsRef::Pid(a.pid()));
  auto again_b = net_->Attach("berth-test-b", NetnsRef::Pid(b.pid()));
  EXPECT_EQ(again_a.address, att_a.address);
  EXPECT_EQ(again_b.address, att_b.address);
  EXPECT_TRUE(net_->HostEndExists("berth-test-a"));
  EXPECT_TRUE(Ping(a.netns(), att_b.address.ToString()));
  EXPECT_TRUE(Ping(host_.get(), att_a.address.ToString())) << "the transit and routes are back";
}

}  // namespace
}  // namespace berth::net
