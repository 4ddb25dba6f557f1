// The v1 backend on this host's real hierarchies (as root).
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cstring>

#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/integration/cgroup/helpers.h"
#include "tests/support/test_env.h"

namespace berth::cgroup {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::Drain;
using testing::GroupCleaner;
using testing::Pipe;
using testing::TicksWithin;

std::string KernelValue(const std::string& dir, const std::string& file) {
  std::string v = ReadFile(JoinPath(dir, file));
  while (!v.empty() && v.back() == '\n') v.pop_back();
  return v;
}

class CgroupV1IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    host_ = DetectCgroupHost();
    if (host_.version != CgroupVersion::kV1) GTEST_SKIP() << "not a cgroup v1 host";
    for (const char* c : {"memory", "cpu", "cpuacct", "pids", "freezer", "devices", "cpuset"}) {
      if (!host_.v1_mounts.count(c)) GTEST_SKIP() << "no v1 " << c << " controller";
    }
    cleaner_ = std::make_unique<GroupCleaner>(host_);
  }

  CgroupHost host_;
  std::unique_ptr<GroupCleaner> cleaner_;
};

TEST_F(CgroupV1IntegrationTest, LifecycleWithARealChild) {
  Cgroup& cg = cleaner_->Make("life");
  cg.Create();
  for (const auto& [controller, mount] : host_.v1_mounts) {
    EXPECT_TRUE(PathExists(cg.DirectoryFor(controller))) << controller;
  }
  if (!host_.unified_mount.empty()) {
    EXPECT_TRUE(PathExists(cg.DirectoryFor("unified")));
  }

  Pipe ticks;
  Child child([&] { testing::TickForever(ticks.write_fd); });
  cg.AddProcess(child.pid());
  auto pids = cg.Pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), child.pid()), pids.end());
  if (!host_.unified_mount.empty()) {
    EXPECT_EQ(KernelValue(cg.DirectoryFor("unified"), "cgroup.procs"), std::to_string(child.pid()));
  }

  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 64 << 20;
  r.memory->reservation = 32 << 20;
  r.cpu.emplace();
  r.cpu->shares = 512;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.pids = spec::PidsResources{50};
  cg.Apply(r);
  EXPECT_EQ(KernelValue(cg.DirectoryFor("memory"), "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(KernelValue(cg.DirectoryFor("memory"), "memory.soft_limit_in_bytes"), "33554432");
  EXPECT_EQ(KernelValue(cg.DirectoryFor("cpu"), "cpu.shares"), "512");
  EXPECT_EQ(KernelValue(cg.DirectoryFor("cpu"), "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(KernelValue(cg.DirectoryFor("cpu"), "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(KernelValue(cg.DirectoryFor("pids"), "pids.max"), "50");

  CgroupStats s = cg.Stats();
  EXPECT_EQ(s.pids_current, 1u);
  EXPECT_EQ(s.pids_limit, 50u);
  EXPECT_EQ(s.memory_limit_bytes, uint64_t{64 << 20});

  Drain(ticks.read_fd);  // ticks from before the move
  ASSERT_TRUE(TicksWithin(ticks.read_fd, 2s));
  EXPECT_GT(cg.Stats().cpu_usage_ns, 0u);  // the new ticks ran inside the group
  cg.Freeze();
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kFrozen);
  Drain(ticks.read_fd);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(Drain(ticks.read_fd), 0) << "a frozen child made progress";
  cg.Thaw();
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kThawed);
  EXPECT_TRUE(TicksWithin(ticks.read_fd, 2s)) << "the thawed child did not resume";

  cg.KillAll();
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(cg.Pids().empty());

  cg.Destroy();
  for (const auto& [controller, mount] : host_.v1_mounts) {
    EXPECT_FALSE(PathExists(cg.DirectoryFor(controller))) << controller;
  }
  if (!host_.unified_mount.empty()) {
    EXPECT_FALSE(PathExists(cg.DirectoryFor("unified")));
  }
}

// KillAll kills through the unified twin's cgroup.kill where the host has one (hybrid),
// else through the freezer; either way a child forked inside the group dies too.
TEST_F(CgroupV1IntegrationTest, KillAllReachesForkedDescendants) {
  Cgroup& cg = cleaner_->Make("tree");
  cg.Create();
  testing::TreeInGroup tree(cg);
  cg.KillAll();
  EXPECT_TRUE(cg.Pids().empty());
  int status = tree.child().Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kThawed);
}

// A paused (frozen) group's tasks would not die from cgroup.kill until thawed: KillAll
// takes the freezer's way for it, and the group ends thawed and empty.
TEST_F(CgroupV1IntegrationTest, KillAllOfAPausedGroup) {
  Cgroup& cg = cleaner_->Make("paused");
  cg.Create();
  Pipe ticks;
  Child child([&] { testing::TickForever(ticks.write_fd); });
  cg.AddProcess(child.pid());
  cg.Freeze();
  ASSERT_EQ(cg.GetFreezerState(), FreezerState::kFrozen);
  cg.KillAll();
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(cg.Pids().empty());
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kThawed);
}

// A process that left the group's unified twin (moved to the unified root by hand) is
// still in the v1 groups: KillAll still kills it.
TEST_F(CgroupV1IntegrationTest, KillAllOfAProcessOutsideTheUnifiedTwin) {
  if (host_.unified_mount.empty()) GTEST_SKIP() << "no unified hierarchy beside v1";
  Cgroup& cg = cleaner_->Make("outside");
  cg.Create();
  Pipe ticks;
  Child child([&] { testing::TickForever(ticks.write_fd); });
  cg.AddProcess(child.pid());
  WriteToFile(JoinPath(host_.unified_mount, "cgroup.procs"), std::to_string(child.pid()));
  ASSERT_EQ(KernelValue(cg.DirectoryFor("unified"), "cgroup.procs"), "");
  cg.KillAll();
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(cg.Pids().empty());
}

