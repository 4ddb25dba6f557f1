// Idmapped mounts and the ownership shift, on the real kernel and filesystem.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <future>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/linux/idmap_mount.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

std::vector<spec::IdMapping> Map(uint32_t host) { return {{0, host, 65536}}; }

TEST(IdmapMount, ThisKernelPutsAnOverlayOverIdmappedLayers) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  auto support = container::ProbeIdmapSupport(dir.path());
  EXPECT_TRUE(support.idmapped_mount) << support.detail;
  EXPECT_TRUE(support.overlay_over_idmapped) << support.detail;
  // The probe leaves nothing behind.
  std::string left = ReadFile("/proc/self/mountinfo");
  EXPECT_EQ(left.find(dir.path()), std::string::npos);
  EXPECT_FALSE(PathExists(dir.Sub(".idmap-probe-" + std::to_string(::getpid()))));
}

TEST(IdmapMount, ShowsOwnersShiftedWithoutChangingTheFiles) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::string src = dir.Sub("src"), dst = dir.Sub("dst");
  MakeDirs(src);
  MakeDirs(dst);
  WriteFileAtomic(src + "/f", "x");
  ASSERT_EQ(::chown((src + "/f").c_str(), 7, 8), 0);
  UniqueFd ns = container::MakeMappingUserns(Map(2000000000), Map(2100000000));
  container::IdmappedBind(src, dst, ns.get(), true);
  struct stat st;
  ASSERT_EQ(::stat((dst + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 2000000007u);
  EXPECT_EQ(st.st_gid, 2100000008u);
  int fd = ::open((dst + "/new").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  EXPECT_LT(fd, 0) << "the idmapped view is read-only";
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);
  ASSERT_EQ(::umount2(dst.c_str(), MNT_DETACH), 0);
  ASSERT_EQ(::stat((src + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 7u) << "the files themselves are untouched";
}

TEST(IdmapMount, ConcurrentMappingNamespacesAllComplete) {
  // berthd spawns in parallel: each holder child gets a copy of the fd table, so a holder
  // that waited for a pipe's EOF kept the other holders' pipes open and they all hung.
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  std::vector<std::future<int>> workers;
  for (int t = 0; t < 6; ++t) {
    workers.push_back(std::async(std::launch::async, [t] {
      int made = 0;
      for (int i = 0; i < 15; ++i) {
        UniqueFd ns =
            container::MakeMappingUserns(Map(2000000000 + t * 65536), Map(2000000000 + t * 65536));
        if (ns) ++made;
      }
      return made;
    }));
  }
  for (auto& w : workers) {
    if (w.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "MakeMappingUserns hung under concurrency";
      std::abort();  // the hung threads cannot be joined
    }
    EXPECT_EQ(w.get(), 15);
  }
}

TEST(IdmapMount, EmptyMappingIsRefused) {
  EXPECT_THROW(container::MakeMappingUserns({}, Map(1)), Error);
}

TEST(ShiftOwnership, ShiftsEveryEntryAndKeepsSetuidBits) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  std::string root = dir.Sub("tree");
  MakeDirs(root + "/a/b");
  WriteFileAtomic(root + "/a/b/suid", "x", 04755);
  ASSERT_EQ(::chmod((root + "/a/b/suid").c_str(), 04755), 0);
  ASSERT_EQ(::symlink("a/b/suid", (root + "/link").c_str()), 0);
  ASSERT_EQ(::lchown((root + "/link").c_str(), 3, 3), 0);
  EXPECT_EQ(container::ShiftOwnership(root, 1000000000, 1000000000), 5u);
  struct stat st;
  ASSERT_EQ(::lstat((root + "/a/b/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000000000u);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((root + "/link").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000000003u);
  ASSERT_EQ(::lstat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 1000000000u);
}

}  // namespace
}  // namespace berth::testing
