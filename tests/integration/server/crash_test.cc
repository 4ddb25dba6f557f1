// berthd killed with SIGKILL and started again: every instance still runs and answers, and
// nothing half-made is left.
#include <signal.h>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

using CrashTest = ServerTest;

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

  daemon().Kill9();
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
