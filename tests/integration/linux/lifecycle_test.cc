// The lifecycle around the container: states, the monitor surviving its creator, deletion
// and rollback leaving nothing behind.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "tests/integration/linux/container_fixture.h"

namespace berth::testing {
namespace {

// A zombie has ended: its reaper (not us, for a re-parented monitor) may be slow.
bool ProcessExists(pid_t pid) {
  auto stat = ReadFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  auto close = stat->rfind(')');
  return close == std::string::npos || stat->substr(close + 2, 1) != "Z";
}

TEST_F(ContainerTest, CreatedRunningStoppedDeleted) {
  // A container's init gets no default action for SIGTERM: it must handle it itself.
  auto record =
      Create("states", BaseSpec({"sh", "-c", "trap 'exit 5' TERM; while :; do sleep 0.05; done"}));
  EXPECT_EQ(container::QueryContainer(state_root_, "states").status, container::Status::kCreated);
  EXPECT_TRUE(ProcessExists(record.init_pid));
  EXPECT_TRUE(ProcessExists(record.monitor_pid));
  container::StartContainer(state_root_, "states");
  EXPECT_EQ(container::QueryContainer(state_root_, "states").status, container::Status::kRunning);
  try {
    container::StartContainer(state_root_, "states");
    FAIL() << "started twice";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict) << e.what();
  }
  try {
    container::DeleteContainer(state_root_, "states", false);
    FAIL() << "deleted while running";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kConflict) << e.what();
  }
  std::string state = container::OciStateJson(container::QueryContainer(state_root_, "states"));
  EXPECT_NE(state.find("\"status\": \"running\""), std::string::npos) << state;
  ASSERT_TRUE(WaitForSignalHandler(record.init_pid, SIGTERM));
  container::KillContainer(state_root_, "states", SIGTERM, false);
  auto info = container::WaitContainer(state_root_, "states");
  EXPECT_EQ(info.exit_code.value_or(-1), 5);
  container::DeleteContainer(state_root_, "states", false);
  EXPECT_FALSE(PathExists(StateDir("states")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "states")));
  EXPECT_FALSE(ProcessExists(record.init_pid));
  // The monitor exits once the init is gone.
  for (int i = 0; i < 200 && ProcessExists(record.monitor_pid); ++i) ::usleep(5000);
  EXPECT_FALSE(ProcessExists(record.monitor_pid));
}

TEST_F(ContainerTest, ForceDeleteOfARunningContainerLeavesNothing) {
  spec::Spec s = BaseSpec({"sh", "-c", "sleep 60 & sleep 60 & wait"});
  auto record = Create("force", s);
  container::StartContainer(state_root_, "force");
  auto pids = container::ContainerPids(state_root_, "force");
  for (int i = 0; i < 300 && pids.size() < 3; ++i) {
    ::usleep(10000);
    pids = container::ContainerPids(state_root_, "force");
  }
  EXPECT_GE(pids.size(), 3u);
  container::DeleteContainer(state_root_, "force", true);
  for (pid_t p : pids) EXPECT_FALSE(ProcessExists(p)) << p;
  EXPECT_FALSE(PathExists(StateDir("force")));
  for (const char* c : {"memory", "pids", "cpu", "freezer", "cpuset", "devices", "blkio"}) {
    EXPECT_FALSE(PathExists(CgroupDir(c, "force"))) << c;
  }
}

