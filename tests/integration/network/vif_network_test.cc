// The neutron-linuxbridge, neutron-ovs and libvirt modes against the real thing, inside
// namespaces the test makes: a "host" namespace holding a Linux bridge the test creates
// (as os-vif or the Linux bridge agent would) or a private Open vSwitch the test starts
// (ovsdb-server + ovs-vswitchd, ovs_fixture.h), and instances as children in namespaces of
// their own. Addresses are 10.0.0.0/24 as a Neutron subnet would hand out.
#include "runtime/network/vif_network.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <memory>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/network/command.h"
#include "runtime/network/libvirt_network.h"
#include "runtime/network/netlink.h"
#include "tests/integration/network/libvirt_fixture.h"
#include "tests/integration/network/net_fixture.h"
#include "tests/integration/network/ovs_fixture.h"
#include "tests/support/test_env.h"

namespace berth::net {
namespace {

using testing::InstanceProcess;
using testing::Ping;

constexpr const char* kVm1 = "5b0c9e7a-1111-4222-8333-444455556661";
constexpr const char* kVm2 = "5b0c9e7a-1111-4222-8333-444455556662";
constexpr const char* kPort1 = "3f2a6c1e-0b5d-4f0e-9a55-1c2d3e4f5a61";
constexpr const char* kPort2 = "7d4e2b9f-6a1c-4e3d-8b2a-0f1e2d3c4b52";

// Nova's devname: "tap" + the port id's first 11 characters.
std::string Devname(const std::string& port_id) { return "tap" + port_id.substr(0, 11); }

VifSpec Spec(const std::string& port_id, const std::string& bridge, int host) {
  VifSpec vif;
  vif.port_id = port_id;
  vif.devname = Devname(port_id);
  vif.bridge = bridge;
  vif.mac = MacAddress::Parse("fa:16:3e:00:00:0" + std::to_string(host));
  vif.fixed_ips = {"10.0.0." + std::to_string(host) + "/24"};
  vif.gateways = {"10.0.0.1"};
  vif.routes = {{"192.168.77.0/24", "10.0.0.254"}};
  vif.mtu = 1450;
  return vif;
}

ErrorKind KindOf(const std::function<void()>& fn, std::string* message = nullptr) {
  try {
    fn();
  } catch (const Error& e) {
    if (message) *message = e.message();
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ErrorKind::kInternal;
}

class VifNetworkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    host_ = CreateNetns();
    Netlink::OpenIn(NetnsRef::Fd(host_.get())).SetUp("lo");
  }

  VifNetworkConfig Config() {
    VifNetworkConfig config;
    config.state_dir = tmp_.Sub("vifs");
    config.host_netns_fd = host_.get();
    return config;
  }

  // Host devices other than lo and the switch's own.
  std::vector<std::string> HostPorts() {
    std::vector<std::string> out;
    for (const auto& link : Netlink::OpenIn(NetnsRef::Fd(host_.get())).ListLinks()) {
      if (link.name.rfind("tap", 0) == 0 || link.name.rfind("bv-", 0) == 0) {
        out.push_back(link.name);
      }
    }
    return out;
  }

  void ExpectNothingLeft(VifNetwork& vifs) {
    EXPECT_TRUE(vifs.List().empty());
    EXPECT_TRUE(HostPorts().empty()) << "left: " << HostPorts().front();
  }

