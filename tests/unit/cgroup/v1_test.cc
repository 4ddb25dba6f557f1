// The v1 backend against a seeded fake hierarchy: one directory per controller mount, with
// cpu and cpuacct co-mounted as many distributions do, plus a hybrid unified mount.
#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "runtime/common/error.h"
#include "tests/support/test_env.h"
#include "tests/unit/cgroup/seed.h"

namespace berth::cgroup {
namespace {

using berth::testing::TempDir;
using testing::Read;
using testing::Seed;

class CgroupV1Test : public ::testing::Test {
 protected:
  CgroupV1Test() {
    host_.version = CgroupVersion::kV1;
    host_.root = tmp_.path();
    for (const char* c : {"cpuset", "memory", "devices", "freezer", "blkio", "pids"}) {
      host_.v1_mounts[c] = tmp_.Sub(c);
    }
    host_.v1_mounts["cpu"] = tmp_.Sub("cpu,cpuacct");
    host_.v1_mounts["cpuacct"] = tmp_.Sub("cpu,cpuacct");
    host_.unified_mount = tmp_.Sub("unified");
    for (const auto& [c, mount] : host_.v1_mounts) MakeDirs(mount);
    MakeDirs(host_.unified_mount);
    cg_ = OpenCgroupV1(host_, "/berth-test/c1");
  }

  std::string Dir(const std::string& mount) const { return tmp_.Sub(mount) + "/berth-test/c1"; }

  TempDir tmp_;
  CgroupHost host_;
  std::unique_ptr<Cgroup> cg_;
};

TEST_F(CgroupV1Test, CreateMakesTheGroupInEveryHierarchyOnce) {
  cg_->Create();
  for (const char* m :
       {"cpuset", "memory", "devices", "freezer", "blkio", "pids", "cpu,cpuacct", "unified"}) {
    EXPECT_TRUE(PathExists(Dir(m))) << m;
  }
  EXPECT_EQ(cg_->path(), "berth-test/c1");
  EXPECT_EQ(cg_->DirectoryFor("cpu"), Dir("cpu,cpuacct"));
  EXPECT_EQ(cg_->DirectoryFor("cpuacct"), Dir("cpu,cpuacct"));
  EXPECT_EQ(cg_->DirectoryFor("memory"), Dir("memory"));
  EXPECT_EQ(cg_->DirectoryFor("unified"), Dir("unified"));
  EXPECT_EQ(cg_->DirectoryFor("hugetlb"), "");
  cg_->Create();  // idempotent
}

TEST_F(CgroupV1Test, CreateCopiesCpusetFromTheParentWhenEmpty) {
  Seed(tmp_.Sub("cpuset"), {{"cpuset.cpus", "0-1\n"}, {"cpuset.mems", "0\n"}});
  // The kernel makes these files empty in a new group.
  Seed(tmp_.Sub("cpuset") + "/berth-test", {{"cpuset.cpus", "\n"}, {"cpuset.mems", "\n"}});
  Seed(Dir("cpuset"), {{"cpuset.cpus", "\n"}, {"cpuset.mems", "\n"}});
  cg_->Create();
  EXPECT_EQ(Read(tmp_.Sub("cpuset") + "/berth-test", "cpuset.cpus"), "0-1");
  EXPECT_EQ(Read(Dir("cpuset"), "cpuset.cpus"), "0-1");
  EXPECT_EQ(Read(Dir("cpuset"), "cpuset.mems"), "0");
}

TEST_F(CgroupV1Test, CreateKeepsAnExistingCpuset) {
  Seed(tmp_.Sub("cpuset"), {{"cpuset.cpus", "0-1\n"}, {"cpuset.mems", "0\n"}});
  Seed(Dir("cpuset"), {{"cpuset.cpus", "1\n"}, {"cpuset.mems", "0\n"}});
  cg_->Create();
  EXPECT_EQ(Read(Dir("cpuset"), "cpuset.cpus"), "1\n");
}

TEST_F(CgroupV1Test, AddProcessJoinsEveryHierarchy) {
  cg_->Create();
  for (const char* m :
       {"cpuset", "memory", "devices", "freezer", "blkio", "pids", "cpu,cpuacct", "unified"}) {
    Seed(Dir(m), {{"cgroup.procs", ""}});
  }
  cg_->AddProcess(4242);
  for (const char* m :
       {"cpuset", "memory", "devices", "freezer", "blkio", "pids", "cpu,cpuacct", "unified"}) {
    EXPECT_EQ(Read(Dir(m), "cgroup.procs"), "4242") << m;
  }
}

TEST_F(CgroupV1Test, ApplyWritesEveryController) {
  cg_->Create();
  Seed(Dir("memory"), {{"memory.limit_in_bytes", "9223372036854771712\n"},
                       {"memory.memsw.limit_in_bytes", "9223372036854771712\n"},
                       {"memory.soft_limit_in_bytes", ""},
                       {"memory.swappiness", ""},
                       {"memory.oom_control", ""}});
  Seed(Dir("cpu,cpuacct"), {{"cpu.shares", ""},
                            {"cpu.cfs_quota_us", ""},
                            {"cpu.cfs_period_us", ""},
                            {"cpu.rt_period_us", ""},
                            {"cpu.rt_runtime_us", ""}});
  Seed(Dir("cpuset"), {{"cpuset.cpus", ""}, {"cpuset.mems", ""}});
  Seed(Dir("pids"), {{"pids.max", ""}});
  Seed(Dir("blkio"), {{"blkio.weight", ""},
                      {"blkio.weight_device", ""},
                      {"blkio.throttle.read_bps_device", ""},
                      {"blkio.throttle.write_iops_device", ""}});
  Seed(Dir("devices"), {{"devices.allow", ""}, {"devices.deny", ""}});

  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 64 << 20;
  r.memory->swap = 128 << 20;
  r.memory->reservation = 32 << 20;
  r.memory->swappiness = 0;
  r.memory->disable_oom_killer = true;
  r.cpu.emplace();
  r.cpu->shares = 512;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.cpu->realtime_period = 1000000;
  r.cpu->realtime_runtime = 0;
  r.cpu->cpus = "0";
  r.cpu->mems = "0";
  r.pids = spec::PidsResources{100};
  r.block_io.emplace();
  r.block_io->weight = 300;
  r.block_io->weight_device = {{8, 0, 200, std::nullopt}};
  r.block_io->throttle_read_bps_device = {{8, 0, 1048576}};
  r.block_io->throttle_write_iops_device = {{8, 16, 50}};
  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}, {true, "c", 1, 3, "rwm"}};
  cg_->Apply(r);

