// One conformance suite for every layer driver, with real mounts (root). Each mount is
// owned by a guard that unmounts it even when an assertion fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/xattr.h>

#include <memory>
#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/archive/apply.h"
#include "runtime/store/layer/mount.h"
#include "runtime/store/layer/snapshotter.h"
#include "tests/integration/store/btrfs_loop.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/tar_builder.h"

namespace berth::store {
namespace {

using testing::TarBuilder;

class MountGuard {
 public:
  MountGuard(const std::vector<Mount>& mounts, std::string target) : target_(std::move(target)) {
    MakeDirs(target_);
    PerformMounts(mounts, target_);
  }
  ~MountGuard() {
    try {
      UnmountAll(target_, true);
    } catch (...) {
    }
  }
  const std::string& path() const { return target_; }

 private:
  std::string target_;
};

class ConformanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    if (GetParam() == "btrfs") {
      std::string why = testing::BtrfsLoop::Unavailable();
      if (!why.empty()) GTEST_SKIP() << why;
    }
    sn_ = OpenSnapshotter(GetParam(), StoreRoot(tmp_, "store"));
  }
  static void TearDownTestSuite() { btrfs_.Release(); }
  // tmp_/name, for btrfs a symlink to a fresh directory on the suite's btrfs image.
  std::string StoreRoot(const berth::testing::TempDir& tmp, const std::string& name) {
    if (GetParam() == "btrfs") return btrfs_.Get().LinkNewDir(tmp.Sub(name));
    return tmp.Sub(name);
  }
  // Prepare key on parent, apply the tar, commit as name.
  void Layer(const std::string& name, const std::string& parent, const std::string& tar) {
    std::string key = "extract-" + name;
    sn_->Prepare(key, parent);
    MemorySource src(tar);
    LayerStream stream(src, {}, name);
    ApplyOptions opts;
    opts.style = sn_->whiteout_style();
    ApplyLayer(stream, sn_->ApplyDir(key), opts);
    stream.Finish();
    sn_->Commit(name, key);
  }
  std::string Mnt(const std::string& n) { return tmp_.Sub("mnt-" + n); }

  berth::testing::TempDir tmp_;
  std::unique_ptr<Snapshotter> sn_;
  static inline testing::BtrfsSuiteLoop btrfs_;
};

TEST_P(ConformanceTest, PrepareWriteCommitView) {
  Layer("base", "", TarBuilder().Dir("etc").File("etc/os", "base\n").File("etc/keep", "k").Build());
  {
    MountGuard m(sn_->Prepare("c1", "base"), Mnt("c1"));
    EXPECT_EQ(ReadFile(m.path() + "/etc/os"), "base\n");
    WriteFileAtomic(m.path() + "/etc/os", "changed\n");
    WriteFileAtomic(m.path() + "/new", "n");
    ASSERT_EQ(::unlink((m.path() + "/etc/keep").c_str()), 0);
  }
  EXPECT_EQ(sn_->Stat("c1").kind, SnapshotKind::kActive);
  EXPECT_EQ(sn_->Stat("c1").parent, "base");
  sn_->Commit("top", "c1");
  EXPECT_EQ(sn_->Stat("top").kind, SnapshotKind::kCommitted);
  EXPECT_THROW(sn_->Stat("c1"), Error);
  {
    MountGuard v(sn_->View("v1", "top"), Mnt("v1"));
    EXPECT_EQ(ReadFile(v.path() + "/etc/os"), "changed\n");
    EXPECT_EQ(ReadFile(v.path() + "/new"), "n");
    EXPECT_FALSE(PathExists(v.path() + "/etc/keep"));
    // Views are read-only.
    EXPECT_THROW(WriteFileAtomic(v.path() + "/x", "x"), Error);
  }
  // The base is untouched.
  {
    MountGuard v(sn_->View("v0", "base"), Mnt("v0"));
    EXPECT_EQ(ReadFile(v.path() + "/etc/os"), "base\n");
    EXPECT_TRUE(PathExists(v.path() + "/etc/keep"));
  }
}

