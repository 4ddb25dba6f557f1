// berth-monitor end to end: the real binary, a real init process, the real client.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/monitor/client.h"
#include "tests/integration/monitor/harness.h"
#include "tests/support/test_env.h"

namespace berth::monitor {
namespace {

using testing::ContainerOptions;
using testing::Eventually;
using testing::FileSize;
using testing::KindOf;
using testing::ParentOf;
using testing::ReadFileOr;
using testing::TestContainer;

ContainerOptions Command(std::vector<std::string> argv) {
  ContainerOptions o;
  o.argv = std::move(argv);
  return o;
}

ContainerOptions Shell(const std::string& script) { return Command({"/bin/sh", "-c", script}); }

// The monitor must exit 0 on its own once the init is gone, leaving no socket behind.
void ExpectMonitorFinished(TestContainer& c) {
  auto st = c.WaitMonitorExit(5000);
  ASSERT_TRUE(st) << "monitor still running";
  EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << "wait status " << *st;
  EXPECT_FALSE(PathExists(c.state_dir() + "/monitor.sock"));
  EXPECT_EQ(KindOf([&] { MonitorClient::Request(c.state_dir(), "state", 1000); }),
            ErrorKind::kNotFound);
}

class MonitorTest : public ::testing::Test {
 protected:
  berth::testing::TempDir dir_;
  std::string state() const { return dir_.path(); }
};

TEST_F(MonitorTest, LifecycleCreatedStartWaitStopped) {
  TestContainer c(state(), Shell("echo hello; echo oops >&2; exit 42"));
  EXPECT_EQ(ParentOf(c.init_pid()), c.monitor_pid());

  MonitorStatus st = MonitorClient::State(state());
  EXPECT_EQ(st.state, MonitorState::kCreated);
  EXPECT_EQ(st.pid, c.init_pid());
  EXPECT_FALSE(st.started_at);
  struct stat sock;
  ASSERT_EQ(::stat((state() + "/monitor.sock").c_str(), &sock), 0);
  EXPECT_EQ(sock.st_mode & 0777, 0600u);
  auto file = ReadStatusFile(state());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->state, MonitorState::kCreated);

  MonitorClient::Start(state());
  st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.state, MonitorState::kStopped);
  EXPECT_EQ(st.exit_code, 42);
  EXPECT_FALSE(st.exit_signal);
  EXPECT_TRUE(st.started_at);
  EXPECT_TRUE(st.finished_at);
  EXPECT_FALSE(st.oom_killed);

  const pid_t init = c.init_pid();
  ExpectMonitorFinished(c);
  EXPECT_EQ(ReadFileOr(state() + "/console.log"), "hello\noops\n");
  file = ReadStatusFile(state());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->state, MonitorState::kStopped);
  EXPECT_EQ(file->exit_code, 42);
  EXPECT_GE(*file->finished_at, *file->started_at);
  EXPECT_EQ(::kill(init, 0), -1) << "the init is still around";
}

// "start" is answered when the init is told to exec, as runc and crun answer: an exec
// that fails after that is the container's exit, with its errno in the status.
TEST_F(MonitorTest, StartAnswersAtOnceAndAFailedExecIsTheContainersExit) {
  TestContainer c(state(), Command({"/nonexistent/berth-test-binary"}));
  MonitorClient::Start(state());
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.state, MonitorState::kStopped);
  EXPECT_EQ(st.exec_errno, ENOENT);
  EXPECT_EQ(st.exit_code, 127);
  EXPECT_TRUE(st.started_at);
  ExpectMonitorFinished(c);
  auto file = ReadStatusFile(state());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->state, MonitorState::kStopped);
  EXPECT_EQ(file->exec_errno, ENOENT);
  EXPECT_EQ(ReadFileOr(state() + "/console.log"), "exec failed\n");
}