TEST_F(ContainerTest, MonitorOutlivesItsCreator) {
  // A separate process creates and starts the container, then dies.
  pid_t creator = ::fork();
  ASSERT_GE(creator, 0);
  if (creator == 0) {
    try {
      Create("orphan", BaseSpec({"sh", "-c", "sleep 1; echo survived; exit 7"}));
      container::StartContainer(state_root_, "orphan");
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(creator, &st, 0), creator);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  auto info = container::QueryContainer(state_root_, "orphan");
  EXPECT_EQ(info.status, container::Status::kRunning);
  info = container::WaitContainer(state_root_, "orphan");
  EXPECT_EQ(info.exit_code.value_or(-1), 7);
  EXPECT_EQ(Console("orphan"), "survived\n");
  // Recorded on disk too, for a reader that comes after the monitor is gone.
  EXPECT_NE(ReadFile(StateDir("orphan") + "/status.json").find("\"exit_code\":7"),
            std::string::npos);
}

TEST_F(ContainerTest, AKilledMonitorLeavesTheInitRunningAndDeletable) {
  auto record = Create("nomonitor", BaseSpec({"sleep", "60"}));
  container::StartContainer(state_root_, "nomonitor");
  // The monitor answers a start before it writes status.json, which is all that speaks for
  // the container once the monitor is gone: killed in between, it would still say created.
  const std::string status = StateDir("nomonitor") + "/status.json";
  for (int i = 0; i < 200; ++i) {
    if (auto text = ReadFileIfExists(status); text && text->find("running") != std::string::npos)
      break;
    ::usleep(5000);
  }
  ASSERT_EQ(::kill(record.monitor_pid, SIGKILL), 0);
  for (int i = 0; i < 200 && ProcessExists(record.monitor_pid); ++i) ::usleep(5000);
  // The init lives on without its monitor: still running, so delete needs --force.
  EXPECT_EQ(container::QueryContainer(state_root_, "nomonitor").status,
            container::Status::kRunning);
  EXPECT_THROW(container::DeleteContainer(state_root_, "nomonitor", false), Error);
  container::DeleteContainer(state_root_, "nomonitor", true);
  for (int i = 0; i < 200 && ProcessExists(record.init_pid); ++i) ::usleep(5000);
  EXPECT_FALSE(ProcessExists(record.init_pid));
  EXPECT_FALSE(PathExists(StateDir("nomonitor")));
}

TEST_F(ContainerTest, TheInitDoesNotInheritTheCreatorsBlockedSignals) {
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::sigprocmask(SIG_BLOCK, &term, &old), 0);
  Create("sigmask", BaseSpec({"sh", "-c", "grep SigBlk /proc/self/status"}));
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  container::StartContainer(state_root_, "sigmask");
  container::WaitContainer(state_root_, "sigmask");
  EXPECT_EQ(Console("sigmask"), "SigBlk:\t0000000000000000\n");
}

TEST_F(ContainerTest, MissingExecutableFailsCreateAndLeavesNothing) {
  try {
    Create("noexe", BaseSpec({"/no/such/binary"}));
    FAIL() << "created";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/binary"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(PathExists(StateDir("noexe")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "noexe")));
  EXPECT_TRUE(container::ListContainers(state_root_).empty());
}

// Start is answered when the init is told to exec (runc's and crun's contract): a file the
// kernel cannot run is found by create, so it fails only at the exec, after start, and
// shows as the container's exit 126 with the reason in its console, as Docker shows it.
TEST_F(ContainerTest, AnExecThatFailsAfterStartIsTheContainersExit) {
  const std::string junk = rootfs_ + "/not-a-program";
  WriteFileAtomic(junk, "neither ELF nor #!\n", 0755);
  ScopeGuard remove([&] { ::unlink(junk.c_str()); });
  Create("noexec", BaseSpec({"/not-a-program"}));
  container::StartContainer(state_root_, "noexec");
  auto info = container::WaitContainer(state_root_, "noexec");
  EXPECT_EQ(info.exit_code.value_or(-1), 126);
  EXPECT_EQ(Console("noexec"), "berth: exec /not-a-program: Exec format error\n");
  container::DeleteContainer(state_root_, "noexec", false);
  EXPECT_FALSE(PathExists(StateDir("noexec")));
}

TEST_F(ContainerTest, DuplicateIdIsRefused) {
  Create("dup", BaseSpec({"sleep", "60"}));
  try {
    Create("dup", BaseSpec({"sleep", "60"}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kAlreadyExists);
  }
  EXPECT_EQ(container::QueryContainer(state_root_, "dup").status, container::Status::kCreated);
}

TEST_F(ContainerTest, UnknownContainerIsNotFound) {
  try {
    container::QueryContainer(state_root_, "ghost");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
}

}  // namespace
}  // namespace berth::testing
