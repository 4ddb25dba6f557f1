// A real berthd configured with the loopback Keystone + Glance: boots instances from Glance
// images through POST /v1/instances, maps Glance's refusals to its own statuses, uploads a
// snapshot into Glance (and boots it again), and accepts Keystone tokens with an allowed role.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "runtime/common/file_util.h"
#include "tests/integration/glance/fake_openstack.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/busybox_rootfs.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

class BerthdGlanceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!IsRoot()) return;
    dir_ = new TempDir();
    ::chmod(dir_->path().c_str(), 0755);
    std::string fs = dir_->Sub("rootfs");
    BuildBusyboxRootfs(fs);
    rootfs_ = dir_->Sub("busybox.tar");
    ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + rootfs_ + " .").c_str()), 0);
    fake_ = new FakeOpenStack(dir_->Sub("fake"));
    std::string openstack =
        "[keystone]\nauth_url = " + fake_->url() +
        "/v3\nusername = berth\npassword = berth-pass\nproject_name = service\n"
        "token_cache_seconds = 0\n"
        "[glance]\nregion_name = RegionOne\nretries = 2\nretry_backoff_ms = 10\n"
        "presync = false\n";
    MakeDirs(dir_->Sub("berthd"), 0700);
    daemon_ = new Daemon(dir_->Sub("berthd"), openstack);
    daemon_->Start();
    fake_->AddImage(
        "{\"id\": \"11111111-2222-3333-4444-555555555555\", \"name\": \"busybox\", "
        "\"data_file\": \"" +
        rootfs_ + "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\"}");
    fake_->AddImage(
        "{\"id\": \"99999999-2222-3333-4444-555555555555\", \"name\": \"vm\", "
        "\"data_file\": \"" +
        rootfs_ + "\", \"container_format\": \"bare\", \"disk_format\": \"qcow2\"}");
  }
  static void TearDownTestSuite() {
    if (daemon_) {
      EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
      daemon_->Finish();
    }
    delete daemon_;
    daemon_ = nullptr;
    delete fake_;
    fake_ = nullptr;
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!IsRoot()) GTEST_SKIP() << "needs root";
    ASSERT_NE(daemon_, nullptr);
  }
  void TearDown() override {
    if (!daemon_) return;
    EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
    if (HasFailure()) std::fprintf(stderr, "--- berthd log ---\n%s\n", daemon_->log().c_str());
  }

  HttpResult Spawn(const std::string& image, const std::string& token,
                   const std::string& extra = "") {
    std::string body = "{\"image\": \"" + image +
                       "\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64}, "
                       "\"command\": [\"sh\", \"-c\", \"echo hello from glance; trap 'exit 0' "
                       "TERM; while true; do sleep 0.05; done\"]" +
                       (token.empty() ? "" : ", \"token\": \"" + token + "\"") + extra + "}";
    return daemon_->Post("/v1/instances", body);
  }

  static std::string Kind(const HttpResult& r) {
    auto d = r.Json();
    if (!d.IsObject() || !d.HasMember("error")) return "";
    return Str(d["error"], "kind");
  }

  static constexpr const char* kBusybox = "11111111-2222-3333-4444-555555555555";
  static TempDir* dir_;
  static FakeOpenStack* fake_;
  static Daemon* daemon_;
  static std::string rootfs_;
};

TempDir* BerthdGlanceTest::dir_ = nullptr;
FakeOpenStack* BerthdGlanceTest::fake_ = nullptr;
Daemon* BerthdGlanceTest::daemon_ = nullptr;
std::string BerthdGlanceTest::rootfs_;

TEST_F(BerthdGlanceTest, BootsFromAGlanceImageAndCachesIt) {
  std::string token = fake_->Issue("demo");
  HttpResult r = Spawn(
      kBusybox, token,
      ", \"glance\": {\"id\": \"" + std::string(kBusybox) + "\", \"container_format\": \"bare\"}");
  ASSERT_EQ(r.status, 201) << r.body;
  auto doc = r.Json();
  EXPECT_EQ(Str(doc, "image_ref"), kBusybox);
  EXPECT_EQ(Str(doc, "power_state_name"), "RUNNING");
  std::string uuid = Str(doc, "uuid");
  std::string console;
  for (int i = 0; i < 100 && console.find("hello from glance") == std::string::npos; ++i) {
    console = daemon_->Get("/v1/instances/" + uuid + "/console").body;
    usleep(20000);
  }
  EXPECT_NE(console.find("hello from glance"), std::string::npos) << console;
  std::string path = std::string("GET /v2/images/") + kBusybox + "/file";
  int downloads = fake_->Count(path);
  EXPECT_GE(downloads, 1);
  // A second boot (with the service token this time) uses the synced image.
  HttpResult again = Spawn(kBusybox, "");
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_EQ(Str(again.Json(), "image"), Str(doc, "image"));
  EXPECT_EQ(fake_->Count(path), downloads);
}

