// Containers created through the spawner: the same containers and the same errors as
// CreateContainer in the caller, monitors reaped by the spawner, and a spawner that dies
// reported as such without leaving a half-made container. Shells made by its zygote, not
// by the spawner's own forks; a zygote that dies leaves creates cold, not failing.
#include "runtime/linux/spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/integration/linux/container_fixture.h"

namespace berth::testing {
namespace {

// "R", "S", "Z", ... or empty when the process is gone.
std::string ProcessState(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return stat ? std::string(1, stat->state) : "";
}

pid_t ParentOf(pid_t pid) {
  auto stat = ReadProcStat(pid);
  return stat ? stat->ppid : -1;
}

// The children of `parent`, but zombies.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& name : ListDirectory("/proc", IfMissing::kThrow)) {
    pid_t pid = static_cast<pid_t>(std::atoi(name.c_str()));
    auto stat = pid > 0 ? ReadProcStat(pid) : std::nullopt;
    if (stat && stat->ppid == parent && stat->state != 'Z') out.push_back(pid);
  }
  return out;
}

// The spawner forks its zygote first thing, after Start has returned: waited for.
pid_t ZygoteOf(pid_t spawner) {
  for (int i = 0; i < 400; ++i) {
    for (pid_t pid : ChildrenOf(spawner)) {
      auto stat = ReadProcStat(pid);
      if (stat && stat->comm == "berth-zygote") return pid;
    }
    ::usleep(5000);
  }
  return -1;
}

struct ShellPids {
  pid_t monitor = -1;
  pid_t init = -1;
};

// An unclaimed shell's monitor: exec'd with "--shell-claim-fd" (a claimed one shows a cold
// monitor's command line), child of `spawner`.
std::optional<ShellPids> FindShell(pid_t spawner) {
  for (pid_t pid : ChildrenOf(spawner)) {
    auto cmdline = ReadFileIfExists("/proc/" + std::to_string(pid) + "/cmdline");
    if (!cmdline || cmdline->find("--shell-claim-fd") == std::string::npos) continue;
    auto at = cmdline->find(std::string("--init-pid\0", 11));
    if (at == std::string::npos) continue;
    return ShellPids{pid, static_cast<pid_t>(std::atoi(cmdline->c_str() + at + 11))};
  }
  return std::nullopt;
}

// Shells are made at nice 19 after 50 ms without a request: slow on a busy host. Once the
// monitor is exec'd, the zygote still answers and the spawner files the shell.
std::optional<ShellPids> WaitForShell(pid_t spawner) {
  for (int i = 0; i < 500; ++i) {
    if (auto shell = FindShell(spawner)) {
      ::usleep(500000);
      return shell;
    }
    ::usleep(10000);
  }
  return std::nullopt;
}

class SpawnerTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    spawner_ = container::Spawner::Start();
  }
  void TearDown() override {
    ContainerTest::TearDown();
    spawner_.reset();
  }

  // A spawner that keeps one shell, its stderr (its log) in a file of the test's.
  void StartWithShells() {
    spawner_.reset();
    log_ = dir_->Sub("spawner.log");
    const int saved = ::dup(2);
    const int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log, 0);
    ::dup2(log, 2);
    ::close(log);
    spawner_ = container::Spawner::Start(1);
    ::dup2(saved, 2);
    ::close(saved);
  }

  std::unique_ptr<container::Spawner> spawner_;
  std::string log_;
};

TEST_F(SpawnerTest, CreatesAContainerWhoseMonitorItReaps) {
  auto record = spawner_->Create(Options("spawned", BaseSpec({"sh", "-c", "echo hello; exit 3"})));
  EXPECT_EQ(container::QueryContainer(state_root_, "spawned").status, container::Status::kCreated);
  // One fork: the monitor is the spawner's child, not re-parented away.
  EXPECT_EQ(ParentOf(record.monitor_pid), spawner_->pid());
  EXPECT_EQ(ParentOf(record.init_pid), record.monitor_pid);
  EXPECT_TRUE(PathExists(CgroupDir("memory", "spawned")));
  container::StartContainer(state_root_, "spawned");
  auto info = container::WaitContainer(state_root_, "spawned");
  EXPECT_EQ(info.exit_code.value_or(-1), 3);
  EXPECT_NE(Console("spawned").find("hello"), std::string::npos) << Console("spawned");
  container::DeleteContainer(state_root_, "spawned", false);
  // The monitor exits once its init is gone, and the spawner reaps it: no zombie stays.
  for (int i = 0; i < 300 && !ProcessState(record.monitor_pid).empty(); ++i) ::usleep(5000);
  EXPECT_EQ(ProcessState(record.monitor_pid), "") << "monitor " << record.monitor_pid;
  EXPECT_FALSE(PathExists(CgroupDir("memory", "spawned")));
}

