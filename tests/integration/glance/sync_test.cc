// glance_adapter against the loopback Keystone + Glance: download, verification, import,
// retries, errors, the cache, single flight, presync and snapshot upload. Every failure
// case checks that nothing was left: no image, layer, spool file or cache record.
#include "glance_adapter/sync.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "glance_adapter/errors.h"
#include "glance_adapter/verify.h"
#include "runtime/common/file_util.h"
#include "tests/integration/glance/fake_openstack.h"
#include "tests/support/busybox_rootfs.h"
#include "tests/support/test_env.h"

namespace berth::glance {
namespace {

using testing::FakeOpenStack;
using testing::TempDir;

int CountEntries(const std::string& dir, const std::string& prefix = "") {
  int n = 0;
  for (const auto& name : ListDirectory(dir)) n += name.rfind(prefix, 0) == 0;
  return n;
}

// Test data made once: a busybox rootfs tar, the same as a docker-archive and as an OCI
// archive (exported by a scratch store), a second rootfs tar with one more file, and a
// "raw disk" (an MBR signature and zeros).
struct Data {
  TempDir dir;
  std::string rootfs, rootfs2, docker, oci, disk;
};
Data* g_data = nullptr;

class GlanceSyncTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::IsRoot()) return;
    g_data = new Data;
    Data& d = *g_data;
    std::string fs = d.dir.Sub("rootfs");
    testing::BuildBusyboxRootfs(fs);
    d.rootfs = d.dir.Sub("busybox.tar");
    ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + d.rootfs + " .").c_str()), 0);
    WriteFileAtomic(fs + "/etc/changed", "v2\n");
    d.rootfs2 = d.dir.Sub("busybox2.tar");
    ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + d.rootfs2 + " .").c_str()), 0);
    store::ImageStore scratch(d.dir.Sub("scratch"), "overlay");
    store::ImportOptions io;
    io.format = store::ImportFormat::kRootfsTar;
    auto img = scratch.Import(d.rootfs, io);
    d.docker = d.dir.Sub("busybox.docker.tar");
    d.oci = d.dir.Sub("busybox.oci.tar");
    scratch.ExportToFile(img.image.id.str(), store::ExportFormat::kDockerArchive, d.docker);
    scratch.ExportToFile(img.image.id.str(), store::ExportFormat::kOci, d.oci);
    std::string disk(1 << 20, '\0');
    disk[510] = '\x55';
    disk[511] = '\xaa';
    d.disk = d.dir.Sub("disk.raw");
    WriteFileAtomic(d.disk, disk);
  }
  static void TearDownTestSuite() {
    delete g_data;
    g_data = nullptr;
  }

  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root (the layer store keeps owners)";
    ASSERT_NE(g_data, nullptr);
    fake_ = std::make_unique<FakeOpenStack>(dir_.Sub("fake"));
    store_ = std::make_unique<store::ImageStore>(dir_.Sub("store"), "overlay");
    KeystoneOptions ko;
    ko.auth_url = fake_->url() + "/v3";
    ko.username = "berth";
    ko.password = "berth-pass";
    ko.project_name = "service";
    ko.retry = {3, 10, 50};
    keystone_ = std::make_unique<KeystoneClient>(ko);
    GlanceOptions go;
    go.region_name = "RegionOne";
    go.retry = {4, 10, 50};
    go.http.low_speed_time_s = 5;
    glance_ = std::make_unique<GlanceClient>(go, keystone_.get());
    sync_ = std::make_unique<GlanceSync>(*glance_, *store_, SyncOptions{dir_.Sub("cache"), -1});
  }

  void TearDown() override {
    sync_.reset();
    if (HasFailure() && fake_) {
      std::fprintf(stderr, "--- fake_openstack ---\n%s\n",
                   ReadFileIfExists(dir_.Sub("fake/fake.err")).value_or("").c_str());
    }
  }

  void Add(const std::string& id, const std::string& file, const std::string& cf,
           const std::string& df, const std::string& extra = "") {
    fake_->AddImage("{\"id\": \"" + id + "\", \"name\": \"img-" + id + "\", \"data_file\": \"" +
                    file + "\", \"container_format\": \"" + cf + "\", \"disk_format\": \"" + df +
                    "\"" + extra + "}");
  }

  int Downloads(const std::string& id) { return fake_->Count("GET /v2/images/" + id + "/file"); }

  // Nothing of a failed sync: no image, no committed layer or scratch snapshot, no spool
  // file, no cache record.
  void ExpectNothingLeft() {
    EXPECT_TRUE(store_->List().empty());
    int snapshots = 0;
    store_->layers().Walk([&](const store::SnapshotInfo&) { ++snapshots; });
    EXPECT_EQ(snapshots, 0);
    EXPECT_EQ(CountEntries(store_->root() + "/ingest"), 0);
    EXPECT_EQ(CountEntries(dir_.Sub("cache")), 0);
  }

  TempDir dir_;
  std::unique_ptr<FakeOpenStack> fake_;
  std::unique_ptr<store::ImageStore> store_;
  std::unique_ptr<KeystoneClient> keystone_;
  std::unique_ptr<GlanceClient> glance_;
  std::unique_ptr<GlanceSync> sync_;
};

