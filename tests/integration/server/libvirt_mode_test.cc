// berthd's libvirt network mode ("network": {"mode": "libvirt"}) end to end: a real berthd
// and a real libvirtd that the test starts in namespaces of its own
// (tests/integration/network/libvirt_fixture.h), with an isolated (NAT-less) network on a
// bridge the test names. berthd's "host" namespace ([network] host_netns) is libvirtd's,
// where that bridge is, so nothing reaches the real host. Also: the error when libvirtd
// is not running.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/network/libvirt_network.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"
#include "tests/integration/network/libvirt_fixture.h"
#include "tests/integration/network/net_fixture.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/busybox_rootfs.h"

namespace berth::testing {
namespace {

using net::testing::LinksWithPrefix;

constexpr const char* kNetwork = "berth-iso";
constexpr const char* kBridge = "blv-iso0";
constexpr const char* kBridgeAddress = "192.168.150.1";  // the fixture's network

// A network namespace fd bind-mounted on a file, so berthd can open it by path.
class NetnsFile {
 public:
  NetnsFile(int fd, const std::string& path) : path_(path) {
    WriteFileAtomic(path_, "");
    std::string src = "/proc/self/fd/" + std::to_string(fd);
    if (::mount(src.c_str(), path_.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      ThrowErrno("mount", path_);
    }
  }
  ~NetnsFile() { ::umount2(path_.c_str(), MNT_DETACH); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

std::string BusyboxTar(const TempDir& dir) {
  std::string rootfs = dir.Sub("rootfs");
  BuildBusyboxRootfs(rootfs);
  std::string tar = dir.Sub("busybox.tar");
  EXPECT_EQ(std::system(("tar -C " + rootfs + " -cf " + tar + " .").c_str()), 0);
  return tar;
}

// POST /v1/instances with busybox (and CAP_NET_RAW: busybox's ping and udhcpc need raw
// sockets) and a shell loop.
HttpResult CreateInstance(const Daemon& d, const std::string& network) {
  return d.Post("/v1/instances",
                "{\"image\": \"busybox\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64, "
                "\"extra_specs\": {\"berth:net_raw\": \"true\"}}, \"command\": [\"sh\", \"-c\", "
                "\"trap 'exit 0' TERM; while true; do sleep 0.05; done\"], \"network\": " +
                    network + "}");
}

size_t InstanceCount(const Daemon& d) {
  HttpResult r = d.Get("/v1/instances");
  EXPECT_EQ(r.status, 200) << r.body;
  return r.Json()["instances"].Size();
}

class LibvirtModeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRoot()) {
      skip_ = "needs root";
      return;
    }
    if (!net::HaveLibvirt()) {
      skip_ = "berth built without libvirt (libvirt-dev)";
      return;
    }
    if (!net::testing::HaveLibvirtd()) {
      skip_ = "libvirtd or virsh not installed (libvirt-daemon, libvirt-clients)";
      return;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    dir_ = new TempDir();
    ::chmod(dir_->path().c_str(), 0755);
    MakeDirs(dir_->Sub("lv"), 0755);
    try {
      libvirtd_ = new net::testing::LibvirtDaemon(dir_->Sub("lv"));
      libvirtd_->CreateNetwork(kNetwork, kBridge);  // isolated: no <forward>
    } catch (const std::exception& e) {
      // libvirtd is installed but cannot run here: say exactly why.
      skip_ = std::string("libvirtd cannot run here: ") + e.what();
      return;
    }
    host_ = new NetnsFile(libvirtd_->netns(), dir_->Sub("libvirt-netns"));
    WriteFileAtomic(dir_->Sub("resolv.conf"), "nameserver 192.0.2.53\n");
    daemon_ = new Daemon(dir_->path(), "",
                         "[network]\nhost_netns = " + host_->path() + "\nlibvirt_uri = " +
                             libvirtd_->uri() + "\nlibvirt_network = " + kNetwork +
                             "\nhost_resolv_conf = " + dir_->Sub("resolv.conf") + "\n");
    daemon_->Start();
    HttpResult imp = daemon_->Request("POST", "/v1/images?name=busybox&format=rootfs-tar",
                                      ReadFile(BusyboxTar(*dir_)), true, "application/x-tar");
    ASSERT_EQ(imp.status, 201) << imp.body;
  }
  static void TearDownTestSuite() {
    if (daemon_) {
      EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
      daemon_->Finish();
    }
    delete daemon_;
    daemon_ = nullptr;
    delete host_;
    host_ = nullptr;
    delete libvirtd_;  // destroys the network, stops libvirtd (and dnsmasq) by pid
    libvirtd_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_NE(daemon_, nullptr);
  }
  void TearDown() override {
    if (!daemon_) return;
    EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
    // Nothing left: no host veth on libvirt's bridge, no record, no static DHCP host.
    EXPECT_EQ(LinksWithPrefix(libvirtd_->netns(), "bv-"), std::vector<std::string>{});
    EXPECT_EQ(FilesIn(daemon_->state_dir() + "/network/vifs"), std::vector<std::string>{});
    EXPECT_EQ(libvirtd_->Virsh({"net-dumpxml", kNetwork}).find("<host "), std::string::npos);
    if (HasFailure()) {
      std::fprintf(stderr, "--- berthd log ---\n%s\n--- libvirtd log ---\n%s\n",
                   daemon_->log().c_str(), libvirtd_->Log().c_str());
    }
  }

  std::string Exec(const std::string& uuid, const std::string& shell, int* code = nullptr) {
    std::string esc;
    for (char c : shell) {
      if (c == '"' || c == '\\') esc += '\\';
      esc += c;
    }
    HttpResult r = daemon_->Post("/v1/instances/" + uuid + "/exec",
                                 "{\"command\": [\"sh\", \"-c\", \"" + esc + "\"]}");
    EXPECT_EQ(r.status, 200) << r.body;
    if (r.status != 200) return "";
    auto d = r.Json();
    if (code) *code = static_cast<int>(Int(d, "exit_code"));
    return Str(d, "stdout");
  }

  static std::string skip_;
  static TempDir* dir_;
  static net::testing::LibvirtDaemon* libvirtd_;
  static NetnsFile* host_;
  static Daemon* daemon_;
};

std::string LibvirtModeTest::skip_;
TempDir* LibvirtModeTest::dir_ = nullptr;
net::testing::LibvirtDaemon* LibvirtModeTest::libvirtd_ = nullptr;
NetnsFile* LibvirtModeTest::host_ = nullptr;
Daemon* LibvirtModeTest::daemon_ = nullptr;

TEST_F(LibvirtModeTest, InstancesGetAddressesOfTheNetworkAndReachTheBridgeAndEachOther) {
  HttpResult ra = CreateInstance(*daemon_, R"({"mode": "libvirt"})");
  ASSERT_EQ(ra.status, 201) << ra.body;
  std::string a = Str(ra.Json(), "uuid");
  HttpResult rb =
      CreateInstance(*daemon_, R"({"mode": "libvirt", "libvirt_network": "berth-iso"})");
  ASSERT_EQ(rb.status, 201) << rb.body;
  std::string b = Str(rb.Json(), "uuid");

  auto show = daemon_->Get("/v1/instances/" + a).Json();
  ASSERT_EQ(std::string(show["network"]["mode"].GetString()), "libvirt");
  ASSERT_EQ(show["network"]["interfaces"].Size(), 1u);
  const auto& i = show["network"]["interfaces"][0];
  EXPECT_EQ(std::string(i["kind"].GetString()), "libvirt");
  EXPECT_EQ(std::string(i["bridge"].GetString()), kBridge);
  EXPECT_EQ(std::string(i["ifname"].GetString()), "eth0");
  std::string mac = i["mac"].GetString();
  EXPECT_EQ(mac.substr(0, 9), "52:54:00:");
  ASSERT_EQ(i["addresses"].Size(), 1u);
  std::string cidr = i["addresses"][0].GetString();
  std::string ip_a = cidr.substr(0, cidr.find('/'));
  EXPECT_EQ(cidr.substr(cidr.find('/')), "/24");
  // Inside the network's DHCP range (the fixture's .10-.50).
  ASSERT_EQ(ip_a.rfind("192.168.150.", 0), 0u) << cidr;
  int last = std::stoi(ip_a.substr(12));
  EXPECT_GE(last, 10);
  EXPECT_LE(last, 50);
  auto show_b = daemon_->Get("/v1/instances/" + b).Json();
  std::string cidr_b = show_b["network"]["interfaces"][0]["addresses"][0].GetString();
  std::string ip_b = cidr_b.substr(0, cidr_b.find('/'));
  EXPECT_NE(ip_a, ip_b);

  // The host end is on libvirt's bridge, in libvirtd's namespace.
  net::Netlink host = net::Netlink::OpenIn(net::NetnsRef::Fd(libvirtd_->netns()));
  std::string host_if = i["host_ifname"].GetString();
  EXPECT_EQ(host.GetLink(host_if).master_index, host.GetLink(kBridge).index);

  // libvirt holds the reservation, so its dnsmasq gives the address to no one else.
  std::string xml = libvirtd_->Virsh({"net-dumpxml", kNetwork});
  EXPECT_NE(xml.find("<host mac='" + mac + "' ip='" + ip_a + "'/>"), std::string::npos) << xml;

  // Inside: the address, no default route (an isolated network has no gateway), the
  // bridge and the other instance answer; the network's dnsmasq is the resolver.
  EXPECT_NE(Exec(a, "ip -4 addr show eth0").find(ip_a + "/24"), std::string::npos);
  EXPECT_EQ(Exec(a, "cat /sys/class/net/eth0/address"), mac + "\n");
  EXPECT_EQ(Exec(a, "ip route").find("default"), std::string::npos);
  int code = -1;
  Exec(a, std::string("ping -c1 -W2 ") + kBridgeAddress, &code);
  EXPECT_EQ(code, 0) << "instance cannot ping the bridge address";
  Exec(b, "ping -c1 -W2 " + ip_a, &code);
  EXPECT_EQ(code, 0) << "instances cannot reach each other";
  EXPECT_NE(Exec(a, "cat /etc/resolv.conf").find(std::string("nameserver ") + kBridgeAddress),
            std::string::npos);
  EXPECT_NE(Exec(a, "cat /etc/hosts").find(ip_a), std::string::npos);

  // libvirt's dnsmasq agrees: a DHCP client in the instance is offered the same address.
  std::string dhcp =
      Exec(a,
           "printf '#!/bin/sh\\n[ \"$1\" = bound ] && echo \"leased $ip\"\\nexit 0\\n'"
           " > /tmp/dhcp.sh && chmod +x /tmp/dhcp.sh && "
           "udhcpc -i eth0 -f -q -n -t 5 -T 1 -s /tmp/dhcp.sh 2>/dev/null",
           &code);
  EXPECT_EQ(code, 0) << dhcp << libvirtd_->Log();
  EXPECT_NE(dhcp.find("leased " + ip_a), std::string::npos) << dhcp;

  // Delete: the veth, the record and the reservation go; the other instance keeps its own.
  ASSERT_EQ(daemon_->Delete("/v1/instances/" + a).status, 204);
  EXPECT_FALSE(host.FindLink(host_if));
  xml = libvirtd_->Virsh({"net-dumpxml", kNetwork});
  EXPECT_EQ(xml.find("ip='" + ip_a + "'"), std::string::npos) << xml;
  EXPECT_NE(xml.find("ip='" + ip_b + "'"), std::string::npos) << xml;
}

TEST_F(LibvirtModeTest, StopAndStartKeepTheAddress) {
  HttpResult r = CreateInstance(*daemon_, R"({"mode": "libvirt"})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string a = Str(r.Json(), "uuid");
  auto before = daemon_->Get("/v1/instances/" + a).Json();
  std::string cidr = before["network"]["interfaces"][0]["addresses"][0].GetString();
  ASSERT_EQ(daemon_->Post("/v1/instances/" + a + "/action", R"({"action": "stop"})").status, 200);
  ASSERT_EQ(daemon_->Post("/v1/instances/" + a + "/action", R"({"action": "start"})").status, 200);
  auto after = daemon_->Get("/v1/instances/" + a).Json();
  EXPECT_EQ(std::string(after["network"]["interfaces"][0]["addresses"][0].GetString()), cidr);
  EXPECT_NE(Exec(a, "ip -4 addr show eth0").find(cidr), std::string::npos);
  int code = -1;
  Exec(a, std::string("ping -c1 -W2 ") + kBridgeAddress, &code);
  EXPECT_EQ(code, 0);
}

TEST_F(LibvirtModeTest, UnknownNetworkIsNotFoundAndLeavesNothing) {
  HttpResult r = CreateInstance(*daemon_, R"({"mode": "libvirt", "libvirt_network": "nope"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("libvirt network \\\"nope\\\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("does not exist"), std::string::npos) << r.body;
  EXPECT_EQ(InstanceCount(*daemon_), 0u);
}

// No libvirtd behind the URI: a clear error naming it, and nothing made. Needs no
// libvirtd at all (never the host's qemu:///system: a socket that cannot exist).
TEST(LibvirtModeNoDaemonTest, SpawnIsRefusedNamingTheUri) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  curl_global_init(CURL_GLOBAL_DEFAULT);
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  UniqueFd ns = net::CreateNetns();
  NetnsFile host(ns.get(), dir.Sub("hostns"));
  std::string uri = "qemu:///system?socket=" + dir.Sub("no-libvirtd/libvirt-sock");
  Daemon d(dir.path(), "",
           "[network]\nhost_netns = " + host.path() + "\nlibvirt_uri = " + uri + "\n");
  d.Start();
  HttpResult imp = d.Request("POST", "/v1/images?name=busybox&format=rootfs-tar",
                             ReadFile(BusyboxTar(dir)), true, "application/x-tar");
  ASSERT_EQ(imp.status, 201) << imp.body;
  HttpResult r = CreateInstance(d, R"({"mode": "libvirt"})");
  EXPECT_EQ(r.status, 501) << r.body;
  if (net::HaveLibvirt()) {
    EXPECT_NE(r.body.find("libvirtd is not reachable at " + uri), std::string::npos) << r.body;
  } else {
    EXPECT_NE(r.body.find("built without libvirt"), std::string::npos) << r.body;
  }
  EXPECT_EQ(InstanceCount(d), 0u);
  EXPECT_EQ(FilesIn(d.state_dir() + "/network/vifs"), std::vector<std::string>{});
  EXPECT_EQ(LinksWithPrefix(ns.get(), "bv-"), std::vector<std::string>{});
  d.Finish();
}

}  // namespace
}  // namespace berth::testing