  berth::testing::TempDir tmp_;
  UniqueFd host_;
};

class LinuxBridgeTest : public VifNetworkTest {
 protected:
  void SetUp() override {
    VifNetworkTest::SetUp();
    if (IsSkipped()) return;
    Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
    host.CreateBridge(kBridge);
    host.SetUp(kBridge);
  }
  static constexpr const char* kBridge = "brq5e1d7c2a-61";
};

TEST_F(LinuxBridgeTest, TwoInstancesOnTheBridgeTalkWithThePortsSettings) {
  VifNetwork vifs(Config());
  InstanceProcess vm1, vm2;
  // Dual stack, as a Neutron network with an IPv4 and an IPv6 subnet.
  VifSpec spec1 = Spec(kPort1, kBridge, 5), spec2 = Spec(kPort2, kBridge, 6);
  spec1.fixed_ips.push_back("fd00:1::5/64");
  spec2.fixed_ips.push_back("fd00:1::6/64");
  spec1.gateways.push_back("fd00:1::1");
  spec2.gateways.push_back("fd00:1::1");
  VifAttachment a1 = vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), spec1);
  vifs.AttachToLinuxBridge(kVm2, NetnsRef::Pid(vm2.pid()), spec2);
  EXPECT_EQ(a1.devname, "tap3f2a6c1e-0b");
  EXPECT_EQ(a1.kind, VifKind::kLinuxBridge);

  // The host end: Nova's name, a port of the named bridge, up.
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  auto tap = host.GetLink("tap3f2a6c1e-0b");
  EXPECT_EQ(tap.type, "veth");
  EXPECT_EQ(tap.master_index, host.GetLink(kBridge).index);
  EXPECT_TRUE(tap.up);
  EXPECT_EQ(tap.mtu, 1450u);
  EXPECT_FALSE(host.FindLink("eth0"));

  // The instance end: the port's MAC, MTU, fixed IP, default route and host route.
  Netlink inside = Netlink::OpenIn(NetnsRef::Fd(vm1.netns()));
  auto eth0 = inside.GetLink("eth0");
  EXPECT_EQ(eth0.mac, "fa:16:3e:00:00:05");
  EXPECT_EQ(eth0.mtu, 1450u);
  EXPECT_TRUE(eth0.up);
  auto addrs = inside.ListAddresses("eth0");
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "10.0.0.5/24"), addrs.end());
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "fd00:1::5/64"), addrs.end());
  auto routes = inside.ListRoutes("eth0");
  EXPECT_NE(std::find(routes.begin(), routes.end(), "default via 10.0.0.1"), routes.end());
  EXPECT_NE(std::find(routes.begin(), routes.end(), "default via fd00:1::1"), routes.end());
  EXPECT_NE(std::find(routes.begin(), routes.end(), "192.168.77.0/24 via 10.0.0.254"),
            routes.end());

  EXPECT_TRUE(Ping(vm1.netns(), "10.0.0.6"));
  EXPECT_TRUE(Ping(vm2.netns(), "10.0.0.5"));
  EXPECT_TRUE(Ping(vm1.netns(), "fd00:1::6")) << "usable at once: no DAD wait";

  // detach_interface of one port: its device goes, the other instance stays.
  EXPECT_TRUE(vifs.Detach(kVm1, kPort1));
  EXPECT_FALSE(vifs.Detach(kVm1, kPort1));
  EXPECT_FALSE(host.FindLink("tap3f2a6c1e-0b"));
  EXPECT_FALSE(inside.FindLink("eth0")) << "the peer dies with the host end";
  EXPECT_EQ(vifs.List().size(), 1u);
  EXPECT_EQ(vifs.DetachInstance(kVm2), 1u);
  ExpectNothingLeft(vifs);
  EXPECT_TRUE(host.FindLink(kBridge)) << "the bridge is not ours to delete";
}