TEST_F(GlanceSyncTest, RootTarStreamsIntoTheStore) {
  Add("img-a", g_data->rootfs, "bare", "root-tar");
  SyncedImage s = sync_->Resolve("img-a", "");
  EXPECT_TRUE(s.downloaded);
  EXPECT_EQ(s.format, "rootfs-tar");
  store::ImageRecord img = store_->Get(s.image_id);
  ASSERT_EQ(img.layers.size(), 1u);
  EXPECT_NE(std::find(img.names.begin(), img.names.end(), "glance/img-a"), img.names.end());
  EXPECT_EQ(Downloads("img-a"), 1);
  EXPECT_EQ(CountEntries(store_->root() + "/ingest"), 0);
  EXPECT_TRUE(PathExists(dir_.Sub("cache/img-a.json")));
}

TEST_F(GlanceSyncTest, SpoolLeftoversOfACrashAreRemovedAtStart) {
  std::string leftover = store_->root() + "/ingest/glance-0123456789abcdef.tar";
  WriteFileAtomic(leftover, "half a download");
  sync_ = std::make_unique<GlanceSync>(*glance_, *store_, SyncOptions{dir_.Sub("cache"), -1});
  EXPECT_FALSE(PathExists(leftover));
}

TEST_F(GlanceSyncTest, RootTarIsUnpackedWhileItDownloadsWithoutASpoolFile) {
  Add("streamed", g_data->rootfs, "bare", "root-tar");
  // ~35 chunks of 64 KiB at 20 ms each: the download takes about 0.7 s.
  fake_->Fault(R"({"method": "GET", "path": "/file$", "delay_ms": 20, "count": 1})");
  std::atomic<bool> done{false};
  std::atomic<int> extracting_seen{0}, spool_seen{0};
  std::thread watcher([&] {
    while (!done) {
      store_->layers().Walk([&](const store::SnapshotInfo& s) {
        if (s.name.rfind("extract-", 0) == 0) ++extracting_seen;
      });
      // (The store's own blob ingest files come and go; a spool would be glance-*.)
      if (CountEntries(store_->root() + "/ingest", "glance-") > 0) ++spool_seen;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  SyncedImage s = sync_->Resolve("streamed", "");
  done = true;
  watcher.join();
  EXPECT_TRUE(s.downloaded);
  EXPECT_GT(extracting_seen.load(), 5) << "the layer was not being unpacked during the download";
  EXPECT_EQ(spool_seen.load(), 0) << "a rootfs tarball was spooled to disk";
}

// Not in the default run (prints a figure): a ~256 MiB rootfs tarball from the loopback
// Glance into the store, streamed and verified. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'.
TEST_F(GlanceSyncTest, DISABLED_Throughput) {
  std::string fs = dir_.Sub("big");
  MakeDirs(fs + "/data");
  std::string cmd = "for i in $(seq 1 64); do head -c 4194304 /dev/urandom > " + fs +
                    "/data/f$i; done && tar -C " + fs + " -cf " + dir_.Sub("big.tar") + " .";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  Add("big", dir_.Sub("big.tar"), "bare", "root-tar");
  auto started = std::chrono::steady_clock::now();
  SyncedImage s = sync_->Resolve("big", "");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  double mib = static_cast<double>(store_->Get(s.image_id).size) / (1 << 20);
  std::printf(
      "glance sync: %.0f MiB rootfs tar downloaded, verified (sha512+md5) and unpacked "
      "in %.2f s = %.0f MiB/s\n",
      mib, secs, mib / secs);
}

TEST_F(GlanceSyncTest, DockerArchiveIsSpooledVerifiedAndTheSpoolRemoved) {
  Add("img-d", g_data->docker, "docker", "raw");
  SyncedImage s = sync_->Resolve("img-d", "");
  EXPECT_EQ(s.format, "docker-archive");
  EXPECT_EQ(store_->Get(s.image_id).source_format, "docker-archive");
  EXPECT_EQ(CountEntries(store_->root() + "/ingest"), 0);
}

TEST_F(GlanceSyncTest, OciArchiveNamedByProperty) {
  Add("img-o", g_data->oci, "bare", "raw",
      ", \"properties\": {\"berth_image_format\": \"oci-archive\"}");
  SyncedImage s = sync_->Resolve("img-o", "");
  EXPECT_EQ(s.format, "oci-archive");
  EXPECT_EQ(store_->Get(s.image_id).source_format, "oci");
}

TEST_F(GlanceSyncTest, HashMismatchFailsAndLeavesNothing) {
  Add("bad-sha", g_data->rootfs, "bare", "root-tar",
      ", \"os_hash_value\": \"" + std::string(128, 'a') + "\"");
  try {
    sync_->Resolve("bad-sha", "");
    FAIL() << "a wrong os_hash_value was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("os_hash_value mismatch"), std::string::npos) << e.message();
  }
  ExpectNothingLeft();
  // The same through the spool (docker-archive), with a wrong md5 this time.
  Add("bad-md5", g_data->docker, "docker", "raw",
      ", \"os_hash_value\": \"\", \"checksum\": \"" + std::string(32, '0') + "\"");
  try {
    sync_->Resolve("bad-md5", "");
    FAIL() << "a wrong checksum was accepted";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("checksum (md5) mismatch"), std::string::npos) << e.message();
  }
  ExpectNothingLeft();
}

TEST_F(GlanceSyncTest, RetriesServerErrors) {
  Add("flaky", g_data->rootfs, "bare", "root-tar");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "status": 500, "count": 2})");
  fake_->Fault(R"({"method": "GET", "path": "^/v2/images/flaky$", "status": 503, "count": 1})");
  SyncedImage s = sync_->Resolve("flaky", "");
  EXPECT_TRUE(s.downloaded);
  EXPECT_EQ(Downloads("flaky"), 3);
  EXPECT_EQ(fake_->Count("GET /v2/images/flaky"), 2);
}

