// Shells in berthd: after a spawn, the spawner makes the processes of the next one (for the
// user namespace slot it will get) and the next spawn claims them; they end with berthd.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

using ShellSpawnTest = ServerTest;

struct ShellPids {
  pid_t monitor = -1;
  pid_t init = -1;
};

// The nice value (field 19 of /proc/<pid>/stat).
long NiceOf(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 19 && rest >> field; ++i) {
  }
  return std::atol(field.c_str());
}

bool Ended(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return !stat || stat->state == 'Z';
}

pid_t SpawnerOf(pid_t daemon_pid) {
  for (const auto& name : ListDirectory("/proc", IfMissing::kThrow)) {
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    auto stat = pid > 0 ? ReadProcStat(pid) : std::nullopt;
    if (stat && stat->ppid == daemon_pid && stat->comm == "berth-spawner") return pid;
  }
  return -1;
}

// A berth-monitor exec'd as a shell's ("--shell-claim-fd"), child of the spawner, other
// than `claimed` (a claimed one keeps its command line).
std::optional<ShellPids> FindShell(pid_t spawner, pid_t claimed) {
  for (const auto& name : ListDirectory("/proc", IfMissing::kThrow)) {
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    auto stat = pid > 0 ? ReadProcStat(pid) : std::nullopt;
    if (!stat || stat->ppid != spawner || stat->state == 'Z' || pid == claimed) continue;
    auto cmdline = ReadFileIfExists("/proc/" + name + "/cmdline");
    if (!cmdline || cmdline->find("--shell-claim-fd") == std::string::npos) continue;
    auto at = cmdline->find(std::string("--init-pid\0", 11));
    if (at == std::string::npos) continue;
    return ShellPids{pid, static_cast<pid_t>(std::atoi(cmdline->c_str() + at + 11))};
  }
  return std::nullopt;
}

// The shell's monitor shows up once exec'd; the maker (at nice 19, slow to be scheduled
// on a busy host) then files the shell in its pool: a spawn before that goes cold.
std::optional<ShellPids> WaitForShell(pid_t spawner, pid_t claimed = -1) {
  for (int i = 0; i < 500; ++i) {
    if (auto shell = FindShell(spawner, claimed)) {
      ::usleep(500000);
      return shell;
    }
    ::usleep(10000);
  }
  return std::nullopt;
}

TEST_F(ShellSpawnTest, ASpawnClaimsTheShellMadeForItsSlotAndShellsEndWithBerthd) {
  const pid_t spawner = SpawnerOf(daemon().pid());
  ASSERT_GT(spawner, 0);
  // One is made at start-up (and after every spawn) for the next spawn.
  auto ready = WaitForShell(spawner);
  ASSERT_TRUE(ready) << "no shell was made at start-up";
  const std::string first = CreateInstance();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(Int(Show(first), "pid"), ready->init) << "the first spawn made its own processes";
  auto shell = WaitForShell(spawner, ready->monitor);
  ASSERT_TRUE(shell) << "no shell was made after a spawn";
  // Made with what spawns leave of the CPU.
  EXPECT_EQ(NiceOf(shell->monitor), 19);
  EXPECT_EQ(NiceOf(shell->init), 19);
  // Made for the next slot: its init already has that slot's id maps.
  const std::string uid_map = ReadFile("/proc/" + std::to_string(shell->init) + "/uid_map");

  const std::string second = CreateInstance();
  ASSERT_FALSE(second.empty());
  auto v = Show(second);
  EXPECT_EQ(Int(v, "pid"), shell->init) << "the spawn made its own processes";
  auto init = ReadProcStat(shell->init);
  ASSERT_TRUE(init);
  EXPECT_EQ(init->ppid, shell->monitor);
  EXPECT_EQ(NiceOf(shell->monitor), 0) << "a claimed shell's monitor stays at low priority";
  EXPECT_EQ(NiceOf(shell->init), 0) << "a claimed shell's init stays at low priority";
  EXPECT_EQ(ReadFile("/proc/" + std::to_string(shell->init) + "/uid_map"), uid_map);
  const std::string idmap = ReadFile(InstanceDir(second) + "/idmap.json");
  std::istringstream words(uid_map);
  long inside = -1, host = -1;
  words >> inside >> host;
  EXPECT_NE(idmap.find("\"uid\": " + std::to_string(host)), std::string::npos)
      << idmap << " vs " << uid_map;
  EXPECT_EQ(Exec(second, "echo from-a-shell; hostname"),
            "from-a-shell\n" + Str(v, "hostname") + "\n");
  EXPECT_NE(daemon().log().find("from a shell"), std::string::npos);
  // Handed over to berthd once made, and claimed there: no request to the spawner.
  EXPECT_NE(
      daemon().log().find("instance " + second + ": claims the shell held for its slot (init " +
                          std::to_string(shell->init) + ")"),
      std::string::npos)
      << daemon().log();

  // The next one's shell is made; berthd killed, it ends, the instances do not.
  auto next = WaitForShell(spawner, shell->monitor);
  ASSERT_TRUE(next);
  daemon().Kill9();
  for (int i = 0; i < 300 && !(Ended(next->monitor) && Ended(next->init)); ++i) ::usleep(10000);
  EXPECT_TRUE(Ended(next->monitor)) << "an unclaimed shell outlived berthd";
  EXPECT_TRUE(Ended(next->init)) << "an unclaimed shell's init outlived berthd";
  EXPECT_EQ(::kill(shell->init, 0), 0) << "a claimed shell's instance died with berthd";
  daemon().Start();
  EXPECT_EQ(Str(Show(second), "power_state_name"), "RUNNING");
}

}  // namespace
}  // namespace berth::testing