// Two NICs on one subnet (a boot with two ports, or attach_interface): the second port's
// default route and host route are the first's already; the first keeps them and the
// second still works on-link. (Adding them again was EEXIST: the attach, and the spawn or
// attach_interface with it, failed.)
TEST_F(LinuxBridgeTest, ASecondPortOnTheSameSubnetKeepsTheFirstsRoutes) {
  VifNetwork vifs(Config());
  InstanceProcess vm1, vm2;
  VifSpec first = Spec(kPort1, kBridge, 5), second = Spec(kPort2, kBridge, 7);
  second.ifname = "eth1";
  vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), first);
  vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), second);
  vifs.AttachToLinuxBridge(kVm2, NetnsRef::Pid(vm2.pid()),
                           Spec("9" + std::string(kPort2 + 1), kBridge, 6));
  Netlink inside = Netlink::OpenIn(NetnsRef::Fd(vm1.netns()));
  auto eth0 = inside.ListRoutes("eth0");
  EXPECT_NE(std::find(eth0.begin(), eth0.end(), "default via 10.0.0.1"), eth0.end());
  EXPECT_NE(std::find(eth0.begin(), eth0.end(), "192.168.77.0/24 via 10.0.0.254"), eth0.end());
  auto eth1 = inside.ListRoutes("eth1");
  EXPECT_EQ(std::find(eth1.begin(), eth1.end(), "default via 10.0.0.1"), eth1.end());
  auto addrs = inside.ListAddresses("eth1");
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "10.0.0.7/24"), addrs.end());
  EXPECT_EQ(inside.GetLink("eth1").mac, "fa:16:3e:00:00:07");
  EXPECT_TRUE(Ping(vm2.netns(), "10.0.0.7")) << "the second port answers";
  EXPECT_TRUE(Ping(vm2.netns(), "10.0.0.5"));
  EXPECT_TRUE(vifs.Detach(kVm1, kPort2));
  EXPECT_FALSE(inside.FindLink("eth1"));
  // The first port is untouched. (No ping here: vm2 may have learnt 10.0.0.5 at eth1's
  // MAC, as Linux answers ARP for any local address on any interface, until its neighbour
  // entry is revalidated; Neutron's ARP anti-spoofing drops such replies.)
  eth0 = inside.ListRoutes("eth0");
  EXPECT_NE(std::find(eth0.begin(), eth0.end(), "default via 10.0.0.1"), eth0.end());
  addrs = inside.ListAddresses("eth0");
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "10.0.0.5/24"), addrs.end());
  EXPECT_EQ(vifs.DetachInstance(kVm1), 1u);
  EXPECT_EQ(vifs.DetachInstance(kVm2), 1u);
  ExpectNothingLeft(vifs);
}

TEST_F(LinuxBridgeTest, RefusesAndLeavesNothing) {
  VifNetwork vifs(Config());
  InstanceProcess vm1;
  std::string message;
  EXPECT_EQ(KindOf(
                [&] {
                  vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()),
                                           Spec(kPort1, "brq-missing", 5));
                },
                &message),
            ErrorKind::kNotFound);
  EXPECT_NE(message.find("brq-missing"), std::string::npos) << message;
  ExpectNothingLeft(vifs);

  // A next hop that is not on any subnet of the port: the kernel refuses the route, late,
  // after the veth exists — everything made is undone.
  VifSpec unreachable = Spec(kPort1, kBridge, 5);
  unreachable.routes = {{"192.168.77.0/24", "172.31.0.1"}};
  EXPECT_EQ(KindOf([&] { vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), unreachable); },
                   &message),
            ErrorKind::kSystem)
      << message;
  ExpectNothingLeft(vifs);
  EXPECT_FALSE(Netlink::OpenIn(NetnsRef::Fd(vm1.netns())).FindLink("eth0"));

  // A device of that name that is not ours is never taken over.
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  host.CreateBridge(Devname(kPort1));
  EXPECT_EQ(KindOf([&] {
              vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, kBridge, 5));
            }),
            ErrorKind::kAlreadyExists);
  EXPECT_TRUE(vifs.List().empty());
  host.DeleteLink(Devname(kPort1));

  // Attaching the same port twice.
  vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, kBridge, 5));
  EXPECT_EQ(KindOf([&] {
              vifs.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, kBridge, 5));
            }),
            ErrorKind::kAlreadyExists);
  EXPECT_EQ(vifs.DetachInstance(kVm1), 1u);
  ExpectNothingLeft(vifs);
}

TEST_F(LinuxBridgeTest, ReconcileAfterARestartDetachesOnlyDeadInstances) {
  InstanceProcess vm1, vm2;
  {
    VifNetwork before(Config());
    before.AttachToLinuxBridge(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, kBridge, 5));
    before.AttachToLinuxBridge(kVm2, NetnsRef::Pid(vm2.pid()), Spec(kPort2, kBridge, 6));
  }
  // "berthd restarted": a new object over the same state; vm1 is gone.
  VifNetwork after(Config());
  auto detached = after.Reconcile({kVm2});
  EXPECT_EQ(detached, (std::vector<std::string>{std::string(kVm1) + "/" + kPort1}));
  EXPECT_EQ(HostPorts(), (std::vector<std::string>{Devname(kPort2)}));
  EXPECT_TRUE(Ping(vm2.netns(), "10.0.0.6")) << "own address still configured";
  after.Reconcile({});
  ExpectNothingLeft(after);
}