TEST_F(GlanceSyncTest, ResumesADroppedDownloadWithRange) {
  Add("dropped", g_data->rootfs, "bare", "root-tar");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "drop_after": 300000, "count": 2})");
  SyncedImage s = sync_->Resolve("dropped", "");
  EXPECT_EQ(Downloads("dropped"), 3);
  auto stats = fake_->Stats();
  ASSERT_EQ(stats["ranges"].Size(), 2u);
  EXPECT_STREQ(stats["ranges"][0].GetString(), "bytes=300000-");
  EXPECT_STREQ(stats["ranges"][1].GetString(), "bytes=600000-");
  EXPECT_EQ(store_->Get(s.image_id).layers.size(), 1u);
}

TEST_F(GlanceSyncTest, ResumeWorksWhenGlanceIgnoresTheRange) {
  Add("norange", g_data->docker, "docker", "raw");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "drop_after": 200000, "count": 1})");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "ignore_range": true, "count": 1})");
  SyncedImage s = sync_->Resolve("norange", "");  // verified: the bytes were not doubled
  EXPECT_EQ(Downloads("norange"), 2);
  EXPECT_EQ(store_->Get(s.image_id).source_format, "docker-archive");
}

TEST_F(GlanceSyncTest, GivesUpAfterTheRetriesAndLeavesNothing) {
  Add("down", g_data->rootfs, "bare", "root-tar");
  fake_->Fault(R"({"method": "GET", "path": "/file$", "status": 502, "count": 10})");
  try {
    sync_->Resolve("down", "");
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 502);
    EXPECT_EQ(e.slug(), "glance_unavailable");
    EXPECT_NE(e.message().find("after 4 attempts"), std::string::npos) << e.message();
  }
  EXPECT_EQ(Downloads("down"), 4);
  ExpectNothingLeft();
}

