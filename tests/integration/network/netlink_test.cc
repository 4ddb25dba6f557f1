// The libnl wrapper against the real kernel, entirely inside namespaces the test makes.
#include "runtime/network/netlink.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>

#include "runtime/common/error.h"
#include "runtime/network/netns.h"
#include "tests/support/test_env.h"

namespace berth::net {
namespace {

ino_t CurrentNetnsInode() {
  struct stat st {};
  EXPECT_EQ(::stat("/proc/thread-self/ns/net", &st), 0);
  return st.st_ino;
}

class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
    before_ = CurrentNetnsInode();
    host_ = CreateNetns();
    peer_ = CreateNetns();
  }
  void TearDown() override {
    if (testing::IsRoot()) {
      EXPECT_EQ(CurrentNetnsInode(), before_) << "caller's netns moved";
    }
  }
  ino_t before_ = 0;
  UniqueFd host_;
  UniqueFd peer_;
};

TEST_F(NetlinkTest, VethIntoAnotherNamespaceConfiguredThere) {
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  auto mac = MacAddress::Parse("02:42:0a:58:00:07");
  host.CreateVethPair({.name = "bt-test0",
                       .peer_name = "eth0",
                       .peer_netns = NetnsRef::Fd(peer_.get()),
                       .peer_mac = mac,
                       .mtu = 1400});
  auto host_end = host.GetLink("bt-test0");
  EXPECT_EQ(host_end.type, "veth");
  EXPECT_EQ(host_end.mtu, 1400u);
  EXPECT_FALSE(host.FindLink("eth0")) << "the peer must not appear on the host side";

  Netlink inside = Netlink::OpenIn(NetnsRef::Fd(peer_.get()));
  auto eth0 = inside.GetLink("eth0");
  EXPECT_EQ(eth0.mac, mac.ToString());
  EXPECT_EQ(eth0.mtu, 1400u);
  inside.SetMtu("eth0", 1300);
  inside.SetUp("lo");
  inside.SetUp("eth0");
  inside.AddAddress("eth0", "10.88.0.7/16");
  inside.AddAddress("eth0", "fd00:88::7/64");
  inside.AddDefaultRoute("eth0", "10.88.0.1");
  eth0 = inside.GetLink("eth0");
  EXPECT_TRUE(eth0.up);
  EXPECT_EQ(eth0.mtu, 1300u);
  auto addrs = inside.ListAddresses("eth0");
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "10.88.0.7/16"), addrs.end());
  EXPECT_NE(std::find(addrs.begin(), addrs.end(), "fd00:88::7/64"), addrs.end());

  // Deleting the host end takes the peer with it.
  host.DeleteLink("bt-test0");
  EXPECT_FALSE(host.FindLink("bt-test0"));
  EXPECT_FALSE(inside.FindLink("eth0"));
}

TEST_F(NetlinkTest, BridgeRenameMoveAndEnslave) {
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  host.CreateBridge("berth-tbr0");
  VethSpec pair;
  pair.name = "bt-a";
  pair.peer_name = "bt-b";
  host.CreateVethPair(pair);
  host.SetMaster("bt-a", "berth-tbr0");
  host.SetMac("bt-b", MacAddress::Parse("02:42:0a:58:00:09"));
  host.SetName("bt-b", "bt-renamed");
  host.SetUp("berth-tbr0");
  auto bridge = host.GetLink("berth-tbr0");
  EXPECT_EQ(bridge.type, "bridge");
  EXPECT_TRUE(bridge.up);
  EXPECT_EQ(host.GetLink("bt-a").master_index, bridge.index);
  EXPECT_EQ(host.GetLink("bt-renamed").mac, "02:42:0a:58:00:09");

  host.MoveToNetns("bt-renamed", NetnsRef::Fd(peer_.get()));
  EXPECT_FALSE(host.FindLink("bt-renamed"));
  Netlink inside = Netlink::OpenIn(NetnsRef::Fd(peer_.get()));
  EXPECT_TRUE(inside.FindLink("bt-renamed"));

  auto links = host.ListLinks();
  auto names = std::vector<std::string>();
  for (auto& l : links) names.push_back(l.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "lo"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "berth-tbr0"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "bt-a"), names.end());

  EXPECT_TRUE(host.DeleteLinkIfExists("bt-a"));
  EXPECT_FALSE(host.DeleteLinkIfExists("bt-a"));
  host.DeleteLink("berth-tbr0");
}

TEST_F(NetlinkTest, ErrorsNameOperationLinkAndErrno) {
  Netlink host = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  try {
    host.SetMtu("bt-missing", 1400);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
    EXPECT_NE(std::string(e.what()).find("set-mtu bt-missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ENODEV"), std::string::npos) << e.what();
  }
  host.CreateBridge("berth-tbr1");
  try {
    host.CreateBridge("berth-tbr1");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists) << e.what();
    EXPECT_NE(std::string(e.what()).find("create-bridge berth-tbr1"), std::string::npos);
  }
  EXPECT_THROW(host.CreateBridge("a-name-longer-than-15"), Error);
  EXPECT_THROW(host.AddAddress("berth-tbr1", "not-an-address"), Error);
}

TEST_F(NetlinkTest, RunInNetnsLeavesCallerAlone) {
  ino_t inside = RunInNetns(peer_.get(), [] { return CurrentNetnsInode(); });
  EXPECT_NE(inside, before_);
  EXPECT_THROW(RunInNetns(peer_.get(), [] { throw Error(ErrorKind::kInternal, "boom"); }), Error);
}

TEST_F(NetlinkTest, RoutesOnLinkAndViaANextHopAndTxChecksumOffload) {
  Netlink nl = Netlink::OpenIn(NetnsRef::Fd(host_.get()));
  VethSpec veth;
  veth.name = "bt-rt0";
  veth.peer_name = "bt-rt1";
  nl.CreateVethPair(veth);
  nl.AddAddress("bt-rt0", "10.0.0.5/24");
  nl.SetUp("bt-rt1");
  nl.SetUp("bt-rt0");
  nl.AddRoute("bt-rt0", "192.168.77.0/24", "10.0.0.254");
  nl.AddRoute("bt-rt0", "172.16.0.0/12", "");
  nl.AddDefaultRoute("bt-rt0", "10.0.0.1");
  auto routes = nl.ListRoutes("bt-rt0");
  for (const char* want :
       {"192.168.77.0/24 via 10.0.0.254", "172.16.0.0/12", "default via 10.0.0.1", "10.0.0.0/24"}) {
    EXPECT_NE(std::find(routes.begin(), routes.end(), want), routes.end()) << want;
  }
  auto kind = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::kInternal;
  };
  EXPECT_EQ(kind([&] { nl.AddRoute("bt-rt0", "192.168.77.0/24", "10.0.0.254"); }),
            ErrorKind::kAlreadyExists);
  EXPECT_EQ(kind([&] { nl.AddRoute("bt-rt0", "192.168.78.0/24", "fd00::1"); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind([&] { nl.AddRoute("bt-rt0", "default", ""); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(kind([&] { nl.AddRoute("bt-nope", "192.168.78.0/24", ""); }), ErrorKind::kNotFound);

  EXPECT_NO_THROW(SetTxChecksumOffload(host_.get(), "bt-rt0", false));
  EXPECT_NO_THROW(SetTxChecksumOffload(host_.get(), "bt-rt0", true));
  EXPECT_EQ(kind([&] { SetTxChecksumOffload(host_.get(), "bt-nope", false); }),
            ErrorKind::kNotFound);
  nl.DeleteLink("bt-rt0");
}

}  // namespace
}  // namespace berth::net