// --start-when-ready (a shell's create in berthd): the init is released before the "ok",
// so the container runs without a start request, and one is refused as for any running one.
TEST_F(MonitorTest, StartWhenReadyReleasesTheInitBeforeItsOk) {
  ContainerOptions o = Shell("echo started; sleep 100");
  o.monitor.start_when_ready = true;
  TestContainer c(state(), o);
  MonitorStatus st = MonitorClient::State(state());
  EXPECT_EQ(st.state, MonitorState::kRunning);
  EXPECT_TRUE(st.started_at);
  EXPECT_EQ(KindOf([&] { MonitorClient::Start(state()); }), ErrorKind::kConflict);
  EXPECT_TRUE(Eventually([&] { return ReadFileOr(state() + "/console.log") == "started\n"; }, 5000))
      << ReadFileOr(state() + "/console.log");
  auto file = ReadStatusFile(state());
  ASSERT_TRUE(file);
  EXPECT_EQ(file->state, MonitorState::kRunning);
  MonitorClient::Kill(state(), SIGKILL);
  EXPECT_EQ(MonitorClient::Wait(state(), 5000).exit_signal, SIGKILL);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, AFileThatCannotBeRunExits126) {
  berth::testing::TempDir bin;
  WriteFileAtomic(bin.path() + "/not-executable", "#!/bin/sh\n", 0644);
  TestContainer c(state(), Command({bin.path() + "/not-executable"}));
  MonitorClient::Start(state());
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.exec_errno, EACCES);
  EXPECT_EQ(st.exit_code, 126);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, KillNineRecordsTheSignal) {
  TestContainer c(state(), Command({"sleep", "100"}));
  MonitorClient::Start(state());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kRunning);
  EXPECT_EQ(KindOf([&] { MonitorClient::Kill(state(), 65); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf([&] { MonitorClient::Request(state(), "kill nine"); }),
            ErrorKind::kInvalidArgument);
  MonitorClient::Kill(state(), SIGKILL);
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.state, MonitorState::kStopped);
  EXPECT_EQ(st.exit_signal, SIGKILL);
  EXPECT_FALSE(st.exit_code);
  EXPECT_EQ(st.ShellExitCode(), 137);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, RequestsTheStateForbidsAreRefused) {
  TestContainer c(state(), Command({"sleep", "100"}));
  EXPECT_EQ(KindOf([&] { MonitorClient::Request(state(), "dance"); }), ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf([&] { MonitorClient::Request(state(), "state please now extra"); }),
            ErrorKind::kInvalidArgument);
  EXPECT_EQ(KindOf([&] { MonitorClient::Resume(state()); }), ErrorKind::kUnsupported);
  MonitorClient::Start(state());
  EXPECT_EQ(KindOf([&] { MonitorClient::Start(state()); }), ErrorKind::kConflict);
  EXPECT_EQ(KindOf([&] { MonitorClient::Pause(state()); }), ErrorKind::kUnsupported);
  EXPECT_EQ(KindOf([&] { MonitorClient::Kill(state(), SIGKILL, /*all=*/true); }),
            ErrorKind::kUnsupported);
  EXPECT_EQ(KindOf([&] { MonitorClient::Wait(state(), 100); }), ErrorKind::kSystem);
  MonitorClient::Kill(state(), SIGTERM);
  EXPECT_EQ(MonitorClient::Wait(state(), 5000).exit_signal, SIGTERM);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, ManyWaitersAllGetTheExit) {
  TestContainer c(state(), Command({"sleep", "0.3"}));
  MonitorClient::Start(state());
  std::vector<pid_t> waiters;
  for (int i = 0; i < 4; ++i) {
    pid_t p = ::fork();
    if (p == 0) {
      try {
        auto st = MonitorClient::Wait(state(), 5000);
        ::_exit(st.exit_code == 0 ? 0 : 1);
      } catch (...) {
        ::_exit(2);
      }
    }
    waiters.push_back(p);
  }
  for (pid_t p : waiters) {
    int st = 0;
    ASSERT_EQ(::waitpid(p, &st, 0), p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, ConsoleLogIsBounded) {
  // seq 1 750000 writes about 5.2 MB; only the newest 64 KiB may stay on disk.
  ContainerOptions o = Command({"seq", "1", "750000"});
  o.monitor.console_max = 64 * 1024;
  TestContainer c(state(), o);
  MonitorClient::Start(state());
  EXPECT_EQ(MonitorClient::Wait(state(), 30000).exit_code, 0);
  ExpectMonitorFinished(c);

  std::string older = ReadFileOr(state() + "/console.log.1");
  std::string newer = ReadFileOr(state() + "/console.log");
  EXPECT_EQ(older.size(), 32u * 1024);
  EXPECT_LE(newer.size(), 32u * 1024);
  EXPECT_GT(newer.size(), 0u);
  std::string expected;
  for (int i = 1; i <= 750000; ++i) expected += std::to_string(i) + "\n";
  ASSERT_GT(expected.size(), 5000000u);
  // The two files are exactly the output's tail: nothing lost, nothing reordered.
  std::string kept = older + newer;
  EXPECT_TRUE(expected.ends_with(kept)) << "kept " << kept.size() << " bytes";
  EXPECT_TRUE(newer.ends_with("749999\n750000\n"));
}

TEST_F(MonitorTest, SurvivesTheDeathOfItsCreator) {
  ContainerOptions o = Command({"sleep", "100"});
  o.creator_exits = true;
  TestContainer c(state(), o);
  EXPECT_TRUE(c.MonitorAlive());
  // Re-parented (to this test, a subreaper) and still answering.
  EXPECT_EQ(ParentOf(c.monitor_pid()), ::getpid());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kCreated);
  MonitorClient::Start(state());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kRunning);
  MonitorClient::Kill(state(), SIGKILL);
  EXPECT_EQ(MonitorClient::Wait(state(), 5000).exit_signal, SIGKILL);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, SigtermToTheMonitorLeavesTheContainerRunning) {
  TestContainer c(state(), Command({"sleep", "100"}));
  MonitorClient::Start(state());
  ASSERT_EQ(::kill(c.monitor_pid(), SIGTERM), 0);
  ASSERT_EQ(::kill(c.monitor_pid(), SIGINT), 0);
  ::usleep(200 * 1000);
  EXPECT_TRUE(c.MonitorAlive());
  EXPECT_EQ(::kill(c.init_pid(), 0), 0);
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kRunning);
}

