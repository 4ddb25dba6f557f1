// SecureJoin: resolving a path inside a root filesystem as if it were "/", with symlinks that
// try to leave it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/linux/rootfs.h"
#include "tests/support/test_env.h"

namespace berth::container {
namespace {

class SecureJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.Sub("rootfs");
    MakeDirs(root_ + "/etc");
    MakeDirs(root_ + "/usr/lib");
    MakeDirs(root_ + "/deep/er");
  }
  void Link(const std::string& target, const std::string& at) {
    ASSERT_EQ(::symlink(target.c_str(), (root_ + at).c_str()), 0) << at << ": " << errno;
  }

  testing::TempDir dir_;
  std::string root_;
};

TEST_F(SecureJoinTest, PlainPathsAndMissingComponentsAreAppended) {
  EXPECT_EQ(SecureJoin(root_, "/etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(SecureJoin(root_, "/not/there/yet"), root_ + "/not/there/yet");
  EXPECT_EQ(SecureJoin(root_, "//etc/./hosts//"), root_ + "/etc/hosts");
  EXPECT_EQ(SecureJoin(root_, "etc"), root_ + "/etc");
  EXPECT_EQ(SecureJoin(root_, "/"), root_);
  EXPECT_EQ(SecureJoin(root_, ""), root_);
}

TEST_F(SecureJoinTest, DotDotIsClampedAtTheRoot) {
  EXPECT_EQ(SecureJoin(root_, "/../../etc/passwd"), root_ + "/etc/passwd");
  EXPECT_EQ(SecureJoin(root_, "/usr/../../../x"), root_ + "/x");
  EXPECT_EQ(SecureJoin(root_, "/deep/er/../../etc"), root_ + "/etc");
}

TEST_F(SecureJoinTest, AbsoluteLinkTargetsAreResolvedInsideTheRoot) {
  Link("/etc", "/link");
  EXPECT_EQ(SecureJoin(root_, "/link/passwd"), root_ + "/etc/passwd");
  // The host's /etc is never reached, even through a target naming the root's own path.
  Link(root_ + "/etc", "/hostpath");
  EXPECT_EQ(SecureJoin(root_, "/hostpath"), root_ + root_ + "/etc");
}

TEST_F(SecureJoinTest, RelativeLinksThatClimbOutAreClamped) {
  Link("../../../../../../outside", "/deep/er/escape");
  EXPECT_EQ(SecureJoin(root_, "/deep/er/escape/file"), root_ + "/outside/file");
  Link("..", "/parent");
  EXPECT_EQ(SecureJoin(root_, "/parent/parent/etc"), root_ + "/etc");
}

TEST_F(SecureJoinTest, RelativeLinksResolveFromTheirOwnDirectory) {
  Link("lib", "/usr/lib64");
  EXPECT_EQ(SecureJoin(root_, "/usr/lib64/libc.so"), root_ + "/usr/lib/libc.so");
  Link("../etc", "/deep/etc-link");
  EXPECT_EQ(SecureJoin(root_, "/deep/etc-link/hosts"), root_ + "/etc/hosts");
}

TEST_F(SecureJoinTest, ChainsAndDanglingLinksAreFollowed) {
  Link("b", "/a");
  Link("/c/d", "/b");
  EXPECT_EQ(SecureJoin(root_, "/a"), root_ + "/c/d");
  Link("/nowhere/deep", "/dangling");
  EXPECT_EQ(SecureJoin(root_, "/dangling/x"), root_ + "/nowhere/deep/x");
}

TEST_F(SecureJoinTest, LoopsGiveELOOP) {
  Link("y", "/x");
  Link("/x", "/y");
  Link("self", "/self");
  for (const char* path : {"/x", "/y/z", "/self", "/etc/../self/more"}) {
    SCOPED_TRACE(path);
    try {
      SecureJoin(root_, path);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.sys_errno(), ELOOP) << e.what();
      EXPECT_NE(std::string(e.what()).find(root_), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace berth::container