  EXPECT_EQ(Read(Dir("memory"), "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(Read(Dir("memory"), "memory.memsw.limit_in_bytes"), "134217728");
  EXPECT_EQ(Read(Dir("memory"), "memory.soft_limit_in_bytes"), "33554432");
  EXPECT_EQ(Read(Dir("memory"), "memory.swappiness"), "0");
  EXPECT_EQ(Read(Dir("memory"), "memory.oom_control"), "1");
  EXPECT_EQ(Read(Dir("cpu,cpuacct"), "cpu.shares"), "512");
  EXPECT_EQ(Read(Dir("cpu,cpuacct"), "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read(Dir("cpu,cpuacct"), "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read(Dir("cpu,cpuacct"), "cpu.rt_period_us"), "1000000");
  EXPECT_EQ(Read(Dir("cpu,cpuacct"), "cpu.rt_runtime_us"), "0");
  EXPECT_EQ(Read(Dir("cpuset"), "cpuset.cpus"), "0");
  EXPECT_EQ(Read(Dir("cpuset"), "cpuset.mems"), "0");
  EXPECT_EQ(Read(Dir("pids"), "pids.max"), "100");
  EXPECT_EQ(Read(Dir("blkio"), "blkio.weight"), "300");
  EXPECT_EQ(Read(Dir("blkio"), "blkio.weight_device"), "8:0 200");
  EXPECT_EQ(Read(Dir("blkio"), "blkio.throttle.read_bps_device"), "8:0 1048576");
  EXPECT_EQ(Read(Dir("blkio"), "blkio.throttle.write_iops_device"), "8:16 50");
  // One file holds only the last write here; the order is checked in plan_test.
  EXPECT_EQ(Read(Dir("devices"), "devices.deny"), "a *:* rwm");
  EXPECT_EQ(Read(Dir("devices"), "devices.allow"), "c 1:3 rwm");

  // A resize that only lifts the pids limit leaves the rest alone.
  spec::Resources resize;
  resize.pids = spec::PidsResources{0};
  cg_->Apply(resize);
  EXPECT_EQ(Read(Dir("pids"), "pids.max"), "max");
  EXPECT_EQ(Read(Dir("memory"), "memory.limit_in_bytes"), "67108864");
}

TEST_F(CgroupV1Test, ApplyErrorsNameTheField) {
  cg_->Create();
  spec::Resources r;
  r.pids = spec::PidsResources{10};  // pids.max was not seeded: as if the file were absent
  try {
    cg_->Apply(r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_EQ(std::string(e.what()).rfind(
                  "linux.resources.pids.limit: open " + Dir("pids") + "/pids.max: ENOENT", 0),
              0u)
        << e.what();
  }

  spec::Resources unified;
  unified.unified["memory.high"] = "1G";
  EXPECT_THROW(cg_->Apply(unified), Error);

  CgroupHost no_memory = host_;
  no_memory.v1_mounts.erase("memory");
  spec::Resources mem;
  mem.memory.emplace();
  mem.memory->limit = 1 << 20;
  try {
    OpenCgroupV1(no_memory, "berth-test/c1")->Apply(mem);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_EQ(std::string(e.what()).rfind("linux.resources.memory:", 0), 0u) << e.what();
  }
}

TEST_F(CgroupV1Test, SwapWithoutAccountingIsUnsupported) {
  cg_->Create();
  Seed(Dir("memory"), {{"memory.limit_in_bytes", ""}});
  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 1 << 20;
  r.memory->swap = 2 << 20;
  try {
    cg_->Apply(r);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_EQ(std::string(e.what()).rfind("linux.resources.memory.swap:", 0), 0u) << e.what();
  }
  EXPECT_EQ(Read(Dir("memory"), "memory.limit_in_bytes"), "");  // nothing half-applied
}

TEST_F(CgroupV1Test, StatsParsesTheControllerFiles) {
  cg_->Create();
  long hz = ::sysconf(_SC_CLK_TCK);
  Seed(Dir("cpu,cpuacct"), {{"cpuacct.usage", "123456789\n"},
                            {"cpuacct.stat", (std::string("user ") + std::to_string(2 * hz) +
                                              "\nsystem " + std::to_string(hz) + "\n")
                                                 .c_str()},
                            {"cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 999\n"}});
  Seed(Dir("memory"), {{"memory.usage_in_bytes", "1048576\n"},
                       {"memory.max_usage_in_bytes", "2097152\n"},
                       {"memory.limit_in_bytes", "9223372036854771712\n"},
                       {"memory.stat", "cache 4096\nrss 8192\ntotal_cache 12288\ntotal_rss 8192\n"},
                       {"memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"}});
  Seed(Dir("pids"), {{"pids.current", "3\n"}, {"pids.max", "max\n"}});
  Seed(Dir("blkio"), {{"blkio.throttle.io_service_bytes",
                       "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\n"
                       "8:16 Read 100\n8:16 Write 1\n8:16 Total 101\nTotal 4709\n"}});
  CgroupStats s = cg_->Stats();
  EXPECT_EQ(s.cpu_usage_ns, 123456789u);
  EXPECT_EQ(s.cpu_user_ns, 2'000'000'000u);
  EXPECT_EQ(s.cpu_system_ns, 1'000'000'000u);
  EXPECT_EQ(s.cpu_throttled_periods, 3u);
  EXPECT_EQ(s.memory_usage_bytes, 1048576u);
  EXPECT_EQ(s.memory_max_usage_bytes, 2097152u);
  EXPECT_EQ(s.memory_limit_bytes, std::nullopt);
  EXPECT_EQ(s.memory_cache_bytes, 12288u);
  EXPECT_EQ(s.oom_kills, 2u);
  EXPECT_EQ(s.pids_current, 3u);
  EXPECT_EQ(s.pids_limit, std::nullopt);
  EXPECT_EQ(s.io_read_bytes, 4196u);
  EXPECT_EQ(s.io_write_bytes, 513u);

  Seed(Dir("memory"), {{"memory.limit_in_bytes", "67108864\n"}});
  Seed(Dir("pids"), {{"pids.max", "100\n"}});
  s = cg_->Stats();
  EXPECT_EQ(s.memory_limit_bytes, 67108864u);
  EXPECT_EQ(s.pids_limit, 100u);
}

TEST_F(CgroupV1Test, StatsOfAnEmptyGroupAreZero) {
  cg_->Create();
  CgroupStats s = cg_->Stats();
  EXPECT_EQ(s.cpu_usage_ns, 0u);
  EXPECT_EQ(s.memory_limit_bytes, std::nullopt);
}

TEST_F(CgroupV1Test, FreezeThawAndStateUseFreezerState) {
  cg_->Create();
  Seed(Dir("freezer"), {{"freezer.state", "THAWED\n"}, {"cgroup.procs", ""}});
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kThawed);
  cg_->Freeze();
  EXPECT_EQ(Read(Dir("freezer"), "freezer.state"), "FROZEN");
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kFrozen);
  cg_->Thaw();
  EXPECT_EQ(Read(Dir("freezer"), "freezer.state"), "THAWED");
  Seed(Dir("freezer"), {{"freezer.state", "FREEZING\n"}});
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kFreezing);
}

TEST_F(CgroupV1Test, KillAllOfAnEmptyGroupWritesNothing) {
  cg_->Create();
  Seed(Dir("freezer"), {{"freezer.state", "THAWED\n"}, {"cgroup.procs", ""}});
  cg_->KillAll();
  EXPECT_EQ(Read(Dir("freezer"), "freezer.state"), "THAWED\n");
  EXPECT_TRUE(cg_->Pids().empty());
}

TEST_F(CgroupV1Test, PidsReadsCgroupProcs) {
  cg_->Create();
  Seed(Dir("freezer"), {{"cgroup.procs", "12\n345\n"}});
  EXPECT_EQ(cg_->Pids(), (std::vector<pid_t>{12, 345}));
}

TEST_F(CgroupV1Test, DestroyRemovesEveryDirectoryAndToleratesMissing) {
  cg_->Create();
  cg_->Destroy();
  for (const char* m :
       {"cpuset", "memory", "devices", "freezer", "blkio", "pids", "cpu,cpuacct", "unified"}) {
    EXPECT_FALSE(PathExists(Dir(m))) << m;
    EXPECT_TRUE(PathExists(tmp_.Sub(m) + "/berth-test")) << m;  // parents are left
  }
  cg_->Destroy();
}

}  // namespace
}  // namespace berth::cgroup
