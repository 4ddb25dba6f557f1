// Which premade trees a claim uses: exactly those whose part of the plan is the one they
// were made from, and how the plan is rewritten to move them in. Without root: the trees
// here are stand-in descriptors (tests/integration/linux/shell_test.cc makes real ones).
#include "runtime/linux/premade_mounts.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/spec/parser.h"

namespace berth::container {
namespace {

RootfsPlan PlanOf(const spec::Spec& spec) {
  RootfsHostInfo host;
  host.new_user_namespace = true;
  host.new_network_namespace = true;
  host.cgroup_host.v1_mounts = {{"memory", "/sys/fs/cgroup/memory"}};
  host.cgroup_dirs = {{"memory", "/sys/fs/cgroup/memory/berth/x"}};
  return BuildRootfsPlan(spec, host);
}

// Trees "made" from the default spec's plan, as a shell's init makes them.
PremadeMounts Premade() {
  const RootfsPlan plan = PlanOf(spec::DefaultSpec());
  PremadeMounts p;
  p.root_propagation = plan.root_propagation;
  for (const auto& m : plan.mounts) {
    if (m.destination == "/dev" || m.destination.rfind("/dev/", 0) == 0) p.dev.mounts.push_back(m);
    if (m.destination == "/sys") p.sys.mounts.push_back(m);
    if (m.destination == "/proc") p.proc.mounts.push_back(m);
  }
  for (const auto& path : plan.masked_paths) {
    if (path.rfind("/proc/", 0) == 0) p.proc.masked_paths.push_back(path);
  }
  p.proc.readonly_paths = plan.readonly_paths;  // all below /proc
  p.proc.binds_dev_null = true;                 // /proc/kcore, /proc/keys, ...
  p.dev.devices = plan.devices;
  p.dev.dev_symlinks = plan.dev_symlinks;
  p.sys.masked_paths = {"/sys/firmware"};
  p.dev.fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  p.sys.fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  p.proc.fd.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  p.proc.plain.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return p;
}

std::vector<std::string> Destinations(const RootfsPlan& plan) {
  std::vector<std::string> out;
  for (const auto& m : plan.mounts) out.push_back(m.destination + (m.tree_fd >= 0 ? "*" : ""));
  return out;
}

TEST(UsePremadeMounts, TheDefaultSpecUsesBothTreesInPlaceOfWhatTheyStandFor) {
  RootfsPlan plan = PlanOf(spec::DefaultSpec());
  PremadeMounts premade = Premade();
  const int dev_fd = premade.dev.fd.get(), sys_fd = premade.sys.fd.get();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys", "/proc"}));
  // /dev's submounts go with it; the cgroup mounts below /sys stay, after it.
  EXPECT_EQ(Destinations(plan),
            (std::vector<std::string>{"/proc*", "/dev*", "/sys*", "/sys/fs/cgroup",
                                      "/sys/fs/cgroup/memory", "/sys/fs/cgroup"}));
  EXPECT_EQ(plan.mounts[1].tree_fd, dev_fd);
  EXPECT_EQ(plan.mounts[2].tree_fd, sys_fd);
  EXPECT_FALSE(plan.populate_dev);
  EXPECT_TRUE(plan.devices.empty());
  EXPECT_TRUE(plan.dev_symlinks.empty());
  // Every mask and read-only path was premade.
  EXPECT_TRUE(plan.masked_paths.empty());
  EXPECT_TRUE(plan.readonly_paths.empty());
}

TEST(UsePremadeMounts, ProcGoesColdForAnotherDevOrATouchingMask) {
  // Sysctls are written through the tree's plain proc: its /proc/sys is read-only already.
  spec::Spec sysctl = spec::DefaultSpec();
  sysctl.linux.sysctl["net.ipv4.ping_group_range"] = "0 65535";  // as berthd's instances
  RootfsPlan plan = PlanOf(sysctl);
  PremadeMounts premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys", "/proc"}));
  EXPECT_EQ(plan.sysctl_proc_fd, premade.proc.plain.get());
  premade = Premade();
  premade.proc.plain.reset();
  plan = PlanOf(sysctl);
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys"}));
  EXPECT_EQ(plan.sysctl_proc_fd, -1);
  EXPECT_EQ(plan.readonly_paths.size(), 5u);

  // Its masked files are the host's /dev/null: the container's only when /dev is premade.
  spec::Spec other_dev = spec::DefaultSpec();
  other_dev.mounts[1].options.push_back("noexec");
  plan = PlanOf(other_dev);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), std::vector<std::string>{"/sys"});

