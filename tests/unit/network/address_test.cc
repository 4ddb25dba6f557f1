#include "runtime/network/address.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"

namespace berth::net {
namespace {

TEST(AddressTest, Ipv4RoundTrip) {
  auto a = Ipv4Address::Parse("10.88.0.5");
  EXPECT_EQ(a.value, 0x0a580005u);
  EXPECT_EQ(a.ToString(), "10.88.0.5");
  EXPECT_THROW(Ipv4Address::Parse("10.88.0"), Error);
  EXPECT_THROW(Ipv4Address::Parse("10.88.0.256"), Error);
  EXPECT_THROW(Ipv4Address::Parse(""), Error);
}

TEST(AddressTest, SubnetArithmetic) {
  auto s = Ipv4Subnet::Parse("10.88.0.0/16");
  EXPECT_EQ(s.ToString(), "10.88.0.0/16");
  EXPECT_EQ(s.Size(), 65536u);
  EXPECT_EQ(s.Broadcast().ToString(), "10.88.255.255");
  EXPECT_EQ(s.At(1).ToString(), "10.88.0.1");
  EXPECT_TRUE(s.Contains(Ipv4Address::Parse("10.88.200.3")));
  EXPECT_FALSE(s.Contains(Ipv4Address::Parse("10.89.0.1")));
  EXPECT_THROW(s.At(65536), Error);
  EXPECT_EQ(Ipv4Subnet::Parse("0.0.0.0/0").Mask(), 0u);
  EXPECT_THROW(Ipv4Subnet::Parse("10.88.0.1/16"), Error) << "host bits set";
  EXPECT_THROW(Ipv4Subnet::Parse("10.88.0.0/33"), Error);
  EXPECT_THROW(Ipv4Subnet::Parse("10.88.0.0"), Error);
  EXPECT_THROW(Ipv4Subnet::Parse("10.88.0.0/"), Error);
  EXPECT_THROW(Ipv4Subnet::Parse("10.88.0.0/1x"), Error);
}

TEST(AddressTest, Ipv6SubnetEmbedsTheIpv4Address) {
  auto s = Ipv6Subnet::Parse("fd00:88:0:0::/64");
  EXPECT_EQ(s.ToString(), "fd00:88::/64");
  EXPECT_EQ(s.At(1), "fd00:88::1");
  EXPECT_EQ(s.At(Ipv4Address::Parse("10.88.0.5").value), "fd00:88::a58:5");
  EXPECT_EQ(Ipv6Subnet::Parse("2001:db8::/96").At(0xffffffffu), "2001:db8::ffff:ffff");
  EXPECT_EQ(CanonicalIpv6("FD00:0088::0A58:0005"), "fd00:88::a58:5");
  EXPECT_THROW(CanonicalIpv6("fd00::g"), Error);
  EXPECT_THROW(CanonicalIpv6("fd00::1\" accept"), Error);
  for (const char* bad : {"fd00:88::", "fd00:88::/97", "fd00:88::/0", "fd00:88::1/64",
                          "10.88.0.0/16", "fd00:88::/", "fd00:88::/6x", "fd00:::/64"}) {
    EXPECT_THROW(Ipv6Subnet::Parse(bad), Error) << bad;
  }
}

TEST(AddressTest, MacFromIpLikeDocker) {
  auto mac = MacAddress::FromIpv4(Ipv4Address::Parse("10.88.0.5"));
  EXPECT_EQ(mac.ToString(), "02:42:0a:58:00:05");
  EXPECT_EQ(MacAddress::Parse("02:42:0A:58:00:05"), mac);
  EXPECT_THROW(MacAddress::Parse("02:42:0a:58:00"), Error);
  EXPECT_THROW(MacAddress::Parse("02-42-0a-58-00-05"), Error);
  EXPECT_THROW(MacAddress::Parse("02:42:0a:58:00:0g"), Error);
}

}  // namespace
}  // namespace berth::net