class OvsTest : public VifNetworkTest {
 protected:
  void SetUp() override {
    VifNetworkTest::SetUp();
    if (IsSkipped()) return;
    if (!testing::HaveOpenVswitch()) GTEST_SKIP() << "Open vSwitch not installed";
    MakeDirs(tmp_.Sub("ovs"), 0700);
    ovs_ = std::make_unique<testing::OvsSwitch>(host_.get(), tmp_.Sub("ovs"));
    datapath_ = ovs_->AddBridge("br-int");
    RecordProperty("datapath_type", datapath_);
  }

  void TearDown() override {
    if (!ovs_) return;
    // Ours are gone from OVSDB; br-int stays (not ours), then the switch is stopped.
    EXPECT_EQ(ovs_->Vsctl({"list-ports", "br-int"}), "");
    ovs_.reset();
  }

  VifNetworkConfig Config() {
    VifNetworkConfig config = VifNetworkTest::Config();
    config.ovsdb = ovs_->config();
    return config;
  }

  std::unique_ptr<testing::OvsSwitch> ovs_;
  std::string datapath_;
};

TEST_F(OvsTest, PortOnBrIntCarriesNeutronExternalIdsAndInstancesTalk) {
  VifNetwork vifs(Config());
  InstanceProcess vm1, vm2;
  VifSpec spec1 = Spec(kPort1, "", 5);  // empty bridge: br-int
  VifAttachment a1 = vifs.AttachToOvs(kVm1, NetnsRef::Pid(vm1.pid()), spec1);
  vifs.AttachToOvs(kVm2, NetnsRef::Pid(vm2.pid()), Spec(kPort2, "br-int", 6));
  EXPECT_EQ(a1.bridge, "br-int");
  EXPECT_EQ(a1.kind, VifKind::kOvs);

  OvsVsctl vsctl(ovs_->config());
  auto ports = vsctl.ListPorts("br-int");
  std::sort(ports.begin(), ports.end());
  EXPECT_EQ(ports, (std::vector<std::string>{Devname(kPort1), Devname(kPort2)}));
  auto ids = vsctl.InterfaceExternalIds(Devname(kPort1));
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (ExternalIds{{"attached-mac", "fa:16:3e:00:00:05"},
                               {"iface-id", kPort1},
                               {"iface-status", "active"},
                               {"vm-uuid", kVm1}}));
  // The same, as an operator would read it.
  EXPECT_EQ(ovs_->Vsctl({"get", "Interface", Devname(kPort2), "external_ids:iface-id"}),
            "\"" + std::string(kPort2) + "\"\n");
  EXPECT_EQ(ovs_->Vsctl({"get", "Interface", Devname(kPort2), "error"}), "[]\n");
  EXPECT_EQ(ovs_->Vsctl({"get", "Port", Devname(kPort2), "tag"}), "[]\n") << "no VLAN tag";

  // NORMAL forwarding (the default flow) between the two ports.
  EXPECT_TRUE(Ping(vm1.netns(), "10.0.0.6")) << datapath_ << "\n" << ovs_->VswitchdLog();
  EXPECT_TRUE(Ping(vm2.netns(), "10.0.0.5"));
  {
    testing::HttpServer server(vm2.netns(), 8080, "hello from vm2");
    EXPECT_EQ(testing::HttpGet(vm1.netns(), "10.0.0.6", 8080), "hello from vm2 10.0.0.5");
  }

  EXPECT_TRUE(vifs.Detach(kVm1, kPort1));
  EXPECT_EQ(vsctl.ListPorts("br-int"), (std::vector<std::string>{Devname(kPort2)}));
  EXPECT_FALSE(vsctl.InterfaceExternalIds(Devname(kPort1)));
  EXPECT_FALSE(Ping(vm2.netns(), "10.0.0.5"));
  EXPECT_EQ(vifs.DetachInstance(kVm2), 1u);
  ExpectNothingLeft(vifs);
}

