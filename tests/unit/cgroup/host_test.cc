#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "tests/support/test_env.h"
#include "tests/unit/cgroup/seed.h"

namespace berth::cgroup {
namespace {

using berth::testing::TempDir;
using testing::Seed;

// This host's layout, with the root moved to `root`.
std::string HybridMountinfo(const std::string& root) {
  std::string r = root;
  return "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n"
         "30 22 0:27 / " +
         r +
         " rw,relatime - tmpfs tmpfs rw,mode=755\n"
         "31 30 0:28 / " +
         r +
         "/cpu rw,relatime - cgroup cgroup rw,cpu\n"
         "32 30 0:29 / " +
         r +
         "/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
         "33 30 0:30 / " +
         r +
         "/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
         "34 30 0:31 / " +
         r +
         "/memory rw,relatime - cgroup cgroup rw,memory\n"
         "35 30 0:32 / " +
         r +
         "/devices rw,relatime - cgroup cgroup rw,devices\n"
         "36 30 0:33 / " +
         r +
         "/freezer rw,relatime - cgroup cgroup rw,freezer\n"
         "37 30 0:34 / " +
         r +
         "/blkio rw,relatime - cgroup cgroup rw,blkio\n"
         "38 30 0:35 / " +
         r +
         "/pids rw,relatime - cgroup cgroup rw,pids\n"
         "39 30 0:36 / " +
         r +
         "/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
         "40 30 0:37 / " +
         r + "/unified rw,relatime - cgroup2 cgroup2 rw\n";
}

TEST(CgroupHostTest, HybridHostIsV1WithUnifiedMountAndItsControllers) {
  TempDir tmp;
  std::string root = tmp.Sub("sys fs cgroup");  // a space: mountinfo escapes it
  Seed(root + "/unified", {{"cgroup.controllers", "hugetlb\n"}});
  std::string escaped = tmp.path() + "/sys\\040fs\\040cgroup";
  CgroupHost host = ParseCgroupHost(HybridMountinfo(escaped), root);

  EXPECT_EQ(host.version, CgroupVersion::kV1);
  EXPECT_EQ(host.root, root);
  std::map<std::string, std::string> expected;
  for (const char* c :
       {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
    expected[c] = root + "/" + c;
  }
  EXPECT_EQ(host.v1_mounts, expected);  // no "name=systemd"
  EXPECT_EQ(host.unified_mount, root + "/unified");
  EXPECT_EQ(host.unified_controllers, std::vector<std::string>{"hugetlb"});
}

TEST(CgroupHostTest, EmptyUnifiedHasNoControllers) {
  TempDir tmp;
  Seed(tmp.Sub("unified"), {{"cgroup.controllers", "\n"}});
  CgroupHost host = ParseCgroupHost(HybridMountinfo(tmp.path()), tmp.path());
  EXPECT_TRUE(host.unified_controllers.empty());
}

TEST(CgroupHostTest, CoMountedControllersShareOneMountPoint) {
  std::string info =
      "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
      "32 30 0:29 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
      "33 30 0:30 / /sys/fs/cgroup/memory rw shared:12 - cgroup cgroup rw,memory,clone_children\n";
  CgroupHost host = ParseCgroupHost(info, "/sys/fs/cgroup");
  EXPECT_EQ(host.version, CgroupVersion::kV1);
  EXPECT_EQ(host.v1_mounts.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(host.v1_mounts.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(host.v1_mounts.at("net_prio"), "/sys/fs/cgroup/net_cls,net_prio");
  EXPECT_EQ(host.v1_mounts.at("memory"), "/sys/fs/cgroup/memory");  // optional field skipped
  EXPECT_EQ(host.v1_mounts.count("clone_children"), 0u);
  EXPECT_TRUE(host.unified_mount.empty());
}

TEST(CgroupHostTest, Cgroup2AtRootIsV2) {
  TempDir tmp;
  Seed(tmp.path(), {{"cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n"}});
  std::string info = "30 22 0:26 / " + tmp.path() +
                     " rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
                     "rw,nsdelegate,memory_recursiveprot\n";
  CgroupHost host = ParseCgroupHost(info, tmp.path());
  EXPECT_EQ(host.version, CgroupVersion::kV2);
  EXPECT_EQ(host.unified_mount, tmp.path());
  EXPECT_TRUE(host.v1_mounts.empty());
  EXPECT_EQ(host.unified_controllers,
            (std::vector<std::string>{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma",
                                      "misc"}));
}

TEST(CgroupHostTest, MountsOutsideTheRootAreIgnored) {
  std::string info =
      "31 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "90 80 0:28 / /var/lib/other/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "91 80 0:40 / /var/lib/other/cg2 rw - cgroup2 cgroup2 rw\n"
      "garbage line\n";
  CgroupHost host = ParseCgroupHost(info, "/sys/fs/cgroup");
  EXPECT_EQ(host.v1_mounts.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_TRUE(host.unified_mount.empty());
  EXPECT_EQ(host.version, CgroupVersion::kV1);
}

TEST(CgroupHostTest, DetectOnThisMachineFindsSomething) {
  CgroupHost host = DetectCgroupHost();
  EXPECT_TRUE(!host.v1_mounts.empty() || !host.unified_mount.empty());
}

}  // namespace
}  // namespace berth::cgroup
