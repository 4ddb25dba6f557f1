// The v2 backend against a seeded fake unified hierarchy (an Ubuntu 24.04-like root).
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

class CgroupV2Test : public ::testing::Test {
 protected:
  CgroupV2Test() {
    host_.version = CgroupVersion::kV2;
    host_.root = tmp_.path();
    host_.unified_mount = tmp_.path();
    host_.unified_controllers = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids"};
    Seed(tmp_.path(), {{"cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"},
                       {"cgroup.subtree_control", ""}});
    cg_ = OpenCgroupV2(host_, "berth-test/c1");
    dir_ = tmp_.path() + "/berth-test/c1";
  }

  // The files the kernel gives a group whose parent enabled every controller.
  void SeedGroup() {
    Seed(dir_, {{"cgroup.procs", ""},
                {"cgroup.freeze", "0\n"},
                {"cgroup.events", "populated 0\nfrozen 0\n"},
                {"memory.max", ""},
                {"memory.low", ""},
                {"memory.swap.max", ""},
                {"memory.high", ""},
                {"cpu.weight", ""},
                {"cpu.max", "max 100000\n"},
                {"cpuset.cpus", ""},
                {"cpuset.mems", ""},
                {"pids.max", ""},
                {"io.weight", ""},
                {"io.max", ""}});
  }

  TempDir tmp_;
  CgroupHost host_;
  std::unique_ptr<Cgroup> cg_;
  std::string dir_;
};

TEST_F(CgroupV2Test, CreateEnablesOfferedControllersDownThePath) {
  // The intermediate group offers only what the root enabled (seeded as the kernel would).
  Seed(tmp_.Sub("berth-test"),
       {{"cgroup.controllers", "cpu memory pids\n"}, {"cgroup.subtree_control", "memory\n"}});
  cg_->Create();
  EXPECT_TRUE(PathExists(dir_));
  EXPECT_EQ(Read(tmp_.path(), "cgroup.subtree_control"), "+cpuset +cpu +io +memory +pids");
  EXPECT_EQ(Read(tmp_.Sub("berth-test"), "cgroup.subtree_control"), "+cpu +pids");
  EXPECT_FALSE(PathExists(dir_ + "/cgroup.subtree_control"));  // the leaf enables nothing

  // Already enabled: nothing is written again.
  Seed(tmp_.path(), {{"cgroup.subtree_control", "cpuset cpu io memory pids\n"}});
  cg_->Create();
  EXPECT_EQ(Read(tmp_.path(), "cgroup.subtree_control"), "cpuset cpu io memory pids\n");
}

TEST_F(CgroupV2Test, CreateOnAHierarchyWithoutControllersJustMakesTheDirectory) {
  Seed(tmp_.path(), {{"cgroup.controllers", "hugetlb\n"}});
  cg_->Create();
  EXPECT_TRUE(PathExists(dir_));
  EXPECT_EQ(Read(tmp_.path(), "cgroup.subtree_control"), "");
}

TEST_F(CgroupV2Test, ApplyWritesTheV2Files) {
  cg_->Create();
  SeedGroup();
  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 256 << 20;
  r.memory->swap = 512 << 20;
  r.memory->reservation = 128 << 20;
  r.memory->swappiness = 10;            // no v2 file: ignored
  r.memory->disable_oom_killer = true;  // likewise
  r.cpu.emplace();
  r.cpu->shares = 1024;
  r.cpu->quota = 150000;
  r.cpu->period = 100000;
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  r.pids = spec::PidsResources{-1};
  r.block_io.emplace();
  r.block_io->weight = 1000;
  r.block_io->throttle_read_bps_device = {{8, 0, 1000000}};
  r.block_io->throttle_write_bps_device = {{8, 0, 2000000}};
  r.unified["memory.high"] = "200M";
  cg_->Apply(r);

  EXPECT_EQ(Read(dir_, "memory.max"), "268435456");
  EXPECT_EQ(Read(dir_, "memory.low"), "134217728");
  EXPECT_EQ(Read(dir_, "memory.swap.max"), "268435456");
  EXPECT_EQ(Read(dir_, "memory.high"), "200M");
  EXPECT_EQ(Read(dir_, "cpu.weight"), "39");
  EXPECT_EQ(Read(dir_, "cpu.max"), "150000 100000");
  EXPECT_EQ(Read(dir_, "cpuset.cpus"), "0-1");
  EXPECT_EQ(Read(dir_, "cpuset.mems"), "0");
  EXPECT_EQ(Read(dir_, "pids.max"), "max");
  EXPECT_EQ(Read(dir_, "io.weight"), "default 10000");
  EXPECT_EQ(Read(dir_, "io.max"), "8:0 rbps=1000000 wbps=2000000");
}

