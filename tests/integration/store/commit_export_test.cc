// Stage 2 of the store against real mounts, for every driver: diff and commit of a
// container's writable layer, export (docker-archive, OCI archive) and re-import into a
// fresh store (same merged rootfs, file by file; a second export is byte-identical), and
// garbage collection including the leftovers of crashes.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <thread>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/image/image_store.h"
#include "runtime/store/layer/mount.h"
#include "tests/integration/store/btrfs_loop.h"
#include "tests/integration/store/tree_compare.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/tar_builder.h"

namespace berth::store {
namespace {

using testing::DescribeTree;
using testing::TarBuilder;
using testing::TarMember;
using testing::TreeDifference;

class Mounted {
 public:
  Mounted(const std::vector<Mount>& mounts, std::string target) : target_(std::move(target)) {
    MakeDirs(target_);
    PerformMounts(mounts, target_);
  }
  ~Mounted() {
    try {
      UnmountAll(target_, true);
    } catch (...) {
    }
  }
  const std::string& path() const { return target_; }
  std::string operator/(const std::string& p) const { return target_ + "/" + p; }

 private:
  std::string target_;
};

std::string BaseLayer() {
  TarBuilder t;
  t.Dir("etc").File("etc/os-release", "base\n").File("etc/passwd", "root:x:0:0\n");
  t.Dir("bin").File("bin/tool", "#!/bin/sh\n", 04755);
  t.Hardlink("bin/tool-link", "bin/tool");
  t.Symlink("bin/abs", "/etc/os-release");
  t.Dir("var").Dir("var/cache").File("var/cache/a", "a").File("var/cache/b", "b");
  t.Dir("home").File("home/owned", "o", 0600);
  t.last().uid = 1000;
  t.last().gid = 1000;
  t.File("home/x", "x");
  t.last().xattrs = {{"user.tag", "v1"}};
  return t.Build();
}

class StoreStage2Test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    if (GetParam() == "btrfs") {
      std::string why = testing::BtrfsLoop::Unavailable();
      if (!why.empty()) GTEST_SKIP() << why;
    }
    WriteFileAtomic(tmp_.Sub("base.tar"), testing::DockerArchive({BaseLayer()}, "base:1"));
    store_ = std::make_unique<ImageStore>(StoreRoot("store", GetParam()), GetParam());
    base_ = store_->Import(tmp_.Sub("base.tar"), {}).image;
  }

  // Prepares "c1" on base, changes it through a real mount, and unmounts.
  void ChangeContainer() {
    Mounted m(store_->layers().Prepare("c1", base_.top_chain().str()), tmp_.Sub("c1"));
    WriteFileAtomic(m / "etc/os-release", "changed\n");       // C
    WriteFileAtomic(m / "etc/new", "new\n");                  // A
    ASSERT_EQ(::unlink((m / "etc/passwd").c_str()), 0);       // D
    ASSERT_EQ(::chmod((m / "home/owned").c_str(), 0640), 0);  // C (metadata only)
    RemoveTree(m / "var/cache");                              // opaque dir (overlay)
    MakeDirs(m / "var/cache");
    WriteFileAtomic(m / "var/cache/c", "c");
    ASSERT_EQ(::link((m / "etc/new").c_str(), (m / "etc/new-link").c_str()), 0);
    ASSERT_EQ(::setxattr((m / "etc/new").c_str(), "user.k", "v", 1, 0), 0);
    MakeDirs(m / "opt/deep/er");
    WriteFileAtomic(m / "opt/deep/er/f", std::string(300000, 'z'));
    ASSERT_EQ(::symlink("../etc/new", (m / "opt/rel").c_str()), 0);
  }

  std::map<std::string, std::string> ImageTree(ImageStore& s, const ImageRecord& img,
                                               const std::string& name) {
    std::string key = "view-" + name;
    Mounted v(s.layers().View(key, img.top_chain().str()), tmp_.Sub("v-" + name));
    auto tree = DescribeTree(v.path());
    s.layers().Remove(key);
    return tree;
  }

  berth::testing::TempDir tmp_;
  static void TearDownTestSuite() { btrfs_.Release(); }
  // tmp_/name; for btrfs a symlink to a fresh directory on the suite's btrfs image.
  std::string StoreRoot(const std::string& name, const std::string& driver) {
    if (driver == "btrfs") return btrfs_.Get().LinkNewDir(tmp_.Sub(name));
    return tmp_.Sub(name);
  }