TEST_P(ConformanceTest, WhiteoutsAndOpaqueDirsInTheMergedView) {
  Layer("l1", "",
        TarBuilder()
            .File("gone", "1")
            .File("stay", "1")
            .Dir("opq")
            .File("opq/lower", "1")
            .Dir("dir")
            .File("dir/a", "1")
            .Build());
  Layer("l2", "l1",
        TarBuilder()
            .File(".wh.gone", "")
            .Dir("opq")
            .File("opq/.wh..wh..opq", "")
            .File("opq/upper", "2")
            .File("dir/.wh.a", "")
            .File("dir/b", "2")
            .Build());
  Layer("l3", "l2", TarBuilder().File("gone", "back").Build());
  {
    MountGuard m(sn_->View("v2", "l2"), Mnt("v2"));
    EXPECT_EQ(berth::testing::DirNames(m.path()), (std::set<std::string>{"stay", "opq", "dir"}));
    EXPECT_EQ(berth::testing::DirNames(m.path() + "/opq"), std::set<std::string>{"upper"});
    EXPECT_EQ(berth::testing::DirNames(m.path() + "/dir"), std::set<std::string>{"b"});
  }
  {
    MountGuard m(sn_->Prepare("rw3", "l3"), Mnt("rw3"));
    EXPECT_EQ(ReadFile(m.path() + "/gone"), "back");
    EXPECT_EQ(berth::testing::DirNames(m.path() + "/opq"), std::set<std::string>{"upper"});
  }
}