TEST_F(CgroupV2Test, PeriodAloneKeepsTheCurrentQuota) {
  cg_->Create();
  SeedGroup();
  Seed(dir_, {{"cpu.max", "50000 100000\n"}});
  spec::Resources r;
  r.cpu.emplace();
  r.cpu->period = 200000;
  cg_->Apply(r);
  EXPECT_EQ(Read(dir_, "cpu.max"), "50000 200000");
}

TEST_F(CgroupV2Test, UnifiedKeysMustBePlainFileNames) {
  cg_->Create();
  SeedGroup();
  for (const char* key : {"../cgroup.procs", "sub/memory.max", ".."}) {
    spec::Resources r;
    r.pids = spec::PidsResources{5};
    r.unified[key] = "1";
    try {
      cg_->Apply(r);
      FAIL() << key;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_EQ(std::string(e.what()).rfind("linux.resources.unified", 0), 0u) << e.what();
    }
    EXPECT_EQ(Read(dir_, "pids.max"), "");  // refused before anything was written
  }
}

TEST_F(CgroupV2Test, MissingControllerFileNamesTheField) {
  cg_->Create();
  spec::Resources r;
  r.memory.emplace();
  r.memory->limit = 1 << 20;
  try {
    cg_->Apply(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_EQ(std::string(e.what()).rfind(
                  "linux.resources.memory.limit: open " + dir_ + "/memory.max: ENOENT", 0),
              0u)
        << e.what();
  }
}

TEST_F(CgroupV2Test, RealtimeIsUnsupported) {
  cg_->Create();
  SeedGroup();
  spec::Resources r;
  r.cpu.emplace();
  r.cpu->realtime_runtime = 1000;
  try {
    cg_->Apply(r);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
  }
}

TEST_F(CgroupV2Test, FreezeWaitsForCgroupEvents) {
  cg_->Create();
  SeedGroup();
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kThawed);
  // The kernel would flip cgroup.events; here it is seeded as already frozen.
  Seed(dir_, {{"cgroup.events", "populated 1\nfrozen 1\n"}});
  cg_->Freeze();
  EXPECT_EQ(Read(dir_, "cgroup.freeze"), "1");
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kFrozen);
  Seed(dir_, {{"cgroup.events", "populated 1\nfrozen 0\n"}});
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kFreezing);
  cg_->Thaw();
  EXPECT_EQ(Read(dir_, "cgroup.freeze"), "0");
  EXPECT_EQ(cg_->GetFreezerState(), FreezerState::kThawed);
}

TEST_F(CgroupV2Test, FreezeTimesOutWhenNeverFrozen) {
  cg_->Create();
  SeedGroup();
  try {
    cg_->Freeze();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("frozen 1"), std::string::npos) << e.what();
  }
}

