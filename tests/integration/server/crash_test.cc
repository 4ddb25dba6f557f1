// berthd killed with SIGKILL and started again: every instance still runs and answers, and
// nothing half-made is left.
#include <signal.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

using CrashTest = ServerTest;

// Gone, or a zombie waiting for its reaper.
bool Ended(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return !stat || stat->state == 'Z';
}

// berthd's child that creates the containers (runtime/linux/spawner.h).
pid_t SpawnerOf(pid_t daemon_pid) {
  auto children = ReadFileIfExists("/proc/" + std::to_string(daemon_pid) + "/task/" +
                                   std::to_string(daemon_pid) + "/children");
  std::istringstream in(children.value_or(""));
  for (pid_t child; in >> child;) {
    auto stat = ReadProcStat(child);
    if (stat && stat->comm == "berth-spawner") return child;
  }
  return -1;
}

TEST_F(CrashTest, InstancesSurviveSigkillOfBerthd) {
  std::vector<std::string> uuids;
  std::vector<int64_t> pids;
  for (int i = 0; i < 3; ++i) {
    uuids.push_back(CreateInstance());
    ASSERT_FALSE(uuids.back().empty());
    pids.push_back(Int(Show(uuids.back()), "pid"));
  }
  ASSERT_EQ(Action(uuids[2], R"({"action": "stop"})").status, 200);
  ASSERT_EQ(Action(uuids[2], R"({"action": "start"})").status, 200);
  pids[2] = Int(Show(uuids[2]), "pid");

  // A half-made instance (a spawn that died before its record) and an orphan snapshot dir.
  const std::string half = "0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d";
  MakeDirs(InstanceDir(half) + "/rootfs");

  // The instances' monitors are the spawner's children; the spawner ends with berthd, they
  // do not.
  const pid_t spawner = SpawnerOf(daemon().pid());
  ASSERT_GT(spawner, 0) << "berthd has no berth-spawner child";
  for (auto pid : pids) {
    auto init = ReadProcStat(static_cast<pid_t>(pid));
    ASSERT_TRUE(init);
    auto monitor = ReadProcStat(init->ppid);
    ASSERT_TRUE(monitor);
    EXPECT_EQ(monitor->ppid, spawner) << "monitor of init " << pid;
  }
  daemon().Kill9();
  for (int i = 0; i < 200 && !Ended(spawner); ++i) ::usleep(10000);
  EXPECT_TRUE(Ended(spawner)) << "the spawner outlived berthd";
  for (auto pid : pids) EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), 0) << "instance died";
  daemon().Start();

  auto list = daemon().Get("/v1/instances").Json();
  EXPECT_EQ(list["instances"].Size(), 3u);
  for (size_t i = 0; i < uuids.size(); ++i) {
    auto v = Show(uuids[i]);
    EXPECT_EQ(Str(v, "power_state_name"), "RUNNING");
    EXPECT_EQ(Int(v, "pid"), pids[i]);
    EXPECT_EQ(Exec(uuids[i], "echo alive"), "alive\n");
  }
  EXPECT_FALSE(PathExists(InstanceDir(half)));
  EXPECT_EQ(daemon().Get("/v1/instances/" + half).status, 404);
  // And they are still fully manageable.
  EXPECT_EQ(Action(uuids[0], R"({"action": "pause"})").status, 200);
  EXPECT_EQ(Action(uuids[0], R"({"action": "unpause"})").status, 200);
}

// The record is published once the container exists: from a shell, while its init finishes
// its root (its monitor starts it once it is ready, berthd or not); cold, just before the
// start. Killed once the record is on disk: the next berthd finds the spawn complete, or
// completes it (and one killed before the record leaves nothing:
// NetworkTest.SigkillDuringSpawnLeavesNothing).
TEST_F(CrashTest, ASpawnKilledBetweenItsRecordAndItsStartIsCompleted) {
  daemon().Kill9();
  daemon().SetPauseAt("spawn-after-record");
  daemon().Start();
  const std::string uuid = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f";
  int fd = daemon().SendAndForget(
      "POST", "/v1/instances",
      R"({"uuid": ")" + uuid +
          R"(", "image": "busybox", "command": ["sh", "-c", "echo started; sleep 1000"]})");
  ASSERT_TRUE(daemon().WaitPaused("spawn-after-record")) << daemon().log();
  EXPECT_TRUE(PathExists(InstanceDir(uuid) + "/instance.json"));
  daemon().Kill9();
  ::close(fd);
  daemon().SetPauseAt("");
  daemon().Start();
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  EXPECT_EQ(Exec(uuid, "echo alive"), "alive\n");
  std::string console;  // its first line follows its start by a moment
  for (int i = 0; i < 250 && console.find("started") == std::string::npos; ++i) {
    if (i > 0) ::usleep(20000);
    console = daemon().Get("/v1/instances/" + uuid + "/console").body;
  }
  EXPECT_NE(console.find("started"), std::string::npos) << console;
  EXPECT_EQ(daemon().Delete("/v1/instances/" + uuid).status, 204);
}

TEST_F(CrashTest, SigtermLeavesInstancesRunning) {
  std::string uuid = CreateInstance();
  int64_t pid = Int(Show(uuid), "pid");
  daemon().Terminate();
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), 0);
  daemon().Start();
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  EXPECT_EQ(Int(Show(uuid), "pid"), pid);
}

}  // namespace
}  // namespace berth::testing