TEST_F(GlanceSyncTest, UnauthorizedForbiddenAndMissingAreClearErrors) {
  Add("private", g_data->rootfs, "bare", "root-tar", ", \"owner_token\": \"someone-else\"");
  auto status_of = [&](const std::string& id, const std::string& token) {
    try {
      sync_->Resolve(id, token);
    } catch (const RemoteError& e) {
      return std::to_string(e.http_status()) + " " + e.slug();
    }
    return std::string("ok");
  };
  EXPECT_EQ(status_of("private", "not-a-token"), "401 glance_unauthorized");
  EXPECT_EQ(status_of("private", ""), "403 glance_forbidden");
  EXPECT_EQ(status_of("no-such-image", ""), "404 glance_not_found");
  ExpectNothingLeft();
}

TEST_F(GlanceSyncTest, CachedImageIsNotDownloadedAgain) {
  Add("cached", g_data->rootfs, "bare", "root-tar");
  SyncedImage first = sync_->Resolve("cached", "");
  SyncedImage second = sync_->Resolve("cached", "");
  EXPECT_FALSE(second.downloaded);
  EXPECT_EQ(second.image_id, first.image_id);
  EXPECT_EQ(Downloads("cached"), 1);
  EXPECT_EQ(fake_->Count("GET /v2/images/cached"), 2);
  // With Nova's checksum as a hint, Glance is not even asked.
  SyncedImage third = sync_->Resolve("cached", "", first.checksum);
  EXPECT_EQ(third.image_id, first.image_id);
  EXPECT_EQ(fake_->Count("GET /v2/images/cached"), 2);
  // An image removed from the store is synced again.
  store_->Remove(first.image_id);
  EXPECT_TRUE(sync_->Resolve("cached", "", first.checksum).downloaded);
  EXPECT_EQ(Downloads("cached"), 2);
}

TEST_F(GlanceSyncTest, ChangedImageIsRefreshed) {
  Add("changing", g_data->rootfs, "bare", "root-tar");
  SyncedImage v1 = sync_->Resolve("changing", "");
  Add("changing", g_data->rootfs2, "bare", "root-tar");
  SyncedImage v2 = sync_->Resolve("changing", "");
  EXPECT_TRUE(v2.downloaded);
  EXPECT_NE(v2.image_id, v1.image_id);
  EXPECT_NE(v2.hash, v1.hash);
  EXPECT_EQ(Downloads("changing"), 2);
  EXPECT_EQ(sync_->Cached("changing")->image_id, v2.image_id);
}