TEST_F(MonitorTest, DaemonisedGrandchildDoesNotHoldTheMonitor) {
  // The grandchild keeps the console pipe open; the monitor stops draining soon after the
  // init is gone. It is also reaped by the monitor or, later, by this test (subreapers).
  std::string pid_file = state() + "/grandchild.pid";
  TestContainer c(state(), Shell("sleep 30 & echo $! > " + pid_file + "; echo bye"));
  MonitorClient::Start(state());
  auto st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.exit_code, 0);
  testing::ProcessGuard grandchild(std::stoi(ReadFileOr(pid_file, "-1")));
  ExpectMonitorFinished(c);
  EXPECT_EQ(ReadFileOr(state() + "/console.log"), "bye\n");
}

TEST_F(MonitorTest, OomKillIsRecorded) {
  std::string oom = state() + "/memory.events";
  std::ofstream(oom) << "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n";
  ContainerOptions o = Command({"sleep", "100"});
  o.monitor.oom_file = oom;
  TestContainer c(state(), o);
  MonitorClient::Start(state());
  MonitorClient::Kill(state(), SIGKILL);
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_TRUE(st.oom_killed);
  EXPECT_EQ(st.oom_kills, 1u);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, OomKillOfAnotherProcessDoesNotMarkACleanExit) {
  std::string oom = state() + "/memory.oom_control";
  std::ofstream(oom) << "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  ContainerOptions o = Shell("exit 3");
  o.monitor.oom_file = oom;
  TestContainer c(state(), o);
  MonitorClient::Start(state());
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_FALSE(st.oom_killed);
  EXPECT_EQ(st.oom_kills, 2u);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, BadArgumentsAreReportedOnTheReadyFd) {
  ContainerOptions o = Command({"sleep", "100"});
  o.monitor.freezer = "relative/freezer.state";
  try {
    TestContainer c(state(), o);
    FAIL() << "the monitor accepted a relative freezer path";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("err cgroup file paths must be absolute"),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(PathExists(state() + "/monitor.sock"));
}

TEST_F(MonitorTest, RequestSentJustBeforeHangingUpIsServed) {
  TestContainer c(state(), Command({"sleep", "100"}));
  MonitorClient::Start(state());
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::string path = state() + "/monitor.sock";
    ASSERT_LT(path.size(), sizeof addr.sun_path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::send(fd.get(), "kill 9", 6, 0), 6);
  }  // hung up without reading the reply
  EXPECT_EQ(MonitorClient::Wait(state(), 5000).exit_signal, SIGKILL);
  ExpectMonitorFinished(c);
}

TEST_F(MonitorTest, StateDirTooLongForASocketAddress) {
  std::string deep = state() + "/" + std::string(120, 'd');
  MakeDirs(deep);
  ASSERT_GT(deep.size() + sizeof "/monitor.sock", sizeof(sockaddr_un::sun_path));
  TestContainer c(deep, Shell("echo deep; exit 5"));
  EXPECT_EQ(MonitorClient::State(deep).state, MonitorState::kCreated);
  MonitorClient::Start(deep);
  EXPECT_EQ(MonitorClient::Wait(deep, 5000).exit_code, 5);
  ExpectMonitorFinished(c);
  EXPECT_EQ(ReadFileOr(deep + "/console.log"), "deep\n");
}

// Not a benchmark, but the figure the design cares about: what one monitor costs. The
// bound only catches gross regressions (a static build maps ~650 KiB of its own text).
TEST_F(MonitorTest, MemoryFootprint) {
  TestContainer c(state(), Command({"sleep", "100"}));
  MonitorClient::Start(state());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kRunning);
  std::string rollup = ReadFileOr("/proc/" + std::to_string(c.monitor_pid()) + "/smaps_rollup");
  auto field = [&](const std::string& name) {
    auto pos = rollup.find("\n" + name + ":");
    return pos == std::string::npos ? -1 : std::stol(rollup.substr(pos + name.size() + 2));
  };
  const long pss = field("Pss");
  const long dirty = field("Private_Dirty");
  std::printf("berth-monitor PSS %ld KiB, private dirty %ld KiB\n", pss, dirty);
  RecordProperty("pss_kib", static_cast<int>(pss));
  EXPECT_GT(pss, 0);
  EXPECT_LT(pss, 1024);
}

TEST_F(MonitorTest, MonitorBinaryIsFound) {
  std::string bin = FindMonitorBinary();
  EXPECT_TRUE(bin.ends_with("/berth-monitor")) << bin;
  EXPECT_EQ(::access(bin.c_str(), X_OK), 0);
}

}  // namespace
}  // namespace berth::monitor