TEST_F(BerthdGlanceTest, RebuildFromAGlanceImageNotYetSynced) {
  HttpResult r = Spawn(kBusybox, "");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string uuid = Str(r.Json(), "uuid");
  // Another Glance image, never booted here: the rebuild syncs it as a spawn would, with
  // the request's token.
  const std::string id = "44444444-2222-3333-4444-555555555555";
  fake_->AddImage("{\"id\": \"" + id + "\", \"data_file\": \"" + rootfs_ +
                  "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\"}");
  HttpResult rb = daemon_->Post("/v1/instances/" + uuid + "/action",
                                "{\"action\": \"rebuild\", \"image\": \"" + id +
                                    "\", \"token\": \"" + fake_->Issue("demo") + "\"}");
  ASSERT_EQ(rb.status, 200) << rb.body;
  auto doc = rb.Json();
  EXPECT_EQ(Str(doc, "image_ref"), id);
  EXPECT_EQ(Str(doc, "power_state_name"), "RUNNING");
  EXPECT_EQ(fake_->Count("GET /v2/images/" + id + "/file"), 1);
  // An id Glance does not know: 404 of kind glance_not_found, the instance untouched.
  HttpResult missing =
      daemon_->Post("/v1/instances/" + uuid + "/action",
                    R"({"action": "rebuild", "image": "55555555-0000-0000-0000-000000000000"})");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(Kind(missing), "glance_not_found");
  auto after = daemon_->Get("/v1/instances/" + uuid).Json();
  EXPECT_EQ(Str(after, "image_ref"), id);
  EXPECT_EQ(Str(after, "power_state_name"), "RUNNING");
}

TEST_F(BerthdGlanceTest, ConcurrentBootsOfANewImageDownloadItOnce) {
  const std::string id = "33333333-2222-3333-4444-555555555555";
  fake_->AddImage("{\"id\": \"" + id + "\", \"data_file\": \"" + rootfs_ +
                  "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\"}");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "delay_ms": 15, "count": 4})");
  std::vector<std::thread> boots;
  std::vector<long> status(4);
  for (int i = 0; i < 4; ++i) boots.emplace_back([&, i] { status[i] = Spawn(id, "").status; });
  for (auto& t : boots) t.join();
  for (long st : status) EXPECT_EQ(st, 201);
  EXPECT_EQ(fake_->Count("GET /v2/images/" + id + "/file"), 1);
}

TEST_F(BerthdGlanceTest, GlanceRefusalsBecomeClearStatusesAndLeaveNoInstance) {
  HttpResult vm = Spawn("99999999-2222-3333-4444-555555555555", "");
  EXPECT_EQ(vm.status, 400) << vm.body;
  EXPECT_EQ(Kind(vm), "glance_image_unacceptable");
  EXPECT_NE(vm.body.find("qcow2"), std::string::npos) << vm.body;
  const std::string corrupt = "66666666-2222-3333-4444-555555555555";
  fake_->AddImage("{\"id\": \"" + corrupt + "\", \"data_file\": \"" + rootfs_ +
                  "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\", "
                  "\"checksum\": \"00000000000000000000000000000000\"}");
  HttpResult bad = Spawn(corrupt, "");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Kind(bad), "glance_image_corrupt") << bad.body;
  HttpResult missing = Spawn("00000000-0000-0000-0000-000000000000", "");
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(Kind(missing), "glance_not_found");
  HttpResult unauthorized = Spawn("22222222-2222-3333-4444-555555555555", "expired-token");
  EXPECT_EQ(unauthorized.status, 401) << unauthorized.body;
  EXPECT_EQ(Kind(unauthorized), "glance_unauthorized");
  int glance_calls = fake_->Count("GET /v2/images/no-such-local-image");
  HttpResult local = Spawn("no-such-local-image", "");
  EXPECT_EQ(local.status, 404) << local.body;
  EXPECT_EQ(Kind(local), "not_found");  // not a UUID: Glance is not asked
  EXPECT_EQ(fake_->Count("GET /v2/images/no-such-local-image"), glance_calls);
  auto list = daemon_->Get("/v1/instances").Json();
  EXPECT_EQ(list["instances"].Size(), 0u);
}

