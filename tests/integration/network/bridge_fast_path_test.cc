// The fast path's program, run by the kernel (BPF_PROG_TEST_RUN) on frames the test
// builds: which frames it sends straight to another port (TC_ACT_REDIRECT, from
// bpf_redirect_peer) and which it leaves to the bridge and its rules (TCX_NEXT). The
// traffic itself is in bridge_test.cc. Needs root (bpf(2)).
#include "runtime/network/bridge_fast_path.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <cstring>

#include "runtime/common/bpf.h"
#include "runtime/common/error.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"
#include "tests/support/test_env.h"

namespace berth::net {
namespace {

constexpr int32_t kRedirect = TC_ACT_REDIRECT;
constexpr int32_t kBridge = bpf::kTcxNext;

// The ports: the two ends of a veth pair in a namespace the test makes, where the frames
// "arrive" (BPF_PROG_TEST_RUN puts a packet on the device its context names). A test run
// never redirects for real.
int port_a_ifindex = 0, port_b_ifindex = 0;

std::array<uint8_t, 16> Ipv6(const char* text) {
  std::array<uint8_t, 16> out{};
  EXPECT_EQ(::inet_pton(AF_INET6, text, out.data()), 1) << text;
  return out;
}

FastPathPort PortA() {
  return {.ifindex = port_a_ifindex,
          .mac = MacAddress::Parse("02:42:0a:58:00:02"),
          .address = Ipv4Address::Parse("10.88.0.2"),
          .address6 = Ipv6("fd00:88::a58:2")};
}
FastPathPort PortB() {
  return {.ifindex = port_b_ifindex,
          .mac = MacAddress::Parse("02:42:0a:58:00:03"),
          .address = Ipv4Address::Parse("10.88.0.3"),
          .address6 = Ipv6("fd00:88::a58:3")};
}
const MacAddress kGatewayMac = MacAddress::Parse("02:00:00:00:00:01");

std::vector<uint8_t> Ethernet(const MacAddress& dst, const MacAddress& src, uint16_t type) {
  std::vector<uint8_t> frame(dst.bytes.begin(), dst.bytes.end());
  frame.insert(frame.end(), src.bytes.begin(), src.bytes.end());
  frame.push_back(static_cast<uint8_t>(type >> 8));
  frame.push_back(static_cast<uint8_t>(type));
  return frame;
}

// A UDP datagram in IPv4 (checksums are not looked at).
std::vector<uint8_t> Ipv4Frame(const MacAddress& dst, const MacAddress& src, Ipv4Address from,
                               Ipv4Address to) {
  std::vector<uint8_t> frame = Ethernet(dst, src, 0x0800);
  uint8_t ip[20] = {0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17};
  auto f = from.Bytes(), t = to.Bytes();
  std::memcpy(ip + 12, f.data(), 4);
  std::memcpy(ip + 16, t.data(), 4);
  frame.insert(frame.end(), ip, ip + 20);
  frame.insert(frame.end(), 8, 0);  // the UDP header
  return frame;
}

std::vector<uint8_t> Ipv6Frame(const MacAddress& dst, const MacAddress& src,
                               const std::array<uint8_t, 16>& from,
                               const std::array<uint8_t, 16>& to) {
  std::vector<uint8_t> frame = Ethernet(dst, src, 0x86dd);
  uint8_t ip[8] = {0x60, 0, 0, 0, 0, 8, 17, 64};
  frame.insert(frame.end(), ip, ip + 8);
  frame.insert(frame.end(), from.begin(), from.end());
  frame.insert(frame.end(), to.begin(), to.end());
  frame.insert(frame.end(), 8, 0);
  return frame;
}

class FastPathProgramTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    netns_ = CreateNetns();
    Netlink nl = Netlink::OpenIn(NetnsRef::Fd(netns_.get()));
    nl.CreateVethPair({.name = "porta",
                       .peer_name = "portb",
                       .peer_netns = NetnsRef::Fd(netns_.get()),
                       .peer_mac = std::nullopt,
                       .mtu = 0});
    port_a_ifindex = nl.GetLink("porta").index;
    port_b_ifindex = nl.GetLink("portb").index;
    map_ = bpf::CreateHashMap(6, sizeof(BridgeFastPath::Entry), 16, "berth_test");
    program_ = bpf::LoadProgram(BPF_PROG_TYPE_SCHED_CLS, BridgeFastPath::BuildProgram(map_.get()),
                                "berth_test");
    Add(PortA());
    Add(PortB());
  }

  void Add(const FastPathPort& port) {
    auto entry = BridgeFastPath::EntryFor(port);
    bpf::UpdateMapElement(map_.get(), port.mac.bytes.data(), &entry);
  }

  int32_t Run(const std::vector<uint8_t>& frame, int arrives_on = 0) {
    const auto ifindex = static_cast<uint32_t>(arrives_on ? arrives_on : port_a_ifindex);
    return RunInNetns(netns_.get(),
                      [&] { return bpf::TestRunPacket(program_.get(), frame, ifindex); });
  }

  UniqueFd netns_;  // its veth pair goes with it
  UniqueFd map_;
  UniqueFd program_;
};