TEST_F(SpawnerTest, ConcurrentCreatesAllSucceed) {
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      try {
        spawner_->Create(Options("many" + std::to_string(i), BaseSpec({"sleep", "60"})));
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    EXPECT_EQ(container::QueryContainer(state_root_, "many" + std::to_string(i)).status,
              container::Status::kCreated);
  }
}

TEST_F(SpawnerTest, ErrorsKeepTheirKindAndLeaveNothing) {
  try {
    spawner_->Create(Options("noexe", BaseSpec({"no-such-program"})));
    FAIL() << "created with a missing executable";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
    EXPECT_NE(std::string(e.what()).find("no-such-program"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(PathExists(StateDir("noexe")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "noexe")));
  spawner_->Create(Options("dup", BaseSpec({"sleep", "60"})));
  try {
    spawner_->Create(Options("dup", BaseSpec({"sleep", "60"})));
    FAIL() << "created twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists) << e.what();
  }
  EXPECT_TRUE(spawner_->alive());
}

TEST_F(SpawnerTest, ADeadSpawnerIsReportedAndCreatesNothing) {
  ASSERT_EQ(::kill(spawner_->pid(), SIGKILL), 0);
  for (int i = 0; i < 200 && ProcessState(spawner_->pid()) != "Z"; ++i) ::usleep(5000);
  try {
    spawner_->Create(Options("orphan", BaseSpec({"sleep", "60"})));
    FAIL() << "created through a dead spawner";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kSystem) << e.what();
    EXPECT_NE(std::string(e.what()).find("spawner"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(spawner_->alive());
  EXPECT_FALSE(PathExists(StateDir("orphan")));
}

TEST_F(SpawnerTest, EndsWithItsOwner) {
  pid_t pid = spawner_->pid();
  ASSERT_NE(ProcessState(pid), "");
  ASSERT_NE(ProcessState(pid), "Z");
  spawner_.reset();
  EXPECT_EQ(ProcessState(pid), "");  // exited and reaped
}

// Each fork write-protects the forking process's pages: the spawner makes none for a
// shell. Its zygote makes M as the spawner's child (the spawner reaps it, as it reaps a
// cold create's monitor) and keeps no child of its own.
TEST_F(SpawnerTest, ShellsAreMadeByItsZygoteNotByTheSpawner) {
  StartWithShells();
  const pid_t zygote = ZygoteOf(spawner_->pid());
  ASSERT_GT(zygote, 0) << "the spawner has no berth-zygote child";
  EXPECT_NE(ReadFile("/proc/" + std::to_string(zygote) + "/status").find("\nThreads:\t1\n"),
            std::string::npos);
  // Nothing of the spawner's but stdio: its socket to the spawner and no other descriptor.
  std::vector<std::string> held;
  for (const auto& fd :
       ListDirectory("/proc/" + std::to_string(zygote) + "/fd", IfMissing::kThrow)) {
    if (std::atoi(fd.c_str()) > 2) held.push_back(fd);
  }
  ASSERT_EQ(held.size(), 1u);
  char target[64] = {};
  ::readlink(("/proc/" + std::to_string(zygote) + "/fd/" + held[0]).c_str(), target,
             sizeof target - 1);
  EXPECT_EQ(std::string(target).rfind("socket:", 0), 0u) << target;
  spec::Spec s = UsernsSpec({"sh", "-c", "echo warm"});
  spawner_->Prepare(*container::ShellShapeOf(s));
  auto shell = WaitForShell(spawner_->pid());
  ASSERT_TRUE(shell) << "no shell was made";
  EXPECT_EQ(ParentOf(shell->init), shell->monitor);
  // The init was cloned from M before M exec'd berth-monitor, and M from the zygote: its
  // name is the zygote's. From a fork of the spawner it would be "berth-spawner".
  EXPECT_EQ(ReadProcStat(shell->init)->comm, "berth-zygote");
  EXPECT_TRUE(ChildrenOf(zygote).empty());

  bool used_shell = false;
  auto record = spawner_->Create(Options("warm", s), {}, &used_shell);
  EXPECT_TRUE(used_shell);
  EXPECT_EQ(record.init_pid, shell->init);
  EXPECT_EQ(record.monitor_pid, shell->monitor);
  container::StartContainer(state_root_, "warm");
  EXPECT_EQ(container::WaitContainer(state_root_, "warm").exit_code.value_or(-1), 0);
  EXPECT_NE(Console("warm").find("warm\n"), std::string::npos) << Console("warm");
  container::DeleteContainer(state_root_, "warm", false);
  // Reaped by the spawner once its container is gone.
  for (int i = 0; i < 300 && !ProcessState(shell->monitor).empty(); ++i) ::usleep(5000);
  EXPECT_EQ(ProcessState(shell->monitor), "") << "monitor " << shell->monitor;

  // The zygote ends with the spawner, reaped: nothing is left behind.
  spawner_.reset();
  EXPECT_EQ(ProcessState(zygote), "");
  EXPECT_EQ(ReadFile(log_).find("zygote"), std::string::npos) << "a clean end is no news";
}

// A dead zygote costs the shells not yet made: the one made stays good, and later creates
// go cold and work.
TEST_F(SpawnerTest, AZygoteThatDiesLeavesCreatesCold) {
  StartWithShells();
  const pid_t zygote = ZygoteOf(spawner_->pid());
  ASSERT_GT(zygote, 0) << "the spawner has no berth-zygote child";
  spec::Spec first = UsernsSpec({"true"}, 100000);
  spawner_->Prepare(*container::ShellShapeOf(first));
  auto shell = WaitForShell(spawner_->pid());
  ASSERT_TRUE(shell) << "no shell was made";

  ASSERT_EQ(::kill(zygote, SIGKILL), 0);
  for (int i = 0; i < 300 && !ProcessState(zygote).empty(); ++i) ::usleep(5000);
  EXPECT_EQ(ProcessState(zygote), "") << "the spawner did not reap its zygote";
  EXPECT_NE(ReadFile(log_).find("shell zygote (pid " + std::to_string(zygote) + ") is gone"),
            std::string::npos)
      << ReadFile(log_);

  bool used_shell = false;
  auto record = spawner_->Create(Options("made-before", first), {}, &used_shell);
  EXPECT_TRUE(used_shell);
  EXPECT_EQ(record.init_pid, shell->init);

  spec::Spec next = UsernsSpec({"sh", "-c", "echo cold"}, 200000);
  spawner_->Prepare(*container::ShellShapeOf(next));
  ::usleep(500000);  // ten times the quiet wait before a shell is made
  EXPECT_FALSE(FindShell(spawner_->pid())) << "a shell was made without a zygote";
  record = spawner_->Create(Options("cold", next), {}, &used_shell);
  EXPECT_FALSE(used_shell);
  EXPECT_TRUE(spawner_->alive());
  EXPECT_EQ(ParentOf(record.monitor_pid), spawner_->pid());
  container::StartContainer(state_root_, "cold");
  EXPECT_EQ(container::WaitContainer(state_root_, "cold").exit_code.value_or(-1), 0);
  EXPECT_NE(Console("cold").find("cold\n"), std::string::npos) << Console("cold");
}

// Polls TakeShell: the shell is handed over once the zygote has made it (nice 19, after
// 50 ms without a request).
std::unique_ptr<container::Shell> WaitToTake(container::Spawner& spawner,
                                             const container::ShellShape& shape) {
  for (int i = 0; i < 1000; ++i) {
    if (auto shell = spawner.TakeShell(shape)) return shell;
    ::usleep(10000);
  }
  return nullptr;
}

// Expect: the shell, once made, is handed over, and the caller claims it itself (no request
// to the spawner), as berthd does; its monitor stays the spawner's child and is reaped by it.
TEST_F(SpawnerTest, AnExpectedShellIsHandedOverAndClaimedByTheCaller) {
  StartWithShells();
  spec::Spec s = UsernsSpec({"sh", "-c", "echo handed over"});
  const container::ShellShape shape = *container::ShellShapeOf(s);
  EXPECT_EQ(spawner_->TakeShell(shape), nullptr) << "a shell held before any was expected";
  spawner_->Expect(shape);
  std::unique_ptr<container::Shell> shell = WaitToTake(*spawner_, shape);
  ASSERT_NE(shell, nullptr) << "no shell was handed over";
  EXPECT_EQ(spawner_->TakeShell(shape), nullptr) << "one shell was taken twice";
  const pid_t monitor = shell->monitor_pid(), init = shell->init_pid();
  EXPECT_EQ(ParentOf(monitor), spawner_->pid());
  EXPECT_EQ(ParentOf(init), monitor);

  container::CreateOptions o = Options("handed", s);
  o.caller_reaps_monitor = true;  // the spawner does
  auto record = container::CreateContainer(o, std::move(shell));
  EXPECT_EQ(record.init_pid, init);
  EXPECT_EQ(record.monitor_pid, monitor);
  container::StartContainer(state_root_, "handed");
  EXPECT_EQ(container::WaitContainer(state_root_, "handed").exit_code.value_or(-1), 0);
  EXPECT_NE(Console("handed").find("handed over\n"), std::string::npos) << Console("handed");
  container::DeleteContainer(state_root_, "handed", false);
  for (int i = 0; i < 300 && !ProcessState(monitor).empty(); ++i) ::usleep(5000);
  EXPECT_EQ(ProcessState(monitor), "") << "monitor " << monitor << " not reaped by the spawner";
}

// A held shell whose slot moved on (an Expect of another shape) ends; a spawner stopped
// while it waits for a shell stops at once, and nothing of either is left.
TEST_F(SpawnerTest, AHeldShellOfAnOldGuessEndsAndAStopDoesNotWaitForAShell) {
  StartWithShells();
  const container::ShellShape first = *container::ShellShapeOf(UsernsSpec({"true"}, 100000));
  const container::ShellShape second = *container::ShellShapeOf(UsernsSpec({"true"}, 200000));
  spawner_->Expect(first);
  std::unique_ptr<container::Shell> held = WaitToTake(*spawner_, first);
  ASSERT_NE(held, nullptr) << "no shell was handed over";
  const pid_t monitor = held->monitor_pid(), init = held->init_pid();
  held.reset();  // taken, then given up: it ends as an unclaimed shell does
  for (int i = 0; i < 300 && !(ProcessState(monitor).empty() && ProcessState(init).empty()); ++i)
    ::usleep(5000);
  EXPECT_EQ(ProcessState(monitor), "");
  EXPECT_EQ(ProcessState(init), "");

  spawner_->Expect(first);
  for (int i = 0; i < 500 && !FindShell(spawner_->pid()); ++i) ::usleep(10000);
  auto made = FindShell(spawner_->pid());
  ASSERT_TRUE(made) << "no shell was made";
  ::usleep(300000);  // handed over by now
  spawner_->Expect(second);
  for (int i = 0; i < 300 && !ProcessState(made->monitor).empty(); ++i) ::usleep(5000);
  EXPECT_EQ(ProcessState(made->monitor), "") << "the held shell of the old guess lives on";
  EXPECT_EQ(ProcessState(made->init), "");
  EXPECT_EQ(spawner_->TakeShell(first), nullptr);

  // The fetch for `second` waits (or holds it by now); the spawner's end does not wait.
  const pid_t spawner = spawner_->pid();
  const auto started = std::chrono::steady_clock::now();
  spawner_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  EXPECT_EQ(ProcessState(spawner), "");
  EXPECT_TRUE(ChildrenOf(spawner).empty());
}

}  // namespace
}  // namespace berth::testing