TEST_F(OvsTest, MissingBridgeAndUnreachableDatabaseLeaveNothing) {
  InstanceProcess vm1;
  {
    VifNetwork vifs(Config());
    std::string message;
    EXPECT_EQ(
        KindOf(
            [&] { vifs.AttachToOvs(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, "br-nope", 5)); },
            &message),
        ErrorKind::kNotFound);
    EXPECT_NE(message.find("br-nope"), std::string::npos) << message;
    ExpectNothingLeft(vifs);
  }
  VifNetworkConfig broken = Config();
  broken.ovsdb.db = "unix:" + tmp_.Sub("no-such.sock");
  broken.ovsdb.timeout_seconds = 1;
  VifNetwork vifs(broken);
  std::string message;
  EXPECT_EQ(KindOf([&] { vifs.AttachToOvs(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, "", 5)); },
                   &message),
            ErrorKind::kSystem);
  EXPECT_NE(message.find("no-such.sock"), std::string::npos) << message;
  ExpectNothingLeft(vifs);
}

TEST_F(OvsTest, ReconcileRemovesTheOvsPortsOfDeadInstances) {
  InstanceProcess vm1, vm2;
  {
    VifNetwork before(Config());
    before.AttachToOvs(kVm1, NetnsRef::Pid(vm1.pid()), Spec(kPort1, "br-int", 5));
    before.AttachToOvs(kVm2, NetnsRef::Pid(vm2.pid()), Spec(kPort2, "br-int", 6));
  }
  VifNetwork after(Config());
  EXPECT_EQ(after.Reconcile({kVm2}).size(), 1u);
  EXPECT_EQ(OvsVsctl(ovs_->config()).ListPorts("br-int"),
            (std::vector<std::string>{Devname(kPort2)}));
  after.Reconcile({});
  ExpectNothingLeft(after);
}

// An instance stopped and started again: its namespace died and took the veth with it, but
// the record and the OVS port remain until it is attached again.
TEST_F(OvsTest, AnInstanceWhoseNamespaceDiedIsReattachedOnStart) {
  VifNetwork vifs(Config());
  auto vm1 = std::make_unique<InstanceProcess>();
  InstanceProcess vm2;
  vifs.AttachToOvs(kVm1, NetnsRef::Pid(vm1->pid()), Spec(kPort1, "br-int", 5));
  vifs.AttachToOvs(kVm2, NetnsRef::Pid(vm2.pid()), Spec(kPort2, "br-int", 6));
  vm1.reset();  // "stop": the last process in the namespace exits
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  for (int i = 0; i < 250 && host.FindLink(Devname(kPort1)); ++i) ::usleep(20000);
  ASSERT_FALSE(host.FindLink(Devname(kPort1))) << "the namespace's veth outlived it";
  EXPECT_EQ(vifs.ListInstance(kVm1).size(), 1u);

  vm1 = std::make_unique<InstanceProcess>();  // "start"
  vifs.AttachToOvs(kVm1, NetnsRef::Pid(vm1->pid()), Spec(kPort1, "br-int", 5));
  auto ports = OvsVsctl(ovs_->config()).ListPorts("br-int");
  std::sort(ports.begin(), ports.end());
  EXPECT_EQ(ports, (std::vector<std::string>{Devname(kPort1), Devname(kPort2)}));
  EXPECT_EQ(vifs.List().size(), 2u);
  EXPECT_TRUE(Ping(vm1->netns(), "10.0.0.6"));
  EXPECT_EQ(vifs.DetachInstance(kVm1), 1u);
  EXPECT_EQ(vifs.DetachInstance(kVm2), 1u);
  ExpectNothingLeft(vifs);
}

class LibvirtTest : public VifNetworkTest {};