TEST_P(ConformanceTest, RemoveUsageWalk) {
  Layer("b", "", TarBuilder().File("f", std::string(100000, 'x')).Build());
  sn_->Prepare("a1", "b");
  sn_->View("w1", "b");
  try {
    sn_->Remove("b");
    FAIL() << "removed a parent";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict);
  }
  try {
    sn_->Prepare("a1", "b");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists);
  }
  try {
    sn_->Prepare("a2", "missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
  try {
    sn_->Prepare("a3", "a1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);  // parent not committed
  }
  SnapshotUsage u = sn_->Usage("b");
  EXPECT_GE(u.size, 100000);
  EXPECT_GE(u.inodes, 1);
  std::map<std::string, SnapshotKind> seen;
  sn_->Walk([&](const SnapshotInfo& i) { seen[i.name] = i.kind; });
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen["b"], SnapshotKind::kCommitted);
  EXPECT_EQ(seen["a1"], SnapshotKind::kActive);
  EXPECT_EQ(seen["w1"], SnapshotKind::kView);
  sn_->Remove("a1");
  sn_->Remove("w1");
  sn_->Remove("b");
  seen.clear();
  sn_->Walk([&](const SnapshotInfo& i) { seen[i.name] = i.kind; });
  EXPECT_TRUE(seen.empty());
  EXPECT_TRUE(berth::testing::DirNames(tmp_.Sub("store/snapshots")).empty());
}

TEST_P(ConformanceTest, DeepStack) {
  // 100 layers: for overlay, more lowerdir data than one page holds.
  std::string parent;
  for (int i = 0; i < 100; ++i) {
    std::string name = "layer-" + std::to_string(i);
    Layer(name, parent, TarBuilder().File("f" + std::to_string(i), std::to_string(i)).Build());
    parent = name;
  }
  auto mounts = sn_->Prepare("deep", parent);
  MountGuard m(mounts, Mnt("deep"));
  EXPECT_EQ(ReadFile(m.path() + "/f0"), "0");
  EXPECT_EQ(ReadFile(m.path() + "/f99"), "99");
  EXPECT_EQ(berth::testing::DirNames(m.path()).size(), 100u);
}

TEST_P(ConformanceTest, LayerLimit) {
  std::string parent;
  for (size_t i = 0; i < kMaxLayers; ++i) {
    std::string name = "l" + std::to_string(i);
    sn_->Prepare("k", parent);
    sn_->Commit(name, "k");
    parent = name;
  }
  try {
    sn_->Prepare("too-deep", parent);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

// btrfs only: snapshots are subvolumes, committed layers and views read-only ones.
TEST_P(ConformanceTest, BtrfsSnapshotsAreSubvolumes) {
  if (GetParam() != "btrfs") GTEST_SKIP() << "btrfs only";
  Layer("base", "", TarBuilder().File("f", "1").Build());
  sn_->Prepare("rw", "base");
  sn_->View("ro", "base");
  // Ids follow creation order: base 1 (its extract key's directory), rw 2, ro 3.
  std::string snaps = tmp_.Sub("store/snapshots");
  for (const char* id : {"1", "2", "3"}) {
    struct stat st;
    ASSERT_EQ(::stat((snaps + "/" + id + "/fs").c_str(), &st), 0) << id;
    EXPECT_EQ(st.st_ino, 256u) << id << " is not a subvolume root";
  }
  EXPECT_EQ(ReadFile(snaps + "/2/fs/f"), "1");
  WriteFileAtomic(snaps + "/2/fs/g", "2");
  for (const char* ro : {"1", "3"}) {
    int fd = ::open((snaps + "/" + ro + "/fs/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    EXPECT_LT(fd, 0) << ro << " is writable";
    EXPECT_EQ(errno, EROFS) << ro;
    if (fd >= 0) ::close(fd);
  }
  // The snapshot shares nothing visible with its parent: the parent does not see g.
  EXPECT_FALSE(PathExists(snaps + "/1/fs/g"));
  sn_->Remove("rw");
  sn_->Remove("ro");
  sn_->Remove("base");
  EXPECT_TRUE(berth::testing::DirNames(snaps).empty());
}

INSTANTIATE_TEST_SUITE_P(Drivers, ConformanceTest, ::testing::Values("overlay", "vfs", "btrfs"),
                         [](const auto& info) { return info.param; });

TEST(DriverTest, UnknownDriverIsAClearError) {
  berth::testing::TempDir tmp;
  try {
    OpenSnapshotter("zfs", tmp.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(e.message().find("zfs"), std::string::npos);
  }
}

TEST(DriverTest, BtrfsOnAnotherFilesystemIsAClearError) {
  berth::testing::TempDir tmp;  // under /tmp, which is not btrfs here
  struct statfs fs;
  ASSERT_EQ(::statfs(tmp.path().c_str(), &fs), 0);
  if (static_cast<uint64_t>(fs.f_type) == BTRFS_SUPER_MAGIC) GTEST_SKIP() << "/tmp is btrfs";
  std::string root = tmp.Sub("not-yet/layers/btrfs");
  try {
    OpenSnapshotter("btrfs", root);
    FAIL() << "btrfs driver accepted a non-btrfs root";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_NE(e.message().find(root), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("f_type 0x"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("not btrfs"), std::string::npos) << e.message();
  }
  // Checked before anything is made.
  EXPECT_FALSE(PathExists(tmp.Sub("not-yet")));
}

TEST(DriverTest, OverlayWhiteoutForm) {
  if (!berth::testing::IsRoot()) GTEST_SKIP();
  berth::testing::TempDir tmp;
  auto sn = OpenSnapshotter("overlay", tmp.Sub("s"));
  sn->Prepare("k", "");
  std::string tar = TarBuilder().File(".wh.x", "").Dir("d").File("d/.wh..wh..opq", "").Build();
  MemorySource src(tar);
  LayerStream stream(src, {}, "t");
  ApplyLayer(stream, sn->ApplyDir("k"), {});
  struct stat st;
  ASSERT_EQ(::lstat((sn->ApplyDir("k") + "/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, 0u);
  char v[4] = {};
  EXPECT_EQ(::getxattr((sn->ApplyDir("k") + "/d").c_str(), "trusted.overlay.opaque", v, sizeof v),
            1);
  EXPECT_EQ(v[0], 'y');
}

}  // namespace
}  // namespace berth::store
