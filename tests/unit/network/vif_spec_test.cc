// What a Neutron VIF must look like before anything is made from it.
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/network/libvirt_network.h"
#include "runtime/network/vif_network.h"

namespace berth::net {
namespace {

VifSpec GoodSpec() {
  VifSpec vif;
  vif.port_id = "3f2a6c1e-0b5d-4f0e-9a55-1c2d3e4f5a6b";
  vif.devname = "tap3f2a6c1e-0b";
  vif.bridge = "brq5e1d7c2a-61";
  vif.mac = MacAddress::Parse("fa:16:3e:11:22:33");
  vif.fixed_ips = {"10.0.0.5/24", "fd00:1::5/64"};
  vif.gateways = {"10.0.0.1", "fd00:1::1"};
  vif.routes = {{"192.168.5.0/24", "10.0.0.254"}, {"172.16.0.0/12", ""}};
  vif.mtu = 1450;
  return vif;
}

TEST(VifSpecTest, AcceptsWhatNovaSends) { EXPECT_NO_THROW(ValidateVifSpec(GoodSpec())); }

TEST(VifSpecTest, RejectsMalformedFields) {
  std::vector<std::pair<std::string, std::function<void(VifSpec&)>>> cases = {
      {"empty port", [](VifSpec& v) { v.port_id = ""; }},
      {"port with slash", [](VifSpec& v) { v.port_id = "../x"; }},
      {"devname 16 bytes", [](VifSpec& v) { v.devname = "tap3f2a6c1e-0b5d"; }},
      {"devname with slash", [](VifSpec& v) { v.devname = "tap/x"; }},
      {"bridge mode prefix", [](VifSpec& v) { v.devname = "bt-12345678"; }},
      {"empty bridge", [](VifSpec& v) { v.bridge = ""; }},
      {"bad ifname", [](VifSpec& v) { v.ifname = "eth 0"; }},
      {"ip without prefix", [](VifSpec& v) { v.fixed_ips = {"10.0.0.5"}; }},
      {"prefix too long", [](VifSpec& v) { v.fixed_ips = {"10.0.0.5/33"}; }},
      {"not an ip", [](VifSpec& v) { v.fixed_ips = {"ten/8"}; }},
      {"bad gateway", [](VifSpec& v) { v.gateways = {"10.0.0.300"}; }},
      {"two v4 gateways",
       [](VifSpec& v) {
         v.gateways = {"10.0.0.1", "10.0.0.2"};
       }},
      {"route without prefix",
       [](VifSpec& v) {
         v.routes = {{"192.168.5.0", ""}};
       }},
      {"route mixing families",
       [](VifSpec& v) {
         v.routes = {{"192.168.5.0/24", "fd00::1"}};
       }},
      {"mtu too small", [](VifSpec& v) { v.mtu = 60; }},
  };
  for (auto& [name, mutate] : cases) {
    VifSpec vif = GoodSpec();
    mutate(vif);
    try {
      ValidateVifSpec(vif);
      ADD_FAILURE() << name << ": accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << name;
    }
  }
}

TEST(VifSpecTest, LibvirtHostNamesAreStableShortAndNotTheBridgeModes) {
  std::string a = LibvirtHostIfname("5b0c9e7a-1111-2222-3333-444455556666", "default");
  EXPECT_EQ(a, LibvirtHostIfname("5b0c9e7a-1111-2222-3333-444455556666", "default"));
  EXPECT_NE(a, LibvirtHostIfname("5b0c9e7a-1111-2222-3333-444455556666", "other"));
  EXPECT_EQ(a.size(), 11u);
  EXPECT_EQ(a.rfind("bv-", 0), 0u);
  EXPECT_TRUE(IsValidLinkName(a));
}

TEST(VifSpecTest, KindNames) {
  EXPECT_EQ(ToString(VifKind::kLinuxBridge), "linuxbridge");
  EXPECT_EQ(ToString(VifKind::kOvs), "ovs");
  EXPECT_EQ(ToString(VifKind::kLibvirt), "libvirt");
}

}  // namespace
}  // namespace berth::net