TEST_F(GlanceSyncTest, ConcurrentBootsDownloadOnce) {
  Add("popular", g_data->rootfs, "bare", "root-tar");
  // A slow body keeps the first download going while the others arrive.
  fake_->Fault(R"({"method": "GET", "path": "/file$", "delay_ms": 15, "count": 5})");
  constexpr int kBoots = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> ids(kBoots);
  std::atomic<int> downloaded{0}, failed{0};
  for (int i = 0; i < kBoots; ++i) {
    threads.emplace_back([&, i] {
      try {
        SyncedImage s = sync_->Resolve("popular", "");
        ids[i] = s.image_id;
        if (s.downloaded) ++downloaded;
      } catch (const std::exception& e) {
        ++failed;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(downloaded.load(), 1);
  EXPECT_EQ(Downloads("popular"), 1);
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
}

TEST_F(GlanceSyncTest, PresyncDownloadsMarkedImagesOnly) {
  for (const char* id : {"pre-1", "pre-2", "pre-3"}) {
    Add(id, g_data->rootfs, "bare", "root-tar", ", \"properties\": {\"berth_presync\": \"true\"}");
  }
  Add("plain-1", g_data->rootfs, "bare", "root-tar");
  Add("plain-2", g_data->rootfs, "bare", "root-tar",
      ", \"properties\": {\"berth_presync\": \"false\"}");
  EXPECT_EQ(sync_->PresyncOnce(), 3u);  // three marked images over two pages of the list
  for (const char* id : {"pre-1", "pre-2", "pre-3"}) {
    EXPECT_EQ(Downloads(id), 1) << id;
    EXPECT_TRUE(sync_->Cached(id)) << id;
  }
  EXPECT_EQ(Downloads("plain-1"), 0);
  EXPECT_EQ(Downloads("plain-2"), 0);
  EXPECT_EQ(sync_->PresyncOnce(), 0u);  // nothing changed: nothing downloaded
}

TEST_F(GlanceSyncTest, VmDiskIsRefusedBeforeAnyDownload) {
  Add("vm", g_data->disk, "bare", "qcow2");
  try {
    sync_->Resolve("vm", "");
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_EQ(e.slug(), "glance_image_unacceptable");
    EXPECT_NE(e.message().find("qcow2"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("container_format=docker"), std::string::npos) << e.message();
  }
  EXPECT_EQ(Downloads("vm"), 0);
  ExpectNothingLeft();
}

TEST_F(GlanceSyncTest, RawDiskImageUploadedAsBareIsRefusedByItsFirstBytes) {
  Add("rawdisk", g_data->disk, "bare", "raw");
  try {
    sync_->Resolve("rawdisk", "");
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 400);
    EXPECT_NE(e.message().find("not a tar archive"), std::string::npos) << e.message();
  }
  ExpectNothingLeft();
}

TEST_F(GlanceSyncTest, SnapshotUploadCreatesTheImageAndSendsTheBytes) {
  SnapshotUpload up;
  up.glance_id = "snap-new";
  up.name = "my snapshot";
  up.properties = {{"image_type", "snapshot"}};
  UploadSnapshot(*glance_, up, g_data->docker);
  auto stats = fake_->Stats();
  ASSERT_TRUE(stats["uploads"].HasMember("snap-new"));
  EXPECT_EQ(std::string(stats["uploads"]["snap-new"].GetString()),
            HexDigest("sha256", ReadFile(g_data->docker)));
  const auto& img = stats["images"]["snap-new"];
  EXPECT_STREQ(img["status"].GetString(), "active");
  EXPECT_STREQ(img["container_format"].GetString(), "docker");
  EXPECT_STREQ(img["disk_format"].GetString(), "raw");
  EXPECT_STREQ(img["image_type"].GetString(), "snapshot");
  // And it boots: the uploaded snapshot is a Glance image Berth can sync.
  SyncedImage s = sync_->Resolve("snap-new", "");
  EXPECT_EQ(s.format, "docker-archive");
}

TEST_F(GlanceSyncTest, SnapshotUploadFillsAQueuedImageAndRetries) {
  // Nova creates the queued image (no formats yet) before the driver uploads.
  fake_->AddImage(R"({"id": "snap-queued", "name": "from nova"})");
  fake_->Fault(R"({"method": "PUT", "path": "/file$", "status": 503, "count": 1})");
  SnapshotUpload up;
  up.glance_id = "snap-queued";
  up.token = fake_->Issue("demo");
  UploadSnapshot(*glance_, up, g_data->docker);
  EXPECT_EQ(fake_->Count("PATCH /v2/images/snap-queued"), 1);
  EXPECT_EQ(fake_->Count("PUT /v2/images/snap-queued/file"), 2);
  auto stats = fake_->Stats();
  EXPECT_STREQ(stats["images"]["snap-queued"]["status"].GetString(), "active");
  EXPECT_EQ(std::string(stats["uploads"]["snap-queued"].GetString()),
            HexDigest("sha256", ReadFile(g_data->docker)));
  // An active image is not overwritten.
  try {
    UploadSnapshot(*glance_, up, g_data->docker);
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 409);
  }
}

}  // namespace
}  // namespace berth::glance
