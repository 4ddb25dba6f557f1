// The pure half of berthd's networking: the [network] options, the per-instance request
// (the "network" object and Nova's network_info) and its record.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "driver/server/config.h"
#include "driver/server/instance_network.h"
#include "runtime/common/error.h"

namespace berth::server {
namespace {

NetworkRequest Parse(const std::string& json, const NetworkOptions& o = {}) {
  rapidjson::Document d = ParseJsonObject(json);
  return ParseNetworkRequest(d, o);
}

void ExpectInvalid(const std::string& json, const std::string& needle) {
  try {
    Parse(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.message();
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.message();
  }
}

constexpr const char* kOvsVif = R"({"id": "4a1b2c3d-0000-4000-8000-000000000004", "type": "ovs",
  "address": "fa:16:3e:00:00:04", "active": false,
  "network": {"id": "n", "bridge": "br-int", "meta": {"mtu": 1442},
    "subnets": [
      {"cidr": "10.66.0.0/24", "ips": [{"address": "10.66.0.4"}],
       "gateway": {"address": "10.66.0.1"}, "dns": [{"address": "10.66.0.2"}],
       "routes": [{"cidr": "192.168.9.0/24", "gateway": {"address": "10.66.0.254"}}]},
      {"cidr": "fd00:66::/64", "ips": [{"address": "fd00:66::4"}],
       "gateway": {"address": "fd00:66::1"}, "routes": []}]}})";

TEST(NetworkConfigTest, DefaultsOverridesAndBadValues) {
  Config d = ParseConfig("");
  EXPECT_EQ(d.network.default_mode, "none");
  EXPECT_EQ(d.network.bridge, "berth0");
  EXPECT_EQ(d.network.subnet, "10.88.0.0/16");
  EXPECT_TRUE(d.network.enable_ip_forward);
  EXPECT_EQ(d.network.host_resolv_conf, "/etc/resolv.conf");
  Config c = ParseConfig(
      "[network]\ndefault_mode = bridge\nbridge = br9\nsubnet = 10.9.0.0/24\ngateway = "
      "10.9.0.254\nmtu = 1400\nfallback_dns = 192.0.2.1, 192.0.2.2\nenable_ip_forward = "
      "false\nhost_netns = /run/netns/x\n");
  EXPECT_EQ(c.network.default_mode, "bridge");
  EXPECT_EQ(c.network.gateway, "10.9.0.254");
  EXPECT_EQ(c.network.mtu, 1400u);
  EXPECT_EQ(c.network.fallback_dns, (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
  EXPECT_FALSE(c.network.enable_ip_forward);
  EXPECT_EQ(c.network.subnet6, "") << "IPv4 only unless subnet6 is set";
  EXPECT_EQ(ParseConfig("[network]\nsubnet6 = fd00:9::/64\n").network.subnet6, "fd00:9::/64");
  EXPECT_EQ(d.network.transit, "169.254.88.0/31");
  EXPECT_EQ(ParseConfig("[network]\ntransit = 192.0.2.8/30\n").network.transit, "192.0.2.8/30");
  for (const char* bad :
       {"[network]\ndefault_mode = warp\n", "[network]\nsubnet = 10.9.0.1/24\n",
        "[network]\nsubnet = 10.9.0.0/24\ngateway = 10.10.0.1\n", "[network]\nmtu = 9\n",
        "[network]\nbridge = a-name-that-is-too-long\n", "[network]\nfallback_dns = dns.example\n",
        "[network]\nhost_netns = relative\n", "[network]\nnft_table = a;b\n",
        "[network]\nsubnet6 = fd00:9::/112\n", "[network]\nsubnet6 = fd00:9::1/64\n",
        "[network]\nsubnet6 = 10.9.0.0/24\n", "[network]\ntransit = 169.254.88.0/32\n",
        "[network]\ntransit = 169.254.0.0/16\n", "[network]\ntransit = 169.254.88.1/31\n",
        "[network]\nsubnet = 10.9.0.0/24\ntransit = 10.9.0.8/30\n"}) {
    try {
      ParseConfig(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("[network]"), std::string::npos) << e.message();
    }
  }
  EXPECT_EQ(ParseConfig("[network]\nwhatever = 1\n").warnings.size(), 1u);
}

TEST(NetworkRequestTest, ModesFromTheBodyAndTheDefault) {
  EXPECT_EQ(Parse("{}").mode, "none");
  NetworkOptions bridge_default;
  bridge_default.default_mode = "bridge";
  EXPECT_EQ(Parse("{}", bridge_default).mode, "bridge");
  EXPECT_EQ(Parse(R"({"network_info": []})", bridge_default).mode, "none") << "--nic none";
  auto r = Parse(
      R"({"network": {"mode": "bridge", "ports": [{"host_port": 8080, "container_port": 80},
        {"host_port": 53, "container_port": 53, "protocol": "udp", "host_ip": "127.0.0.1"}]}})");
  ASSERT_EQ(r.ports.size(), 2u);
  EXPECT_EQ(net::ToString(r.ports[0]), "8080:80/tcp");
  EXPECT_EQ(net::ToString(r.ports[1]), "127.0.0.1:53:53/udp");
  EXPECT_EQ(Parse(R"({"network": {"mode": "libvirt"}})").libvirt_network, "default");
}