// Killing a populated group (cgroup.kill, or freeze + signal + thaw) needs real processes:
// tests/integration/cgroup covers it on the kernel. An empty group is left untouched.
TEST_F(CgroupV2Test, KillAllOfAnEmptyGroupWritesNothing) {
  cg_->Create();
  SeedGroup();
  Seed(dir_, {{"cgroup.kill", ""}});
  cg_->KillAll();
  EXPECT_EQ(Read(dir_, "cgroup.kill"), "");
  EXPECT_EQ(Read(dir_, "cgroup.freeze"), "0\n");
}

TEST_F(CgroupV2Test, AddProcessAndPids) {
  cg_->Create();
  SeedGroup();
  cg_->AddProcess(777);
  EXPECT_EQ(Read(dir_, "cgroup.procs"), "777");
  EXPECT_EQ(cg_->Pids(), std::vector<pid_t>{777});
}

TEST_F(CgroupV2Test, AddProcessToAMissingGroupIsNotFound) {
  try {
    cg_->AddProcess(777);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
  }
}

TEST_F(CgroupV2Test, StatsParsesTheV2Files) {
  cg_->Create();
  Seed(dir_, {{"cpu.stat",
               "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 7\n"
               "nr_throttled 2\nthrottled_usec 10\n"},
              {"memory.current", "4096\n"},
              {"memory.peak", "8192\n"},
              {"memory.max", "max\n"},
              {"memory.stat", "anon 100\nfile 2048\nkernel 5\n"},
              {"memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n"},
              {"pids.current", "2\n"},
              {"pids.max", "50\n"},
              {"io.stat",
               "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
               "8:16 rbytes=1000 wbytes=2000 rios=3 wios=4 dbytes=0 dios=0\n"}});
  CgroupStats s = cg_->Stats();
  EXPECT_EQ(s.cpu_usage_ns, 1'500'000u);
  EXPECT_EQ(s.cpu_user_ns, 1'000'000u);
  EXPECT_EQ(s.cpu_system_ns, 500'000u);
  EXPECT_EQ(s.cpu_throttled_periods, 2u);
  EXPECT_EQ(s.memory_usage_bytes, 4096u);
  EXPECT_EQ(s.memory_max_usage_bytes, 8192u);
  EXPECT_EQ(s.memory_limit_bytes, std::nullopt);
  EXPECT_EQ(s.memory_cache_bytes, 2048u);
  EXPECT_EQ(s.oom_kills, 1u);
  EXPECT_EQ(s.pids_current, 2u);
  EXPECT_EQ(s.pids_limit, 50u);
  EXPECT_EQ(s.io_read_bytes, 1100u);
  EXPECT_EQ(s.io_write_bytes, 2200u);

  Seed(dir_, {{"memory.max", "1048576\n"}});
  EXPECT_EQ(cg_->Stats().memory_limit_bytes, 1048576u);
}

TEST_F(CgroupV2Test, DirectoryForAndDestroy) {
  cg_->Create();
  EXPECT_EQ(cg_->DirectoryFor("memory"), dir_);
  EXPECT_EQ(cg_->DirectoryFor("freezer"), dir_);
  EXPECT_EQ(cg_->DirectoryFor("rdma"), "");
  cg_->Destroy();
  EXPECT_FALSE(PathExists(dir_));
  EXPECT_TRUE(PathExists(tmp_.Sub("berth-test")));
  cg_->Destroy();  // missing is fine
}

TEST(OpenCgroupTest, PicksTheBackendByVersion) {
  TempDir tmp;
  CgroupHost v2;
  v2.version = CgroupVersion::kV2;
  v2.unified_mount = tmp.path();
  EXPECT_EQ(OpenCgroup(v2, "berth-test/x")->DirectoryFor("freezer"), tmp.path() + "/berth-test/x");
  CgroupHost v1;
  v1.v1_mounts["freezer"] = tmp.Sub("freezer");
  EXPECT_EQ(OpenCgroup(v1, "berth-test/x")->DirectoryFor("freezer"),
            tmp.Sub("freezer") + "/berth-test/x");
}

}  // namespace
}  // namespace berth::cgroup
