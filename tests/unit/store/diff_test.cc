// Tree diff (the vfs differ) and the layer tar writer, without root: the changes between
// two directories, the tar made from them (deterministic, whiteouts, hardlinks, xattr-free
// metadata), and that applying the tar to the old tree gives the new one.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "runtime/common/file_util.h"
#include "runtime/store/archive/apply.h"
#include "runtime/store/layer/diff.h"
#include "runtime/store/layer/fs_ops.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

std::map<std::string, char> Listing(const std::vector<DiffEntry>& entries) {
  std::map<std::string, char> out;
  for (const auto& e : entries) {
    if (e.change) out[e.changed_path] = ChangeLetter(*e.change);
  }
  return out;
}

void SetTime(const std::string& path, int64_t sec) {
  struct timespec ts[2] = {{sec, 0}, {sec, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

class TreeDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = tmp_.Sub("old");
    new_ = tmp_.Sub("new");
    MakeDirs(old_ + "/etc");
    MakeDirs(old_ + "/gone/deep");
    WriteFileAtomic(old_ + "/etc/keep", "k");
    WriteFileAtomic(old_ + "/etc/edit", "e");
    WriteFileAtomic(old_ + "/gone/deep/f", "f");
    WriteFileAtomic(old_ + "/same", "s");
    for (const char* p :
         {"/etc/keep", "/etc/edit", "/gone/deep/f", "/same", "/gone/deep", "/gone", "/etc"}) {
      SetTime(old_ + p, 1600000000);
    }
    MakeDirs(new_);
    CopyTree(old_, new_);
    WriteFileAtomic(new_ + "/etc/edit", "edited");
    WriteFileAtomic(new_ + "/etc/added", "a");
    ASSERT_EQ(::link((new_ + "/etc/added").c_str(), (new_ + "/etc/added2").c_str()), 0);
    RemoveTree(new_ + "/gone");
  }
  berth::testing::TempDir tmp_;
  std::string old_, new_;
};

TEST_F(TreeDiffTest, ListsChangesAndCarriesParentDirs) {
  auto entries = TreeDiff(new_, old_);
  auto got = Listing(entries);
  EXPECT_EQ(got, (std::map<std::string, char>{{"etc", 'C'},
                                              {"etc/added", 'A'},
                                              {"etc/added2", 'A'},
                                              {"etc/edit", 'C'},
                                              {"gone", 'D'}}));
  // Parents come before children; a deleted directory is one whiteout, not one per file.
  std::vector<std::string> paths;
  for (const auto& e : entries) paths.push_back(e.path);
  EXPECT_EQ(paths,
            (std::vector<std::string>{"etc", "etc/added", "etc/added2", "etc/edit", ".wh.gone"}));
  EXPECT_TRUE(Listing(TreeDiff(old_, old_)).empty());
}

TEST_F(TreeDiffTest, TarIsDeterministicAndAppliesToTheNewTree) {
  auto entries = TreeDiff(new_, old_);
  std::string first, second;
  TarWriter w1([&](const void* d, size_t n) { first.append(static_cast<const char*>(d), n); });
  LayerTar t1 = WriteLayerTar(entries, w1);
  TarWriter w2([&](const void* d, size_t n) { second.append(static_cast<const char*>(d), n); });
  LayerTar t2 = WriteLayerTar(TreeDiff(new_, old_), w2);
  EXPECT_EQ(first, second);
  EXPECT_EQ(t1.diff_id, t2.diff_id);
  EXPECT_EQ(t1.diff_id, Digest::Of(first));
  EXPECT_EQ(t1.size, first.size());
  EXPECT_EQ(first.size() % 512, 0u);

  // Applying the layer to a copy of the old tree gives the new tree.
  std::string applied = tmp_.Sub("applied");
  MakeDirs(applied);
  CopyTree(old_, applied);
  MemorySource src(first);
  LayerStream stream(src, {}, "diff");
  ApplyOptions opts;
  opts.style = WhiteoutStyle::kDelete;
  opts.preserve_owners = false;
  ApplyStats stats = ApplyLayer(stream, applied, opts);
  EXPECT_EQ(stream.Finish().diff_id, t1.diff_id);
  EXPECT_EQ(stats.whiteouts, 1u);
  EXPECT_FALSE(PathExists(applied + "/gone"));
  EXPECT_EQ(ReadFile(applied + "/etc/edit"), "edited");
  struct stat a, b;
  ASSERT_EQ(::stat((applied + "/etc/added").c_str(), &a), 0);
  ASSERT_EQ(::stat((applied + "/etc/added2").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);  // the hardlink survived as a hardlink
  EXPECT_TRUE(Listing(TreeDiff(applied, new_)).empty());
}

TEST(TarWriterTest, LongNamesAndSinkErrors) {
  std::string out;
  TarWriter w([&](const void* d, size_t n) { out.append(static_cast<const char*>(d), n); });
  TarEntry e;
  e.path = std::string(150, 'a') + "/" + std::string(200, 'b');
  w.AddBytes(e, "data");
  w.Finish();
  berth::testing::TempDir tmp;
  MemorySource src(out);
  LayerStream stream(src, {}, "long");
  ApplyOptions opts;
  opts.preserve_owners = false;
  ApplyLayer(stream, tmp.path(), opts);
  EXPECT_EQ(ReadFile(tmp.Sub(e.path)), "data");

  TarWriter failing(
      [](const void*, size_t) { throw Error(ErrorKind::kSystem, "write sock: EPIPE", EPIPE); });
  try {
    failing.AddBytes(e, std::string(100000, 'x'));
    failing.Finish();
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(err.message().find("EPIPE"), std::string::npos) << err.message();
  }
}

}  // namespace
}  // namespace berth::store