TEST(NetworkRequestTest, NovaVifsBecomeVifSpecs) {
  auto r = Parse(std::string(R"({"network_info": [)") + kOvsVif + "]}");
  ASSERT_EQ(r.mode, "neutron");
  ASSERT_EQ(r.vifs.size(), 1u);
  const auto& v = r.vifs[0];
  EXPECT_EQ(v.kind, net::VifKind::kOvs);
  EXPECT_EQ(v.spec.devname, "tap4a1b2c3d-00") << "tap + port id [:11] when devname is absent";
  EXPECT_EQ(v.spec.bridge, "br-int");
  EXPECT_EQ(v.spec.mac.ToString(), "fa:16:3e:00:00:04");
  EXPECT_EQ(v.spec.fixed_ips, (std::vector<std::string>{"10.66.0.4/24", "fd00:66::4/64"}));
  EXPECT_EQ(v.spec.gateways, (std::vector<std::string>{"10.66.0.1", "fd00:66::1"}));
  ASSERT_EQ(v.spec.routes.size(), 1u);
  EXPECT_EQ(v.spec.routes[0], (net::VifRoute{"192.168.9.0/24", "10.66.0.254"}));
  EXPECT_EQ(v.spec.mtu, 1442u);
  EXPECT_EQ(v.spec.ifname, "eth0");
  EXPECT_EQ(v.dns, (std::vector<std::string>{"10.66.0.2"}));
  // Persisted and read back unchanged.
  NetworkRequest back = NetworkRequestFromJson(NetworkRequestToJson(r), "network.json");
  ASSERT_EQ(back.vifs.size(), 1u);
  EXPECT_EQ(back.mode, "neutron");
  EXPECT_EQ(back.vifs[0].spec.fixed_ips, v.spec.fixed_ips);
  EXPECT_EQ(back.vifs[0].spec.routes, v.spec.routes);
  EXPECT_EQ(back.vifs[0].spec.mac, v.spec.mac);
  EXPECT_EQ(back.vifs[0].kind, v.kind);
  EXPECT_EQ(back.vifs[0].dns, v.dns);
}

TEST(NetworkRequestTest, OneDefaultRoutePerFamily) {
  std::string second = kOvsVif;
  second.replace(second.find("4a1b"), 4, "5a1b");
  second.replace(second.find("fa:16:3e:00:00:04"), 17, "fa:16:3e:00:00:05");
  auto r = Parse(std::string(R"({"network_info": [)") + kOvsVif + ", " + second + "]}");
  ASSERT_EQ(r.vifs.size(), 2u);
  EXPECT_EQ(r.vifs[1].spec.ifname, "eth1");
  EXPECT_TRUE(r.vifs[1].spec.gateways.empty()) << "the first VIF has the default routes";
}

TEST(NetworkRequestTest, BadRequestsNameTheField) {
  ExpectInvalid(R"({"network": {"mode": "warp"}})", "network.mode");
  ExpectInvalid(R"({"network": {"mode": "bridge", "ports": [{"container_port": 80}]}})",
                "network.ports[0].host_port");
  ExpectInvalid(
      R"({"network": {"mode": "bridge", "ports": [{"host_port": 70000, "container_port": 80}]}})",
      "1..65535");
  ExpectInvalid(
      R"({"network": {"mode": "bridge", "ports": [{"host_port": 1, "container_port": 1}, {"host_port": 1, "container_port": 2}]}})",
      "given twice");
  ExpectInvalid(R"({"network": {"mode": "none", "ports": []}})", "need mode bridge");
  ExpectInvalid(R"({"network": {"mode": "neutron"}})", "needs network_info");
  ExpectInvalid(R"({"network_info": "x"})", "network_info");
  ExpectInvalid(
      R"({"network_info": [{"id": "p", "type": "vhostuser", "address": "fa:16:3e:0:0:1"}]})",
      "network_info[0].type");
  ExpectInvalid(
      R"({"network_info": [{"id": "p", "type": "bridge", "address": "fa:16:3e:00:00:01", "network": {}}]})",
      "network.bridge");
  ExpectInvalid(R"({"network_info": [{"id": "p", "type": "ovs", "address": "nope"}]})",
                "network_info[0].address");
  ExpectInvalid(std::string(R"({"network_info": [)") + kOvsVif + ", " + kOvsVif + "]}",
                "given twice");
}

}  // namespace
}  // namespace berth::server