  std::unique_ptr<ImageStore> store_;
  static inline testing::BtrfsSuiteLoop btrfs_;
  ImageRecord base_;
};

TEST_P(StoreStage2Test, DiffListsAddedChangedDeleted) {
  ChangeContainer();
  std::map<std::string, char> got;
  for (const auto& c : store_->Diff("c1")) got[c.path] = ChangeLetter(c.kind);
  EXPECT_EQ(got["/etc/os-release"], 'C');
  EXPECT_EQ(got["/etc/new"], 'A');
  EXPECT_EQ(got["/etc/new-link"], 'A');
  EXPECT_EQ(got["/etc/passwd"], 'D');
  EXPECT_EQ(got["/home/owned"], 'C');
  EXPECT_EQ(got["/var/cache/c"], 'A');
  EXPECT_EQ(got["/var/cache/a"], 'D');
  EXPECT_EQ(got["/var/cache/b"], 'D');
  EXPECT_EQ(got["/opt"], 'A');
  EXPECT_EQ(got["/opt/deep/er/f"], 'A');
  EXPECT_EQ(got.count("/bin/tool"), 0u);
  EXPECT_EQ(got.count("/home/x"), 0u);
  try {
    store_->Diff("missing");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

TEST_P(StoreStage2Test, CommitMakesANewImageThatLooksLikeTheContainer) {
  ChangeContainer();
  std::map<std::string, std::string> container;
  {
    Mounted m(store_->layers().Mounts("c1"), tmp_.Sub("c1-again"));
    container = DescribeTree(m.path());
  }
  CommitOptions o;
  o.name = "committed:1";
  o.comment = "test commit";
  ImageRecord img = store_->Commit("c1", o);
  ASSERT_EQ(img.layers.size(), 2u);
  EXPECT_EQ(img.layers[0].chain_id, base_.top_chain());
  ASSERT_EQ(img.config.diff_ids.size(), 2u);
  EXPECT_EQ(img.config.diff_ids[1], img.layers[1].diff_id);
  ASSERT_FALSE(img.config.history.empty());
  EXPECT_EQ(img.config.history.back().comment, "test commit");
  EXPECT_EQ(img.config.config.cmd, base_.config.config.cmd);  // the rest of the config kept
  EXPECT_EQ(store_->Get("committed:1").id, img.id);
  // The container's snapshot is still there and still active.
  EXPECT_EQ(store_->layers().Stat("c1").kind, SnapshotKind::kActive);
  auto image = ImageTree(*store_, img, "committed");
  EXPECT_EQ(TreeDifference(container, image), "");
  // Committing the same changes again reuses the layer.
  ImageRecord again = store_->Commit("c1", {});
  EXPECT_EQ(again.layers[1].chain_id, img.layers[1].chain_id);
}

TEST_P(StoreStage2Test, ExportThenImportGivesTheSameRootfs) {
  ChangeContainer();
  CommitOptions o;
  o.name = "exp:1";
  ImageRecord img = store_->Commit("c1", o);
  auto original = ImageTree(*store_, img, "orig");
  ASSERT_GT(original.size(), 15u);
  EXPECT_NE(original["etc/new-link"].find("link=etc/new "), std::string::npos);
  EXPECT_NE(original["bin/tool"].find("104755"), std::string::npos);
  EXPECT_NE(original["etc/new"].find("user.k=v"), std::string::npos);
  EXPECT_EQ(original.count("var/cache/a"), 0u);
  for (ExportFormat f : {ExportFormat::kDockerArchive, ExportFormat::kOci}) {
    SCOPED_TRACE(f == ExportFormat::kOci ? "oci" : "docker-archive");
    std::string file = tmp_.Sub(f == ExportFormat::kOci ? "out-oci.tar" : "out-docker.tar");
    ExportResult r = store_->ExportToFile("exp:1", f, file);
    // The committed layer was written by Berth: its rebuilt tar is the recorded one.
    EXPECT_EQ(r.diff_ids[1], img.layers[1].diff_id);
    EXPECT_FALSE(PathExists(file + ".berth-partial"));
    std::vector<std::string> drivers = {"overlay", "vfs"};
    if (GetParam() == "btrfs") drivers.push_back("btrfs");
    for (const std::string& drv : drivers) {
      SCOPED_TRACE(drv);
      std::string root = StoreRoot("fresh-" + drv + (f == ExportFormat::kOci ? "-oci" : "-d"), drv);
      ImageStore fresh(root, drv);
      ImageRecord back = fresh.Import(file, {}).image;
      EXPECT_EQ(back.id, r.config);
      EXPECT_EQ(back.layers.size(), 2u);
      EXPECT_EQ(TreeDifference(original, ImageTree(fresh, back, drv)), "");
      if (drv == GetParam()) {
        // Deterministic: the re-imported image exports to the very same bytes.
        ExportResult r2 = fresh.ExportToFile(back.id.hex(), f, file + ".again");
        EXPECT_EQ(r2.config, r.config);
        EXPECT_FALSE(r2.diff_ids_rewritten);
        EXPECT_EQ(ReadFile(file), ReadFile(file + ".again"));
      }
    }
  }
}

TEST_P(StoreStage2Test, ExportStreamsToAPipe) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd rd(fds[0]), wr(fds[1]);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(rd.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  ExportResult r;
  try {
    r = store_->Export("base:1", ExportFormat::kOci, wr.get());
  } catch (...) {
    wr.reset();
    reader.join();
    throw;
  }
  wr.reset();
  reader.join();
  EXPECT_EQ(got.size(), r.bytes);
  WriteFileAtomic(tmp_.Sub("piped.tar"), got);
  ImageStore fresh(StoreRoot("fresh", GetParam()), GetParam());
  EXPECT_EQ(fresh.Import(tmp_.Sub("piped.tar"), {}).image.id, r.config);
}

size_t Count(const std::string& dir) {
  size_t n = 0;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

TEST_P(StoreStage2Test, GcRemovesOnlyWhatNothingReferences) {
  std::string root = tmp_.Sub("store");
  std::string drv = root + "/layers/" + GetParam();
  // A second image sharing the base layer.
  std::string top = TarBuilder().File("top", "t").Build();
  WriteFileAtomic(tmp_.Sub("two.tar"), testing::DockerArchive({BaseLayer(), top}, "two:1"));
  ImageRecord two = store_->Import(tmp_.Sub("two.tar"), {}).image;
  store_->layers().Prepare("pinned", two.top_chain().str());

  GcResult nothing = store_->Gc();
  EXPECT_EQ(nothing.layers + nothing.blobs + nothing.snapshots + nothing.dirs, 0u);

  // Leftovers of crashes: a scratch snapshot of an import, an ingest file, a blob no image
  // names, an orphan snapshot directory, and an rm that stopped after its mark.
  store_->layers().Prepare("extract-deadbeef-x", "");
  WriteFileAtomic(root + "/ingest/tmp-123", "partial");
  Digest stray = store_->blobs().Put("stray");
  MakeDirs(drv + "/snapshots/999/fs");
  ASSERT_EQ(::rename((root + "/images/" + base_.id.hex() + ".json").c_str(),
                     (root + "/images/" + base_.id.hex() + ".removing").c_str()),
            0);
  GcResult r = store_->Gc();
  EXPECT_EQ(r.removals_finished, 1u);
  EXPECT_EQ(r.snapshots, 1u);
  EXPECT_GE(r.blobs, 2u);
  EXPECT_EQ(r.dirs, 1u);
  EXPECT_FALSE(store_->blobs().Exists(stray));
  EXPECT_FALSE(store_->blobs().Exists(base_.id));
  EXPECT_FALSE(PathExists(drv + "/snapshots/999"));
  EXPECT_EQ(Count(root + "/ingest"), 0u);
  // The shared base layer stays: image two (and the pinned snapshot) use it.
  EXPECT_EQ(store_->layers().Stat(base_.top_chain().str()).kind, SnapshotKind::kCommitted);
  EXPECT_EQ(store_->Get("two:1").id, two.id);

  // rm refuses while a snapshot sits on the image; afterwards everything goes.
  EXPECT_THROW(store_->Remove("two:1"), Error);
  store_->layers().Remove("pinned");
  store_->Remove("two:1");
  store_->Gc();
  EXPECT_EQ(Count(root + "/images"), 0u);
  EXPECT_EQ(Count(root + "/layerdb"), 0u);
  EXPECT_EQ(Count(root + "/blobs/sha256"), 0u);
  EXPECT_EQ(Count(drv + "/snapshots"), 0u);
  if (GetParam() == "overlay") {
    EXPECT_EQ(Count(drv + "/l"), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Drivers, StoreStage2Test, ::testing::Values("overlay", "vfs", "btrfs"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace berth::store