TEST_F(BerthdGlanceTest, SnapshotIsUploadedToGlanceAndBootsAgain) {
  HttpResult r = Spawn(kBusybox, "");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string uuid = Str(r.Json(), "uuid");
  daemon_->Post("/v1/instances/" + uuid + "/exec",
                R"({"command": ["sh", "-c", "echo snapshot-marker > /etc/marker"]})");
  const std::string snap = "aaaaaaaa-2222-3333-4444-555555555555";
  std::string token = fake_->Issue("demo");
  HttpResult s =
      daemon_->Post("/v1/instances/" + uuid + "/snapshot",
                    "{\"image_id\": \"" + snap + "\", \"name\": \"snap\", \"token\": \"" + token +
                        "\", \"container_format\": \"docker\", \"disk_format\": \"raw\"}");
  ASSERT_EQ(s.status, 201) << s.body;
  auto stats = fake_->Stats();
  ASSERT_TRUE(stats["uploads"].HasMember(snap.c_str())) << s.body;
  const auto& img = stats["images"][snap.c_str()];
  EXPECT_STREQ(img["status"].GetString(), "active");
  EXPECT_STREQ(img["container_format"].GetString(), "docker");
  // The bytes Glance got are a docker-archive with the instance's change in it.
  std::string stored = dir_->Sub("fake/store/") + snap;
  std::string listing = dir_->Sub("listing");
  ASSERT_EQ(std::system(("tar -tf " + stored + " > " + listing).c_str()), 0);
  EXPECT_NE(ReadFile(listing).find("manifest.json"), std::string::npos);
  // A second server from the snapshot.
  HttpResult second = Spawn(snap, token);
  ASSERT_EQ(second.status, 201) << second.body;
  std::string uuid2 = Str(second.Json(), "uuid");
  HttpResult cat =
      daemon_->Post("/v1/instances/" + uuid2 + "/exec", R"({"command": ["cat", "/etc/marker"]})");
  EXPECT_NE(cat.body.find("snapshot-marker"), std::string::npos) << cat.body;
}

TEST_F(BerthdGlanceTest, SnapshotIntoAnActiveImageFailsAndKeepsNothing) {
  HttpResult r = Spawn(kBusybox, "");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string uuid = Str(r.Json(), "uuid");
  size_t images_before = daemon_->Get("/v1/images").Json()["images"].Size();
  HttpResult s = daemon_->Post("/v1/instances/" + uuid + "/snapshot",
                               "{\"image_id\": \"" + std::string(kBusybox) + "\"}");
  EXPECT_EQ(s.status, 409) << s.body;
  EXPECT_EQ(Kind(s), "glance_image_not_queued");
  EXPECT_EQ(daemon_->Get("/v1/images").Json()["images"].Size(), images_before);
}

TEST_F(BerthdGlanceTest, AcceptsKeystoneTokensWithAnAllowedRole) {
  std::string admin = fake_->Issue("berth");
  std::string member = fake_->Issue("demo");
  EXPECT_EQ(daemon_->Request("GET", "/v1/host", "", true, "application/json", admin).status, 200);
  HttpResult m = daemon_->Request("GET", "/v1/host", "", true, "application/json", member);
  EXPECT_EQ(m.status, 401) << m.body;
  EXPECT_EQ(daemon_->Request("GET", "/v1/host", "", true, "application/json", "tok-bogus").status,
            401);
  fake_->Revoke(admin);  // token_cache_seconds = 0: refused at once
  EXPECT_EQ(daemon_->Request("GET", "/v1/host", "", true, "application/json", admin).status, 401);
  // The admin token file still works.
  EXPECT_EQ(daemon_->Get("/v1/host").status, 200);
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

// berthd with presync on: an image marked berth_presync=true is in the store before anyone
// boots it.
TEST(BerthdGlancePresync, MarkedImagesAreSyncedAtStart) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  std::string fs = dir.Sub("rootfs");
  BuildBusyboxRootfs(fs);
  std::string tar = dir.Sub("busybox.tar");
  ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + tar + " .").c_str()), 0);
  FakeOpenStack fake(dir.Sub("fake"));
  const std::string marked = "44444444-2222-3333-4444-555555555555";
  fake.AddImage("{\"id\": \"" + marked + "\", \"data_file\": \"" + tar +
                "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\", "
                "\"properties\": {\"berth_presync\": \"true\"}}");
  fake.AddImage("{\"id\": \"55555555-2222-3333-4444-555555555555\", \"data_file\": \"" + tar +
                "\", \"container_format\": \"bare\", \"disk_format\": \"root-tar\"}");
  MakeDirs(dir.Sub("berthd"), 0700);
  Daemon d(dir.Sub("berthd"), "[keystone]\nauth_url = " + fake.url() +
                                  "\nusername = berth\npassword = berth-pass\n"
                                  "project_name = service\n[glance]\npresync = true\n"
                                  "presync_interval = 0\n");
  d.Start();
  std::string path = "GET /v2/images/" + marked + "/file";
  bool synced = false;
  for (int i = 0; i < 500 && !synced; ++i) {
    synced = PathExists(d.state_dir() + "/glance/" + marked + ".json");
    if (!synced) usleep(20000);
  }
  EXPECT_TRUE(synced) << d.log();
  EXPECT_EQ(fake.Count(path), 1);
  EXPECT_EQ(fake.Count("GET /v2/images/55555555-2222-3333-4444-555555555555/file"), 0);
  HttpResult boot =
      d.Post("/v1/instances", "{\"image\": \"" + marked + "\", \"command\": [\"true\"]}");
  EXPECT_EQ(boot.status, 201) << boot.body;
  EXPECT_EQ(fake.Count(path), 1);  // the boot used the presynced image
  EXPECT_EQ(d.DeleteAllInstances(), 0);
  d.Finish();
}

}  // namespace
}  // namespace berth::testing