TEST_F(CgroupV1IntegrationTest, MemoryAndSwapCanBeLoweredAndRaised) {
  Cgroup& cg = cleaner_->Make("memsw");
  cg.Create();
  std::string dir = cg.DirectoryFor("memory");
  if (!PathExists(JoinPath(dir, "memory.memsw.limit_in_bytes"))) {
    GTEST_SKIP() << "swap accounting is off";
  }
  auto apply = [&](int64_t limit, int64_t swap) {
    spec::Resources r;
    r.memory.emplace();
    r.memory->limit = limit;
    r.memory->swap = swap;
    cg.Apply(r);
    EXPECT_EQ(KernelValue(dir, "memory.limit_in_bytes"), std::to_string(limit));
    EXPECT_EQ(KernelValue(dir, "memory.memsw.limit_in_bytes"), std::to_string(swap));
  };
  apply(64 << 20, 128 << 20);
  apply(32 << 20, 48 << 20);    // both below the old limit: limit must go first
  apply(256 << 20, 512 << 20);  // both above the old memsw: memsw must go first
  spec::Resources unlimited;
  unlimited.memory.emplace();
  unlimited.memory->limit = -1;
  cg.Apply(unlimited);
  EXPECT_EQ(cg.Stats().memory_limit_bytes, std::nullopt);
}

TEST_F(CgroupV1IntegrationTest, KernelRejectionsNameTheField) {
  Cgroup& cg = cleaner_->Make("reject");
  cg.Create();
  spec::Resources quota;
  quota.cpu.emplace();
  quota.cpu->quota = 500;  // below the kernel's 1 ms minimum
  try {
    cg.Apply(quota);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("linux.resources.cpu.quota: write 500 to " +
                                              cg.DirectoryFor("cpu") + "/cpu.cfs_quota_us: EINVAL",
                                          0),
              0u)
        << e.what();
  }
  spec::Resources cpus;
  cpus.cpu.emplace();
  cpus.cpu->cpus = "999";
  try {
    cg.Apply(cpus);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).rfind("linux.resources.cpu.cpus: write 999", 0), 0u)
        << e.what();
  }
}

TEST_F(CgroupV1IntegrationTest, MemoryLimitBelowUsageIsEbusy) {
  Cgroup& cg = cleaner_->Make("busy");
  cg.Create();
  Pipe go, ready;
  Child child([&] {
    char c;
    if (::read(go.read_fd, &c, 1) != 1) ::_exit(1);
    // 32 MiB of anonymous memory charged to the group; with no swap it cannot be reclaimed.
    size_t size = 32 << 20;
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) ::_exit(2);
    ::memset(p, 1, size);
    if (::write(ready.write_fd, "r", 1) != 1) ::_exit(3);
    for (;;) ::pause();
  });
  cg.AddProcess(child.pid());
  ASSERT_EQ(::write(go.write_fd, "g", 1), 1);
  char c;
  ASSERT_EQ(::read(ready.read_fd, &c, 1), 1);

  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 4 << 20;
  r.memory->swap = 4 << 20;  // no swap either, so nothing can be pushed out
  bool memsw = PathExists(JoinPath(cg.DirectoryFor("memory"), "memory.memsw.limit_in_bytes"));
  if (!memsw) r.memory->swap.reset();
  try {
    cg.Apply(r);
    FAIL() << "the kernel accepted a limit below usage";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(
        std::string(e.what()).rfind("linux.resources.memory.limit: write 4194304 to " +
                                        cg.DirectoryFor("memory") + "/memory.limit_in_bytes: EBUSY",
                                    0),
        0u)
        << e.what();
  }
}

TEST_F(CgroupV1IntegrationTest, DeviceRulesAreEnforced) {
  berth::testing::TempDir tmp;
  std::string null_node = tmp.Sub("null"), zero_node = tmp.Sub("zero");
  ASSERT_EQ(::mknod(null_node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << strerror(errno);
  ASSERT_EQ(::mknod(zero_node.c_str(), S_IFCHR | 0666, makedev(1, 5)), 0) << strerror(errno);

  Cgroup& cg = cleaner_->Make("devices");
  cg.Create();
  spec::Resources r;
  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}, {true, "c", 1, 5, "rwm"}};
  cg.Apply(r);
  EXPECT_EQ(KernelValue(cg.DirectoryFor("devices"), "devices.list"), "c 1:5 rwm");

  Pipe go, result;
  Child child([&] {
    char c;
    if (::read(go.read_fd, &c, 1) != 1) ::_exit(1);
    int errs[2];
    int fd = ::open(null_node.c_str(), O_RDONLY);
    errs[0] = fd < 0 ? errno : 0;
    fd = ::open(zero_node.c_str(), O_RDONLY);
    errs[1] = fd < 0 ? errno : 0;
    if (::write(result.write_fd, errs, sizeof errs) != sizeof errs) ::_exit(2);
    ::_exit(0);
  });
  cg.AddProcess(child.pid());
  ASSERT_EQ(::write(go.write_fd, "g", 1), 1);
  int errs[2] = {-1, -1};
  ASSERT_EQ(::read(result.read_fd, errs, sizeof errs), static_cast<ssize_t>(sizeof errs));
  EXPECT_EQ(errs[0], EPERM) << "denied 1:3";
  EXPECT_EQ(errs[1], 0) << "allowed 1:5: " << strerror(errs[1]);
}

}  // namespace
}  // namespace berth::cgroup