  spec::Spec touching = spec::DefaultSpec();
  touching.linux.masked_paths.push_back("/proc/sys/kernel");
  plan = PlanOf(touching);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys"}));

  spec::Spec below = spec::DefaultSpec();
  below.mounts.push_back({"/proc/driver", "tmpfs", "tmpfs", {}});
  plan = PlanOf(below);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys"}));

  // A mask of its own, apart from the premade ones: applied by the claim, over the tree.
  spec::Spec apart = spec::DefaultSpec();
  apart.linux.masked_paths.push_back("/proc/driver");
  plan = PlanOf(apart);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/sys", "/proc"}));
  EXPECT_EQ(plan.masked_paths, std::vector<std::string>{"/proc/driver"});
}

TEST(UsePremadeMounts, AnotherDevMountOrDeviceLeavesDevCold) {
  spec::Spec s = spec::DefaultSpec();
  s.mounts[1].options.push_back("noexec");  // /dev
  RootfsPlan plan = PlanOf(s);
  PremadeMounts premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), std::vector<std::string>{"/sys"});
  EXPECT_TRUE(plan.populate_dev);
  EXPECT_EQ(Destinations(plan)[1], "/dev");
  EXPECT_EQ(Destinations(plan)[0], "/proc");  // its masked files would bind another /dev/null

  spec::Spec with_device = spec::DefaultSpec();
  with_device.linux.devices.push_back({"/dev/fuse", "c", 10, 229, 0666, 0, 0});
  plan = PlanOf(with_device);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), std::vector<std::string>{"/sys"});

  spec::Spec extra = spec::DefaultSpec();
  extra.mounts.push_back({"/dev/hugepages", "hugetlbfs", "hugetlbfs", {}});
  plan = PlanOf(extra);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), std::vector<std::string>{"/sys"});
}

TEST(UsePremadeMounts, AnotherSysMountOrAMountOverAMaskLeavesSysCold) {
  spec::Spec s = spec::DefaultSpec();
  s.mounts[5].options = {"nosuid", "noexec", "nodev"};  // /sys read-write
  RootfsPlan plan = PlanOf(s);
  PremadeMounts premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/proc"}));
  EXPECT_EQ(std::count(plan.masked_paths.begin(), plan.masked_paths.end(), "/sys/firmware"), 1);

  spec::Spec unmasked = spec::DefaultSpec();
  std::erase(unmasked.linux.masked_paths, "/sys/firmware");
  plan = PlanOf(unmasked);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/proc"}));

  spec::Spec over_mask = spec::DefaultSpec();
  over_mask.mounts.push_back({"/sys/firmware", "tmpfs", "tmpfs", {}});
  plan = PlanOf(over_mask);
  premade = Premade();
  EXPECT_EQ(UsePremadeMounts(plan, premade), (std::vector<std::string>{"/dev", "/proc"}));
}

TEST(UsePremadeMounts, AnotherRootPropagationOrAMountOnRootUsesNothing) {
  spec::Spec s = spec::DefaultSpec();
  s.linux.rootfs_propagation = "rslave";
  RootfsPlan plan = PlanOf(s);
  PremadeMounts premade = Premade();
  EXPECT_TRUE(UsePremadeMounts(plan, premade).empty());

  spec::Spec on_root = spec::DefaultSpec();
  on_root.mounts.push_back({"/", "bind", "/srv", {"rbind"}});
  plan = PlanOf(on_root);
  premade = Premade();
  EXPECT_TRUE(UsePremadeMounts(plan, premade).empty());
}

TEST(UsePremadeMounts, AnUnmadeTreeIsNotUsed) {
  RootfsPlan plan = PlanOf(spec::DefaultSpec());
  PremadeMounts premade = Premade();
  premade.dev.fd.reset();
  premade.dev.unmade = "move_mount into premade tree: EINVAL";
  EXPECT_EQ(UsePremadeMounts(plan, premade), std::vector<std::string>{"/sys"});
  EXPECT_TRUE(plan.populate_dev);
}

}  // namespace
}  // namespace berth::container
