#include "runtime/common/error.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth {
namespace {

TEST(ErrorTest, FromErrnoNamesSyscallPathAndErrno) {
  Error e = Error::FromErrno("open", "/x/etc/passwd", ELOOP);
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(e.sys_errno(), ELOOP);
  EXPECT_EQ(std::string(e.what()).rfind("open /x/etc/passwd: ELOOP (", 0), 0u) << e.what();
}

TEST(ErrorTest, ContextIsPrependedOutermostFirst) {
  try {
    WithContext("create container c1", [] {
      WithContext("mount /proc", [] { ThrowErrnoValue(EPERM, "mount", "proc"); });
    });
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("create container c1: mount /proc: mount proc: EPERM", 0),
              0u)
        << e.what();
  }
}

TEST(ErrorTest, KindFollowsErrno) {
  EXPECT_EQ(Error::FromErrno("x", "", ENOENT).kind(), ErrorKind::kNotFound);
  EXPECT_EQ(Error::FromErrno("x", "", EEXIST).kind(), ErrorKind::kAlreadyExists);
  EXPECT_EQ(Error::FromErrno("x", "", ENOSPC).kind(), ErrorKind::kResourceExhausted);
  EXPECT_EQ(Error::FromErrno("x", "", EIO).kind(), ErrorKind::kSystem);
}

TEST(FileUtilTest, AtomicWriteReplacesAndLeavesNoTemp) {
  testing::TempDir dir;
  std::string f = dir.Sub("state.json");
  WriteFileAtomic(f, "old");
  WriteFileAtomic(f, "new");
  EXPECT_EQ(ReadFile(f), "new");
  EXPECT_FALSE(PathExists(f + ".tmp." + std::to_string(getpid())));
}

TEST(FileUtilTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  EXPECT_FALSE(ReadFileIfExists(dir.Sub("nope")).has_value());
  try {
    ReadFile(dir.Sub("nope"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

TEST(FileUtilTest, MakeDirsAndRemoveTree) {
  testing::TempDir dir;
  MakeDirs(dir.Sub("a/b/c"));
  WriteFileAtomic(dir.Sub("a/b/c/f"), "x");
  ASSERT_EQ(::symlink("/etc", dir.Sub("a/link").c_str()), 0);
  RemoveTree(dir.Sub("a"));
  EXPECT_FALSE(PathExists(dir.Sub("a")));
  EXPECT_TRUE(PathExists("/etc/passwd"));  // the symlink's target was not followed
}

TEST(FileUtilTest, JoinPathNormalisesSlashes) {
  EXPECT_EQ(JoinPath("/a/", "/b"), "/a/b");
  EXPECT_EQ(JoinPath("/a", "b"), "/a/b");
}

}  // namespace
}  // namespace berth
