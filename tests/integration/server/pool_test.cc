// The root filesystem made ahead (driver/server/rootfs_pool.h): after a spawn berthd makes
// the next one's snapshot and mounts for the same image and the next user namespace slot;
// a spawn of that image takes them. Checked underneath: the mount on the instance's rootfs,
// its upper dir and its owner, the snapshot records, the mount table and the pool's dir.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "runtime/store/layer/mount.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Every "pool-..." key in the snapshot records.
std::set<std::string> PoolKeys(const std::string& state_dir) {
  std::set<std::string> keys;
  const std::string records = SnapshotRecords(state_dir);
  static const std::regex key("\"(pool-[0-9a-f]+)\"");
  for (std::sregex_iterator it(records.begin(), records.end(), key), end; it != end; ++it) {
    keys.insert((*it)[1]);
  }
  return keys;
}

// Mount table lines at or below `dir`.
std::string MountsBelow(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.find(" " + dir) != std::string::npos) out += line + "\n";
  }
  return out;
}

// berthd's spawn log line of `uuid`.
std::string SpawnLine(const std::string& log, const std::string& uuid) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("instance " + uuid) != std::string::npos &&
        line.find("spawned from") != std::string::npos) {
      return line;
    }
  }
  return "";
}

class RootfsPoolFixture : public ServerTest {
 protected:
  void TearDown() override {
    ServerTest::TearDown();
    // A berthd that failed to clean its staging mounts must not keep the test's temp dir.
    if (daemon_) {
      for (const auto& point : store::MountPointsBelow(PoolDir())) {
        ::umount2(point.c_str(), MNT_DETACH);
      }
    }
  }
  std::string PoolDir() const { return daemon().state_dir() + "/rootfs-pool"; }
  size_t MadeAhead() const { return Count(daemon().log(), "made ahead for"); }
  // Until the pool has made its `n`th root (berthd logs each at debug).
  bool WaitMadeAhead(size_t n) const {
    for (int i = 0; i < 1000; ++i) {
      if (MadeAhead() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // A spawn, then the root made ahead for the next one.
  std::string SpawnAndWaitForTheNextRoot(const std::string& extra_json = "") {
    const size_t before = MadeAhead();
    std::string uuid = CreateInstance(extra_json);
    EXPECT_TRUE(WaitMadeAhead(before + 1)) << "no root made ahead after a spawn";
    return uuid;
  }
  // Nothing of the pool is left but what instances own: no unowned pool snapshot, nothing
  // mounted or left in its dir.
  void ExpectNoPoolLeftovers(const std::set<std::string>& owned) const {
    for (const auto& key : PoolKeys(daemon().state_dir())) {
      EXPECT_TRUE(owned.count(key)) << "the pool snapshot " << key << " is left";
    }
    EXPECT_EQ(MountsBelow(PoolDir()), "");
    EXPECT_TRUE(ListDirectory(PoolDir(), IfMissing::kEmpty).empty());
  }
  // The disks of every instance (the snapshot keys they own).
  std::set<std::string> OwnedDisks() const {
    std::set<std::string> owned;
    for (const auto& uuid : ListDirectory(daemon().state_dir() + "/instances", IfMissing::kEmpty)) {
      owned.insert(DiskKeyOf(daemon().state_dir(), uuid));
    }
    return owned;
  }
  // Pool snapshots no instance owns: the root made ahead (or being made).
  std::set<std::string> Unowned() const {
    std::set<std::string> out;
    const auto owned = OwnedDisks();
    for (const auto& k : PoolKeys(daemon().state_dir())) {
      if (!owned.count(k)) out.insert(k);
    }
    return out;
  }
  // The file at `rel` in the upper dir (the snapshot's own fs) of the instance's disk.
  std::string UpperFile(const std::string& uuid, const std::string& rel) const {
    const std::string key = DiskKeyOf(daemon().state_dir(), uuid);
    const std::string layers = daemon().state_dir() + "/layers/overlay";
    const std::string records = ReadFile(layers + "/metadata.json");
    // "<key>":{"id":"<n>", ...
    std::smatch m;
    if (!std::regex_search(
            records, m, std::regex("\"" + key + "\"\\s*:\\s*\\{\\s*\"id\"\\s*:\\s*\"([0-9]+)\""))) {
      return "";
    }
    return layers + "/snapshots/" + m[1].str() + "/fs/" + rel;
  }
};

using RootfsPoolTest = RootfsPoolFixture;

TEST_F(RootfsPoolTest, ASecondSpawnOfTheSameImageTakesTheRootMadeAhead) {
  const std::string first = SpawnAndWaitForTheNextRoot();
  ASSERT_FALSE(first.empty());
  // Made ahead and held detached: a snapshot, nothing in the mount table or the pool's dir.
  const std::set<std::string> pooled = Unowned();
  ASSERT_EQ(pooled.size(), 1u) << SnapshotRecords(daemon().state_dir());
  EXPECT_EQ(MountsBelow(PoolDir()), "");
  EXPECT_TRUE(ListDirectory(PoolDir(), IfMissing::kEmpty).empty());

  const std::string second = CreateInstance();
  ASSERT_FALSE(second.empty());
  const std::string log = daemon().log();
  EXPECT_NE(SpawnLine(log, second).find("root made ahead"), std::string::npos)
      << SpawnLine(log, second);
  EXPECT_EQ(DiskKeyOf(daemon().state_dir(), second), *pooled.begin())
      << "the instance's disk is not the root made ahead";
  // Its root is mounted where an instance's is, with the image's files.
  EXPECT_NE(MountsBelow(InstanceDir(second) + "/rootfs "), "");
  EXPECT_EQ(Exec(second, "test -x /bin/busybox && echo image-files"), "image-files\n");
  // Writes land in its own upper dir, owned by its own slot's root, seen by no other.
  EXPECT_EQ(Exec(second, "echo mine > /written; cat /written"), "mine\n");
  const std::string upper = UpperFile(second, "written");
  ASSERT_NE(upper, "") << "no snapshot record for " << DiskKeyOf(daemon().state_dir(), second);
  EXPECT_EQ(ReadFile(upper), "mine\n");
  struct stat st;
  ASSERT_EQ(::stat(upper.c_str(), &st), 0) << upper;
  const std::string idmap = ReadFile(InstanceDir(second) + "/idmap.json");
  EXPECT_NE(idmap.find("\"uid\": " + std::to_string(st.st_uid)), std::string::npos)
      << "owner " << st.st_uid << ", slot " << idmap;
  EXPECT_EQ(Exec(first, "test -e /written || echo absent"), "absent\n");
  EXPECT_EQ(Exec(second, "id -u"), "0\n");

  // Delete removes its snapshot; the next root is made for the next slot.
  ASSERT_TRUE(WaitMadeAhead(2));
  const std::string disk = DiskKeyOf(daemon().state_dir(), second);
  ASSERT_EQ(daemon().Delete("/v1/instances/" + second).status, 204);
  EXPECT_EQ(SnapshotRecords(daemon().state_dir()).find("\"" + disk + "\""), std::string::npos)
      << "the deleted instance's snapshot " << disk << " is left";
  EXPECT_FALSE(PathExists(upper));
}

// An image built FROM scratch has no /proc, /dev or /sys: a root made ahead has them made
// already (not at the spawn), as the init would make them: 0755, owned by the slot's root.
TEST_F(RootfsPoolTest, ARootMadeAheadHasTheMountPointsAScratchImageLacks) {
  TempDir scratch;
  MakeDirs(scratch.Sub("root/bin"), 0755);
  ASSERT_EQ(std::system(("cp /bin/busybox " + scratch.Sub("root/bin/") + " && ln -s busybox " +
                         scratch.Sub("root/bin/sh") + " && ln -s busybox " +
                         scratch.Sub("root/bin/sleep") + " && tar -C " + scratch.Sub("root") +
                         " -cf " + scratch.Sub("scratch.tar") + " .")
                            .c_str()),
            0);
  HttpResult imp =
      daemon().Request("POST", "/v1/images?name=from-scratch&format=rootfs-tar",
                       ReadFile(scratch.Sub("scratch.tar")), true, "application/x-tar");
  ASSERT_EQ(imp.status, 201) << imp.body;
  const std::string body =
      R"({"image": "from-scratch", "flavor": {"vcpus": 1, "memory_mb": 64}, "command": ["sleep", "1000"]})";
  const size_t before = MadeAhead();
  HttpResult first = daemon().Post("/v1/instances", body);
  ASSERT_EQ(first.status, 201) << first.body;
  ASSERT_TRUE(WaitMadeAhead(before + 1));
  ::usleep(20000);  // past the coarse clock's tick of the root made ahead
  struct timespec spawned = {};
  ::clock_gettime(CLOCK_REALTIME, &spawned);
  HttpResult second = daemon().Post("/v1/instances", body);
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string uuid = Str(second.Json(), "uuid");
  EXPECT_NE(SpawnLine(daemon().log(), uuid).find("root made ahead"), std::string::npos)
      << SpawnLine(daemon().log(), uuid);
  const std::string idmap = ReadFile(InstanceDir(uuid) + "/idmap.json");
  for (const char* dir : {"proc", "dev", "sys"}) {
    const std::string path = UpperFile(uuid, dir);
    struct stat st;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << path;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << path;
    EXPECT_LT(std::make_pair(st.st_mtim.tv_sec, st.st_mtim.tv_nsec),
              std::make_pair(spawned.tv_sec, spawned.tv_nsec))
        << path << " was made at the spawn, not ahead";
    EXPECT_NE(idmap.find("\"uid\": " + std::to_string(st.st_uid)), std::string::npos)
        << path << " owned by " << st.st_uid << ", slot " << idmap;
  }
  EXPECT_EQ(
      Exec(uuid,
           "test -e /proc/1/status && test -c /dev/null && test -d /sys/class && echo mounted"),
      "mounted\n");
  // The first (made at its spawn, by its init) has them too, the same way.
  const std::string cold = Str(first.Json(), "uuid");
  struct stat cold_st, pooled_st;
  ASSERT_EQ(::lstat(UpperFile(cold, "proc").c_str(), &cold_st), 0);
  ASSERT_EQ(::lstat(UpperFile(uuid, "proc").c_str(), &pooled_st), 0);
  EXPECT_EQ(cold_st.st_mode, pooled_st.st_mode);
}

TEST_F(RootfsPoolTest, AnotherImageGoesTheNormalWayAndAnImageDeleteDropsThePooledRoot) {
  // A second image: busybox and one more file.
  TempDir scratch;
  const std::string tar = scratch.Sub("other.tar");
  ASSERT_EQ(std::system(("cp " + rootfs_tar_ + " " + tar).c_str()), 0);
  WriteFileAtomic(scratch.Sub("flavour"), "other\n");
  ASSERT_EQ(std::system(("tar -C " + scratch.path() + " -rf " + tar + " ./flavour").c_str()), 0);
  HttpResult imp = daemon().Request("POST", "/v1/images?name=other&format=rootfs-tar",
                                    ReadFile(tar), true, "application/x-tar");
  ASSERT_EQ(imp.status, 201) << imp.body;
  const std::string other_id = Str(imp.Json(), "id");

  const std::string a = SpawnAndWaitForTheNextRoot();  // a root for busybox now
  ASSERT_FALSE(a.empty());
  const size_t before = MadeAhead();
  HttpResult r = daemon().Post(
      "/v1/instances",
      R"({"image": "other", "flavor": {"vcpus": 1, "memory_mb": 64}, "command": ["sleep", "1000"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string o = Str(r.Json(), "uuid");
  EXPECT_EQ(SpawnLine(daemon().log(), o).find("root made ahead"), std::string::npos)
      << "another image's spawn took busybox's root";
  EXPECT_EQ(DiskKeyOf(daemon().state_dir(), o), "instance-" + o);
  EXPECT_EQ(Exec(o, "cat /flavour"), "other\n");
  ASSERT_TRUE(WaitMadeAhead(before + 1)) << "no root made ahead for the other image";
  ASSERT_EQ(Unowned().size(), 1u) << "not one root made ahead (busybox's replaced by other's)";

  // In use by an instance: 409. Then the pooled root on it does not keep it.
  EXPECT_EQ(daemon().Delete("/v1/images/" + other_id).status, 409);
  ASSERT_EQ(daemon().Delete("/v1/instances/" + o).status, 204);
  HttpResult del = daemon().Delete("/v1/images/" + other_id);
  EXPECT_EQ(del.status, 204) << del.body;
  ExpectNoPoolLeftovers(OwnedDisks());
  EXPECT_NE(daemon().log().find("dropped"), std::string::npos);

  // busybox spawns go on: the normal way first, then from a root made ahead again.
  const std::string b = SpawnAndWaitForTheNextRoot();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(SpawnLine(daemon().log(), b).find("root made ahead"), std::string::npos);
  const std::string c = CreateInstance();
  ASSERT_FALSE(c.empty());
  EXPECT_NE(SpawnLine(daemon().log(), c).find("root made ahead"), std::string::npos);
  EXPECT_EQ(Exec(c, "echo ok"), "ok\n");
}

TEST_F(RootfsPoolTest, DiffSnapshotStopStartAndRebuildOfAnInstanceFromTheRootMadeAhead) {
  ASSERT_FALSE(SpawnAndWaitForTheNextRoot().empty());
  const std::string b = CreateInstance();
  ASSERT_FALSE(b.empty());
  const std::string disk = DiskKeyOf(daemon().state_dir(), b);
  ASSERT_EQ(disk.rfind("pool-", 0), 0u) << "not made ahead: " << SpawnLine(daemon().log(), b);
  ASSERT_EQ(Exec(b, "echo kept > /marker; cat /marker"), "kept\n");

  HttpResult diff = daemon().Get("/v1/instances/" + b + "/diff");
  ASSERT_EQ(diff.status, 200) << diff.body;
  EXPECT_NE(diff.body.find("/marker"), std::string::npos) << diff.body;

  HttpResult snap = daemon().Post("/v1/instances/" + b + "/snapshot", R"({"name": "from-pool"})");
  ASSERT_TRUE(snap.status == 200 || snap.status == 201) << snap.body;
  const std::string snap_id = Str(snap.Json(), "id");
  HttpResult r = daemon().Post(
      "/v1/instances",
      R"({"image": "from-pool", "flavor": {"vcpus": 1, "memory_mb": 64}, "command": ["sleep", "1000"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string from_snap = Str(r.Json(), "uuid");
  EXPECT_EQ(Exec(from_snap, "cat /marker"), "kept\n");
  ASSERT_EQ(daemon().Delete("/v1/instances/" + from_snap).status, 204);

  // Stopped, its root is unmounted; started, mounted again from the recorded disk.
  ASSERT_EQ(Action(b, R"({"action": "stop", "timeout": 0})").status, 200);
  EXPECT_EQ(MountsBelow(InstanceDir(b) + "/rootfs "), "");
  ASSERT_EQ(Action(b, R"({"action": "start"})").status, 200);
  EXPECT_EQ(Exec(b, "cat /marker"), "kept\n");
  // berthd restarted: still its disk.
  daemon().Terminate();
  daemon().Start();
  EXPECT_EQ(PowerState(b), "RUNNING");
  EXPECT_EQ(Exec(b, "cat /marker"), "kept\n");

  // Rebuilt: a new disk, the one made ahead removed.
  HttpResult rb = Action(b, R"({"action": "rebuild", "image": "busybox"})");
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(Exec(b, "test -e /marker || echo fresh"), "fresh\n");
  EXPECT_NE(DiskKeyOf(daemon().state_dir(), b), disk);
  EXPECT_EQ(SnapshotRecords(daemon().state_dir()).find("\"" + disk + "\""), std::string::npos)
      << "the old disk " << disk << " is left";
  // The committed image goes once no disk sits on its layers (busybox's and b's: every
  // busybox instance's does).
  ASSERT_EQ(daemon().DeleteAllInstances(), 0);
  HttpResult del = daemon().Delete("/v1/images/" + snap_id);
  EXPECT_EQ(del.status, 204) << del.body;
}

// berthd killed while it makes a root ahead (its snapshot made; then mounted at the staging
// dir), and while one is ready (detached): the next start leaves nothing of it. A SIGTERM
// drops the ready one.
TEST_F(RootfsPoolTest, NothingOfARootMadeAheadOutlivesAKilledOrStoppedBerthd) {
  for (const char* point : {"pool-after-snapshot", "pool-after-mount"}) {
    SCOPED_TRACE(point);
    daemon().Kill9();
    daemon().SetPauseAt(point);
    daemon().Start();
    const std::string a = CreateInstance();
    ASSERT_FALSE(a.empty());
    ASSERT_TRUE(daemon().WaitPaused(point)) << daemon().log();
    EXPECT_EQ(Unowned().size(), 1u) << "the snapshot being made is not there";
    if (std::string(point) == "pool-after-mount") {
      EXPECT_NE(MountsBelow(PoolDir()), "") << "the staging mount is not there";
    }
    daemon().Kill9();
    daemon().SetPauseAt("");
    daemon().Start();
    ExpectNoPoolLeftovers(OwnedDisks());
    EXPECT_EQ(PowerState(a), "RUNNING");
    EXPECT_EQ(Exec(a, "echo alive"), "alive\n");
  }
  // A spawn that took the root made ahead, killed before its record: nothing of it is left,
  // its snapshot (named by no record) included.
  {
    SCOPED_TRACE("spawn-after-pooled-root");
    daemon().Kill9();
    daemon().SetPauseAt("spawn-after-pooled-root");
    daemon().Start();
    ASSERT_FALSE(SpawnAndWaitForTheNextRoot().empty());  // cold: nothing was made ahead
    const std::set<std::string> pooled = Unowned();
    ASSERT_EQ(pooled.size(), 1u);
    const std::string half = "7e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b";
    int fd = daemon().SendAndForget(
        "POST", "/v1/instances",
        R"({"uuid": ")" + half +
            R"(", "image": "busybox", "flavor": {"vcpus": 1, "memory_mb": 64}, "command": ["sleep", "1000"]})");
    ASSERT_TRUE(daemon().WaitPaused("spawn-after-pooled-root")) << daemon().log();
    EXPECT_NE(MountsBelow(InstanceDir(half) + "/rootfs "), "") << "not moved onto its rootfs";
    daemon().Kill9();
    ::close(fd);
    daemon().SetPauseAt("");
    daemon().Start();
    EXPECT_EQ(daemon().Get("/v1/instances/" + half).status, 404);
    EXPECT_FALSE(PathExists(InstanceDir(half)));
    EXPECT_EQ(MountsBelow(InstanceDir(half)), "");
    EXPECT_EQ(SnapshotRecords(daemon().state_dir()).find(*pooled.begin()), std::string::npos)
        << "the taken root's snapshot is left";
    ExpectNoPoolLeftovers(OwnedDisks());
  }
  // A root ready (detached: only its snapshot is on disk): SIGKILL, then SIGTERM.
  for (bool kill : {true, false}) {
    SCOPED_TRACE(kill ? "SIGKILL" : "SIGTERM");
    const std::string a = SpawnAndWaitForTheNextRoot();
    ASSERT_FALSE(a.empty());
    ASSERT_EQ(Unowned().size(), 1u) << "no root made ahead";
    if (kill) {
      daemon().Kill9();
    } else {
      daemon().Terminate();
      ExpectNoPoolLeftovers(OwnedDisks());  // before the next start: the stop dropped it
    }
    daemon().Start();
    ExpectNoPoolLeftovers(OwnedDisks());
    EXPECT_EQ(Exec(a, "echo alive"), "alive\n");
  }
}

// Without user namespaces the root is made for no slot: the plain overlay.
class PoolNoUsernsTest : public RootfsPoolFixture {
 protected:
  static void SetUpTestSuite() {
    extra_conf_ = "[security]\nuserns = false\n";
    ServerTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    ServerTest::TearDownTestSuite();
    extra_conf_.clear();
  }
};

TEST_F(PoolNoUsernsTest, ASpawnTakesTheRootMadeAheadWithoutAUserNamespace) {
  ASSERT_FALSE(SpawnAndWaitForTheNextRoot().empty());
  const std::string b = CreateInstance();
  ASSERT_FALSE(b.empty());
  EXPECT_NE(SpawnLine(daemon().log(), b).find("root made ahead"), std::string::npos);
  EXPECT_FALSE(PathExists(InstanceDir(b) + "/idmap.json")) << "a slot without userns";
  EXPECT_EQ(Exec(b, "echo mine > /written; cat /written"), "mine\n");
  const std::string upper = UpperFile(b, "written");
  ASSERT_NE(upper, "");
  struct stat st;
  ASSERT_EQ(::stat(upper.c_str(), &st), 0) << upper;
  EXPECT_EQ(st.st_uid, 0u) << "root inside is the host's root without a user namespace";
  const std::string disk = DiskKeyOf(daemon().state_dir(), b);
  ASSERT_EQ(daemon().Delete("/v1/instances/" + b).status, 204);
  EXPECT_EQ(SnapshotRecords(daemon().state_dir()).find("\"" + disk + "\""), std::string::npos);
}

// rootfs_pool = false: nothing is made ahead, every spawn makes its root.
class PoolOffTest : public RootfsPoolFixture {
 protected:
  static void SetUpTestSuite() {
    extra_conf_ = "rootfs_pool = false\n";
    ServerTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    ServerTest::TearDownTestSuite();
    extra_conf_.clear();
  }
};

TEST_F(PoolOffTest, EverySpawnMakesItsRoot) {
  for (int i = 0; i < 3; ++i) {
    const std::string uuid = CreateInstance();
    ASSERT_FALSE(uuid.empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // longer than a fill takes
    EXPECT_EQ(SpawnLine(daemon().log(), uuid).find("root made ahead"), std::string::npos);
    EXPECT_EQ(DiskKeyOf(daemon().state_dir(), uuid), "instance-" + uuid);
  }
  EXPECT_TRUE(PoolKeys(daemon().state_dir()).empty());
  EXPECT_FALSE(PathExists(PoolDir()));
  EXPECT_EQ(MadeAhead(), 0u);
}

}  // namespace
}  // namespace berth::testing