TEST_F(FastPathProgramTest, AnInstanceToAnotherFromItsOwnAddressesGoesStraightThere) {
  EXPECT_EQ(Run(Ipv4Frame(PortB().mac, PortA().mac, PortA().address, PortB().address)), kRedirect);
  EXPECT_EQ(Run(Ipv6Frame(PortB().mac, PortA().mac, *PortA().address6, *PortB().address6)),
            kRedirect);
  // Any destination address: the bridge delivers by MAC too.
  EXPECT_EQ(
      Run(Ipv4Frame(PortB().mac, PortA().mac, PortA().address, Ipv4Address::Parse("10.88.0.99"))),
      kRedirect);
}

TEST_F(FastPathProgramTest, SpoofedSourcesAreLeftToTheBridgesRules) {
  // Another address (B's, or one nobody has).
  EXPECT_EQ(Run(Ipv4Frame(PortB().mac, PortA().mac, PortB().address, PortB().address)), kBridge);
  EXPECT_EQ(
      Run(Ipv4Frame(PortB().mac, PortA().mac, Ipv4Address::Parse("10.88.0.200"), PortB().address)),
      kBridge);
  EXPECT_EQ(Run(Ipv6Frame(PortB().mac, PortA().mac, *PortB().address6, *PortB().address6)),
            kBridge);
  // A MAC nobody has.
  EXPECT_EQ(Run(Ipv4Frame(PortB().mac, MacAddress::Parse("02:42:0a:58:ff:ff"), PortA().address,
                          PortB().address)),
            kBridge);
  // A's MAC and address, arriving on B's port (B impersonating A): the port decides.
  EXPECT_EQ(
      Run(Ipv4Frame(PortB().mac, PortA().mac, PortA().address, PortB().address), port_b_ifindex),
      kBridge);
}

TEST_F(FastPathProgramTest, WhatIsNotInstanceToInstanceIsLeftToTheBridge) {
  const auto a = PortA(), b = PortB();
  EXPECT_EQ(Run(Ipv4Frame(kGatewayMac, a.mac, a.address, Ipv4Address::Parse("192.0.2.1"))), kBridge)
      << "to the gateway";
  EXPECT_EQ(Run(Ipv4Frame(MacAddress::Parse("ff:ff:ff:ff:ff:ff"), a.mac, a.address,
                          Ipv4Address::Parse("10.88.255.255"))),
            kBridge)
      << "broadcast";
  EXPECT_EQ(Run(Ipv4Frame(a.mac, a.mac, a.address, a.address)), kBridge) << "to its own port";
  EXPECT_EQ(Run(Ipv6Frame(b.mac, a.mac, Ipv6("fe80::42:aff:fe58:2"), *b.address6)), kBridge)
      << "a link-local source (neighbour discovery)";
  EXPECT_EQ(Run(Ipv6Frame(b.mac, a.mac, Ipv6("::"), *b.address6)), kBridge) << "DAD";

  std::vector<uint8_t> arp = Ethernet(b.mac, a.mac, 0x0806);
  arp.resize(42);
  EXPECT_EQ(Run(arp), kBridge) << "ARP";
  std::vector<uint8_t> tagged = Ethernet(b.mac, a.mac, 0x8100);
  std::vector<uint8_t> inner = Ipv4Frame(b.mac, a.mac, a.address, b.address);
  tagged.insert(tagged.end(), {0, 5, 0x08, 0x00});
  tagged.insert(tagged.end(), inner.begin() + 14, inner.end());
  EXPECT_EQ(Run(tagged), kBridge) << "VLAN-tagged";
  // (A frame cut short inside its IP header cannot be tried: BPF_PROG_TEST_RUN parses the
  // header and refuses it. The verifier refuses a program that reads past the length it
  // checked, so the program loading at all shows it checks.)
}

TEST_F(FastPathProgramTest, AnInstanceWithoutIpv6HasNoIpv6FastPath) {
  FastPathPort a = PortA();
  a.address6.reset();
  Add(a);
  EXPECT_EQ(Run(Ipv6Frame(PortB().mac, a.mac, std::array<uint8_t, 16>{}, *PortB().address6)),
            kBridge);
  EXPECT_EQ(Run(Ipv4Frame(PortB().mac, a.mac, a.address, PortB().address)), kRedirect);
}

TEST_F(FastPathProgramTest, ARemovedDestinationIsLeftToTheBridge) {
  auto key = PortB().mac.bytes;
  ASSERT_TRUE(bpf::DeleteMapElement(map_.get(), key.data()));
  EXPECT_EQ(Run(Ipv4Frame(PortB().mac, PortA().mac, PortA().address, PortB().address)), kBridge);
  EXPECT_FALSE(bpf::DeleteMapElement(map_.get(), key.data()));
}

TEST_F(FastPathProgramTest, LoadsUnderItsNameForItsSuccessorToFind) {
  BridgeFastPath fast;
  EXPECT_EQ(bpf::ProgramName(fast.program_fd()), kFastPathProgramName);
  EXPECT_EQ(bpf::ProgramId(fast.program_fd()), fast.program_id());
}

}  // namespace
}  // namespace berth::net
