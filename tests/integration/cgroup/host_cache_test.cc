// CachedCgroupHost: the layout a process remembers follows the mounts of the cgroup root
// (as root, in a child with a mount namespace of its own, so the host is not touched).
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "tests/support/test_env.h"

namespace berth::cgroup {
namespace {

bool Same(const CgroupHost& a, const CgroupHost& b) {
  return a.version == b.version && a.root == b.root && a.v1_mounts == b.v1_mounts &&
         a.unified_mount == b.unified_mount && a.unified_controllers == b.unified_controllers;
}

// Runs `body` in a forked child; its exit code is the step that failed (0: none).
int InChild(int (*body)()) {
  pid_t child = ::fork();
  if (child == 0) ::_exit(body());
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(CachedCgroupHost, IsTheDetectedLayoutAndFollowsMountsOverTheRoot) {
  if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
  const CgroupHost detected = DetectCgroupHost();
  if (detected.v1_mounts.empty() && detected.unified_mount.empty()) {
    GTEST_SKIP() << "no cgroup hierarchy under /sys/fs/cgroup";
  }
  if (detected.version != CgroupVersion::kV1) GTEST_SKIP() << "the change shown needs a v1 host";
  EXPECT_TRUE(Same(CachedCgroupHost(), detected));
  EXPECT_TRUE(Same(CachedCgroupHost(), detected));  // from the cache
  EXPECT_EQ(InChild([]() -> int {
              const CgroupHost before = CachedCgroupHost();  // the parent's, remembered
              // Another mount namespace is another fingerprint: detected again, the same.
              if (::unshare(CLONE_NEWNS) != 0) return 1;
              if (::mount("", "/", "", MS_PRIVATE | MS_REC, nullptr) != 0) return 2;
              if (!Same(CachedCgroupHost(), before)) return 3;
              // cgroup2 over a v1 root: a v2 host from now on.
              if (::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, nullptr) != 0) return 4;
              const CgroupHost v2 = CachedCgroupHost();
              if (v2.version != CgroupVersion::kV2 || v2.unified_mount != "/sys/fs/cgroup") {
                return 5;
              }
              if (::umount2("/sys/fs/cgroup", 0) != 0) return 6;
              if (!Same(CachedCgroupHost(), before)) return 7;
              // Forgotten: detected again, the same.
              ForgetCachedCgroupHost();
              if (!Same(CachedCgroupHost(), before)) return 8;
              return 0;
            }),
            0);
}

}  // namespace
}  // namespace berth::cgroup
