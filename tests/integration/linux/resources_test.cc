// Limits from linux.resources, enforced by the kernel on a real container.
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/integration/linux/container_fixture.h"

namespace berth::testing {
namespace {

using container::ContainerInfo;

TEST_F(ContainerTest, MemoryLimitOomKillsInsideAndIsReported) {
  // The shell keeps everything it reads in memory; 32 MiB cannot hold an endless `yes`.
  spec::Spec s = BaseSpec({"sh", "-c", "x=$(yes)"});
  s.linux.resources.emplace().memory.emplace().limit = 32ll << 20;
  ContainerInfo info = RunToExit("oom", s);
  ASSERT_TRUE(info.exit_signal.has_value()) << "exit code " << info.exit_code.value_or(-1);
  EXPECT_EQ(*info.exit_signal, SIGKILL);
  EXPECT_TRUE(info.oom_killed);
}

TEST_F(ContainerTest, PidsLimitStopsAForkBomb) {
  // The inner shell is the bomb: busybox sh gives up at its first failed fork, and the
  // sleeps it did start stay behind, counted against the limit.
  spec::Spec s = BaseSpec({"sh", "-c",
                           "sh -c 'for i in $(seq 1 60); do sleep 30 & done' 2>/dev/null; "
                           "echo started; exec sleep 60"});
  s.linux.resources.emplace().pids.emplace().limit = 16;
  Create("pids", s);
  container::StartContainer(state_root_, "pids");
  for (int i = 0; i < 300 && Console("pids").find("started") == std::string::npos; ++i) {
    ::usleep(10000);
  }
  std::string events = ReadFile(CgroupDir("pids", "pids") + "/pids.events");
  EXPECT_EQ(ReadFile(CgroupDir("pids", "pids") + "/pids.max"), "16\n");
  auto pids = container::ContainerPids(state_root_, "pids");
  EXPECT_LE(pids.size(), 16u);
  EXPECT_GE(pids.size(), 10u);
  EXPECT_NE(events.find("max "), std::string::npos);
  EXPECT_EQ(events.find("max 0"), std::string::npos) << events;  // forks were refused
}

TEST_F(ContainerTest, CpuQuotaCapsUsage) {
  spec::Spec s = BaseSpec({"sh", "-c", "while :; do :; done"});
  auto& cpu = s.linux.resources.emplace().cpu.emplace();
  cpu.quota = 20000;  // 20% of one CPU
  cpu.period = 100000;
  Create("cpu", s);
  container::StartContainer(state_root_, "cpu");
  const std::string usage = CgroupDir("cpuacct", "cpu") + "/cpuacct.usage";
  ::usleep(200000);
  auto t0 = std::chrono::steady_clock::now();
  long long u0 = std::atoll(ReadFile(usage).c_str());
  ::usleep(1500000);
  long long u1 = std::atoll(ReadFile(usage).c_str());
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double share = (u1 - u0) / 1e9 / wall;
  EXPECT_GT(share, 0.03);  // it ran (a loaded CI machine may give it less than its quota)
  EXPECT_LT(share, 0.30);  // unlimited it would be ~1.0
}

TEST_F(ContainerTest, StatsOfARunningContainer) {
  spec::Spec s =
      BaseSpec({"sh", "-c", "sleep 30 & sleep 30 & x=$(head -c 4000000 /dev/urandom | od); wait"});
  s.linux.resources.emplace().memory.emplace().limit = 256ll << 20;
  Create("stats", s);
  container::StartContainer(state_root_, "stats");
  // Polled, not slept: on a loaded machine the shell may take a while to fork its sleeps.
  cgroup::CgroupStats st = container::ContainerStats(state_root_, "stats");
  for (int i = 0; i < 300 && (st.pids_current < 3 || st.memory_usage_bytes == 0); ++i) {
    ::usleep(10000);
    st = container::ContainerStats(state_root_, "stats");
  }
  EXPECT_GE(st.pids_current, 3u);
  EXPECT_GT(st.cpu_usage_ns, 0u);
  EXPECT_GT(st.memory_usage_bytes, 0u);
  ASSERT_TRUE(st.memory_limit_bytes.has_value());
  EXPECT_EQ(*st.memory_limit_bytes, 256ull << 20);
  EXPECT_EQ(st.oom_kills, 0u);
  EXPECT_NE(container::StatsJson(st).find("\"limit_bytes\": 268435456"), std::string::npos);
}

TEST_F(ContainerTest, ImpossibleLimitIsAClearErrorAndLeavesNothing) {
  spec::Spec s = BaseSpec({"true"});
  s.linux.resources.emplace().cpu.emplace().cpus = "60-63";  // this host has 2 CPUs
  try {
    Create("badcpus", s);
    FAIL() << "created";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("linux.resources.cpu.cpus"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(PathExists(StateDir("badcpus")));
  EXPECT_FALSE(PathExists(CgroupDir("cpuset", "badcpus")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "badcpus")));
}

}  // namespace
}  // namespace berth::testing