TEST_F(LibvirtTest, UnreachableLibvirtdIsUnsupportedAndNamesTheUri) {
  if (!HaveLibvirt()) GTEST_SKIP() << "built without libvirt";
  InstanceProcess vm1;
  // A socket that cannot exist: the outcome does not depend on the host.
  VifNetworkConfig config = Config();
  config.libvirt_uri = "qemu:///system?socket=" + tmp_.Sub("libvirt-sock");
  VifNetwork vifs(config);
  std::string message;
  EXPECT_EQ(KindOf([&] { vifs.AttachToLibvirtNetwork(kVm1, NetnsRef::Pid(vm1.pid()), "default"); },
                   &message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("libvirtd is not reachable at " + config.libvirt_uri), std::string::npos)
      << message;
  EXPECT_NE(message.find("default"), std::string::npos) << message;
  ExpectNothingLeft(vifs);
  EXPECT_FALSE(Netlink::OpenIn(NetnsRef::Fd(vm1.netns())).FindLink("eth0"));
}

TEST_F(LibvirtTest, DefaultUriWithoutLibvirtd) {
  if (!HaveLibvirt()) GTEST_SKIP() << "built without libvirt";
  if (PathExists("/run/libvirt/libvirt-sock") || PathExists("/run/libvirt/virtnetworkd-sock")) {
    GTEST_SKIP() << "libvirtd runs here; this test is about its absence";
  }
  InstanceProcess vm1;
  VifNetwork vifs(Config());
  std::string message;
  EXPECT_EQ(KindOf([&] { vifs.AttachToLibvirtNetwork(kVm1, NetnsRef::Pid(vm1.pid()), "default"); },
                   &message),
            ErrorKind::kUnsupported);
  EXPECT_NE(message.find("libvirtd is not reachable at qemu:///system"), std::string::npos)
      << message;
  ExpectNothingLeft(vifs);
}

// A real libvirtd, started by the test in namespaces of its own (libvirt_fixture.h), with a
// network that has DHCP: the instance end joins its bridge and gets a lease from libvirt's
// dnsmasq through it.
TEST_F(LibvirtTest, JoinsTheBridgeOfARunningLibvirtNetworkAndGetsALease) {
  if (!HaveLibvirt()) GTEST_SKIP() << "built without libvirt";
  if (!testing::HaveLibvirtd()) GTEST_SKIP() << "libvirtd not installed";
  MakeDirs(tmp_.Sub("lv"), 0755);
  testing::LibvirtDaemon daemon(tmp_.Sub("lv"));
  daemon.CreateNetwork("berth-test", "virbr-bt0");

  VifNetworkConfig config = Config();
  config.host_netns_fd = daemon.netns();  // where libvirt's bridge is
  config.libvirt_uri = daemon.uri();
  VifNetwork vifs(config);
  InstanceProcess vm1;
  std::string message;
  EXPECT_EQ(KindOf([&] { vifs.AttachToLibvirtNetwork(kVm1, NetnsRef::Pid(vm1.pid()), "nope"); },
                   &message),
            ErrorKind::kNotFound)
      << message;
  VifAttachment a = vifs.AttachToLibvirtNetwork(kVm1, NetnsRef::Pid(vm1.pid()), "berth-test");
  EXPECT_EQ(a.bridge, "virbr-bt0");
  EXPECT_EQ(a.kind, VifKind::kLibvirt);
  EXPECT_EQ(a.devname, LibvirtHostIfname(kVm1, "berth-test"));
  EXPECT_EQ(a.mac.ToString().substr(0, 9), "52:54:00:");
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(daemon.netns()));
  EXPECT_EQ(host.GetLink(a.devname).master_index, host.GetLink("virbr-bt0").index);

  // busybox's DHCP client in the instance; its script records the address it was offered.
  std::string script = tmp_.Sub("udhcpc.sh"), leased = tmp_.Sub("leased");
  WriteFileAtomic(script,
                  "#!/bin/sh\n[ \"$1\" = bound ] && echo \"$ip\" > " + leased + "\nexit 0\n");
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  auto dhcp = RunInNetns(vm1.netns(), [&] {
    return RunCommand({"/bin/busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "5", "-T",
                       "1", "-s", script},
                      20000);
  });
  EXPECT_EQ(dhcp.exit_code, 0) << dhcp.out << dhcp.err << daemon.Log();
  std::string ip = ReadFileIfExists(leased).value_or("");
  EXPECT_EQ(ip.rfind("192.168.150.", 0), 0u) << "leased: " << ip;

  EXPECT_TRUE(vifs.Detach(kVm1, "libvirt:berth-test"));
  EXPECT_FALSE(host.FindLink(a.devname));
  EXPECT_TRUE(vifs.List().empty());
}

TEST_F(LibvirtTest, BadNetworkNameIsRefusedBeforeAskingLibvirt) {
  InstanceProcess vm1;
  VifNetwork vifs(Config());
  EXPECT_EQ(KindOf([&] { vifs.AttachToLibvirtNetwork(kVm1, NetnsRef::Pid(vm1.pid()), "a/b"); }),
            ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace berth::net
