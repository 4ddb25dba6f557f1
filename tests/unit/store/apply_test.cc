// Layer extraction without privileges (vfs-style whiteouts, owners not changed): content,
// metadata, whiteouts, and every hostile member we can think of.
#include "runtime/store/archive/apply.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/tar_builder.h"

namespace berth::store {
namespace {

using testing::Compression;
using testing::TarBuilder;
using testing::TarMember;

ApplyStats Apply(const std::string& tar, const std::string& dir, LayerDigests* digests = nullptr,
                 StreamLimits limits = {}) {
  MemorySource src(tar);
  LayerStream stream(src, limits, "test layer");
  ApplyOptions opts;
  opts.style = WhiteoutStyle::kDelete;
  opts.preserve_owners = false;
  ApplyStats stats = ApplyLayer(stream, dir, opts);
  LayerDigests d = stream.Finish();
  if (digests) *digests = d;
  return stats;
}

Error ApplyError(const std::string& tar, const std::string& dir, StreamLimits limits = {}) {
  try {
    Apply(tar, dir, nullptr, limits);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "archive accepted";
  return Error(ErrorKind::kInternal, "accepted");
}

struct stat Lstat(const std::string& path) {
  struct stat st = {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.Sub("layer");
    outside_ = tmp_.Sub("outside");
    MakeDirs(root_);
    MakeDirs(outside_);
  }
  // Nothing may ever appear next to the layer dir.
  void ExpectOutsideUntouched() {
    EXPECT_EQ(ListDirectory(outside_, IfMissing::kThrow), std::vector<std::string>{})
        << "something was written outside the layer";
    EXPECT_FALSE(PathExists(tmp_.Sub("x")));
  }
  berth::testing::TempDir tmp_;
  std::string root_, outside_;
};

TEST_F(ApplyTest, ContentAndMetadata) {
  TarBuilder t;
  t.Dir("etc", 0750).File("etc/passwd", "root:x:0:0\n", 0640).Symlink("etc/abs", "/etc/passwd");
  t.File("bin/su", "suid", 04755).File("bin/sg", "sgid", 02755);
  t.Hardlink("bin/su2", "bin/su");
  TarMember fifo;
  fifo.path = "fifo";
  fifo.type = S_IFIFO;
  fifo.perm = 0600;
  t.Add(fifo);
  std::string long_dir(120, 'd'), long_name(200, 'n');
  t.File(long_dir + "/" + long_name, "long");
  t.File("ünïcode", "utf8");
  t.File("x.txt", "xattr");
  t.last().xattrs = {{"user.berth", "v"}, {"trusted.overlay.opaque", "y"}};
  t.File("old", "mtime");
  t.last().mtime = 1000000000;
  LayerDigests d;
  std::string tar = t.Build();
  ApplyStats stats = Apply(tar, root_, &d);
  EXPECT_EQ(d.diff_id, Digest::Of(tar));
  EXPECT_EQ(d.blob, Digest::Of(tar));
  EXPECT_EQ(d.diff_size, tar.size());

  EXPECT_EQ(ReadFile(root_ + "/etc/passwd"), "root:x:0:0\n");
  EXPECT_EQ(Lstat(root_ + "/etc").st_mode & 07777, 0750u);
  EXPECT_EQ(Lstat(root_ + "/etc/passwd").st_mode & 07777, 0640u);
  EXPECT_EQ(Lstat(root_ + "/bin/su").st_mode & 07777, 04755u);
  EXPECT_EQ(Lstat(root_ + "/bin/sg").st_mode & 07777, 02755u);
  EXPECT_EQ(Lstat(root_ + "/bin/su").st_ino, Lstat(root_ + "/bin/su2").st_ino);
  EXPECT_EQ(Lstat(root_ + "/bin/su").st_nlink, 2u);
  char target[64] = {};
  ASSERT_GT(::readlink((root_ + "/etc/abs").c_str(), target, sizeof target), 0);
  EXPECT_STREQ(target, "/etc/passwd");
  EXPECT_TRUE(S_ISFIFO(Lstat(root_ + "/fifo").st_mode));
  EXPECT_EQ(ReadFile(root_ + "/" + long_dir + "/" + long_name), "long");
  EXPECT_EQ(ReadFile(root_ + "/ünïcode"), "utf8");
  EXPECT_EQ(Lstat(root_ + "/old").st_mtime, 1000000000);
  EXPECT_EQ(Lstat(root_ + "/etc").st_mtime, 1700000000);
  char value[8] = {};
  EXPECT_EQ(::getxattr((root_ + "/x.txt").c_str(), "user.berth", value, sizeof value), 1);
  EXPECT_EQ(::getxattr((root_ + "/x.txt").c_str(), "trusted.overlay.opaque", value, sizeof value),
            -1);
  EXPECT_GE(stats.skipped_xattrs, 1u);
}

TEST_F(ApplyTest, CompressedLayersHashBothStreams) {
  std::string tar = TarBuilder().File("a", std::string(100000, 'a')).Build();
  for (auto c : {Compression::kGzip, Compression::kZstd}) {
    std::string blob = testing::Compress(tar, c);
    ASSERT_NE(blob, tar);
    berth::testing::TempDir dir;
    LayerDigests d;
    Apply(blob, dir.path(), &d);
    EXPECT_EQ(d.blob, Digest::Of(blob));
    EXPECT_EQ(d.diff_id, Digest::Of(tar));
    EXPECT_EQ(d.blob_size, blob.size());
    EXPECT_EQ(ReadFile(dir.path() + "/a"), std::string(100000, 'a'));
  }
}

TEST_F(ApplyTest, WhiteoutsDeleteInACopy) {
  Apply(TarBuilder()
            .File("keep", "1")
            .File("gone", "1")
            .Dir("d")
            .File("d/lower", "1")
            .Dir("d/sub")
            .File("d/sub/lower", "1")
            .Build(),
        root_);
  Apply(TarBuilder()
            .File(".wh.gone", "")
            .Dir("d")
            .File("d/new", "2")
            .File("d/.wh..wh..opq", "")
            .Dir("d/sub")
            .File("d/sub/new", "2")
            .File(".wh..wh.plnk", "")
            .Build(),
        root_);
  EXPECT_TRUE(PathExists(root_ + "/keep"));
  EXPECT_FALSE(PathExists(root_ + "/gone"));
  EXPECT_FALSE(PathExists(root_ + "/.wh.gone"));
  EXPECT_TRUE(PathExists(root_ + "/d/new"));
  EXPECT_FALSE(PathExists(root_ + "/d/lower"));
  EXPECT_TRUE(PathExists(root_ + "/d/sub/new"));
  EXPECT_FALSE(PathExists(root_ + "/d/sub/lower"));  // opaque came after d/sub was merged
  EXPECT_FALSE(PathExists(root_ + "/d/.wh..wh..opq"));
  EXPECT_FALSE(PathExists(root_ + "/.wh..wh.plnk"));
}

TEST_F(ApplyTest, BadWhiteoutNames) {
  for (const char* name : {".wh..", ".wh...", "d/.wh."}) {
    Error e = ApplyError(TarBuilder().File(name, "").Build(), root_);
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << name;
    EXPECT_NE(e.message().find("whiteout"), std::string::npos) << e.message();
  }
}

TEST_F(ApplyTest, TraversalIsRefused) {
  for (const char* name :
       {"../outside/x", "../../etc/x", "a/../../outside/x", "/etc/x", "/outside/x"}) {
    Error e = ApplyError(TarBuilder().File(name, "evil").Build(), root_);
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << name;
    EXPECT_NE(e.message().find("member path"), std::string::npos) << e.message();
  }
  ExpectOutsideUntouched();
}

TEST_F(ApplyTest, WriteThroughSymlinkIsRefused) {
  // A symlink to the outside dir, then a file "through" it.
  Error e =
      ApplyError(TarBuilder().Symlink("link", outside_).File("link/x", "evil").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("symlink"), std::string::npos) << e.message();
  // Relative, and through a chain of links.
  e = ApplyError(
      TarBuilder().Symlink("a", "b").Symlink("b", "../outside").File("a/x", "evil").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  ExpectOutsideUntouched();
}

TEST_F(ApplyTest, SymlinkAtTheLeafIsReplacedNotFollowed) {
  // "file" is a symlink to outside/x; a later member named "file" replaces the link.
  Apply(TarBuilder().Symlink("file", outside_ + "/x").File("file", "data").Build(), root_);
  EXPECT_TRUE(S_ISREG(Lstat(root_ + "/file").st_mode));
  ExpectOutsideUntouched();
  // Across two layers: the link is there from a lower layer (a copy, as vfs has it).
  Apply(TarBuilder().Symlink("f2", outside_ + "/x").Build(), root_);
  Apply(TarBuilder().File("f2", "data").Build(), root_);
  EXPECT_TRUE(S_ISREG(Lstat(root_ + "/f2").st_mode));
  Apply(TarBuilder().Symlink("d2", outside_).Build(), root_);
  Error e = ApplyError(TarBuilder().File("d2/x", "data").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  ExpectOutsideUntouched();
}

TEST_F(ApplyTest, HardlinksStayInside) {
  std::string secret = outside_ + "/secret";
  Error e = ApplyError(TarBuilder().Hardlink("h", "../outside/secret").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  e = ApplyError(TarBuilder().Hardlink("h", "/etc/passwd").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  e = ApplyError(TarBuilder().Hardlink("h", "missing").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("not in this layer"), std::string::npos) << e.message();
  // Through a symlinked directory.
  e = ApplyError(TarBuilder().Symlink("l", "/etc").Hardlink("h", "l/passwd").Build(), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  // A hardlink to a symlink links the symlink, never its target.
  Apply(TarBuilder().Symlink("s", "/etc/passwd").Hardlink("h2", "s").Build(), root_);
  EXPECT_TRUE(S_ISLNK(Lstat(root_ + "/h2").st_mode));
  ExpectOutsideUntouched();
}

TEST_F(ApplyTest, DeviceNodesAreSkipped) {
  ApplyStats s = Apply(TarBuilder()
                           .Device("dev/sda", S_IFBLK, makedev(8, 0))
                           .Device("dev/mem", S_IFCHR, makedev(1, 1))
                           .File("ok", "1")
                           .Build(),
                       root_);
  EXPECT_EQ(s.skipped_devices, 2u);
  EXPECT_FALSE(PathExists(root_ + "/dev/sda"));
  EXPECT_FALSE(PathExists(root_ + "/dev/mem"));
  EXPECT_TRUE(PathExists(root_ + "/ok"));
}

TEST_F(ApplyTest, TruncatedAndCorruptArchives) {
  std::string tar = TarBuilder().File("a", std::string(5000, 'a')).File("b", "b").Build();
  Error e = ApplyError(tar.substr(0, 2000), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("test layer"), std::string::npos) << e.message();
  std::string bad = tar;
  bad[148] ^= 0x11;  // header checksum field of the first member... (pax header)
  bad[0] ^= 0x55;
  e = ApplyError(bad, root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.message();
  std::string gz = testing::Compress(tar, Compression::kGzip);
  e = ApplyError(gz.substr(0, gz.size() / 2), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.message();
  e = ApplyError(std::string(3000, '\x42'), root_);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.message();
}

TEST_F(ApplyTest, DecompressionBombsHitTheCap) {
  std::string tar = TarBuilder().File("zeros", std::string(4 << 20, '\0')).Build();
  StreamLimits limits;
  limits.max_uncompressed = 1 << 20;
  for (auto c : {Compression::kGzip, Compression::kZstd}) {
    std::string blob = testing::Compress(tar, c);
    EXPECT_LT(blob.size(), 64u << 10);
    Error e = ApplyError(blob, root_, limits);
    EXPECT_EQ(e.kind(), ErrorKind::kResourceExhausted) << e.message();
  }
  // A header that declares a huge size (the sparse-file trick) is refused up front.
  std::string huge =
      testing::PatchSize(TarBuilder().File("huge", "x").Build(), 0, uint64_t{1} << 40);
  Error e = ApplyError(huge, root_, limits);
  EXPECT_TRUE(e.kind() == ErrorKind::kResourceExhausted || e.kind() == ErrorKind::kInvalidArgument)
      << e.message();
}

TEST_F(ApplyTest, ReplacingADirectoryWithAFile) {
  Apply(TarBuilder().Dir("d").File("d/x", "1").Build(), root_);
  Apply(TarBuilder().File("d", "now a file").Build(), root_);
  EXPECT_EQ(ReadFile(root_ + "/d"), "now a file");
}

}  // namespace
}  // namespace berth::store
