// pause/resume and "kill all" against real cgroups: a v1 freezer group and a v2 group in
// the host's (otherwise empty) unified hierarchy.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/monitor/client.h"
#include "tests/integration/monitor/harness.h"
#include "tests/support/test_env.h"

namespace berth::monitor {
namespace {

using testing::ContainerOptions;
using testing::Eventually;
using testing::FileSize;
using testing::KindOf;
using testing::ReadFileOr;
using testing::TestContainer;

// A cgroup made for one test; at the end it is thawed, emptied (SIGKILL) and removed.
class TestCgroup {
 public:
  TestCgroup(const std::string& root, bool v2) : v2_(v2) {
    static int counter = 0;
    path_ = root + "/berth-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    if (::mkdir(path_.c_str(), 0755) != 0) ThrowErrno("mkdir", path_);
  }
  ~TestCgroup() {
    if (v2_) {
      std::ofstream(path_ + "/cgroup.freeze") << "0";
    } else {
      std::ofstream(path_ + "/freezer.state") << "THAWED";
    }
    Eventually(
        [&] {
          std::ifstream procs(path_ + "/cgroup.procs");
          bool empty = true;
          for (pid_t pid; procs >> pid;) {
            ::kill(pid, SIGKILL);
            empty = false;
          }
          return empty;
        },
        5000);
    Eventually([&] { return ::rmdir(path_.c_str()) == 0 || errno == ENOENT; }, 5000);
    testing::ReapStrays(100);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  void Add(pid_t pid) const { WriteToFile(File("cgroup.procs"), std::to_string(pid)); }
  bool Empty() const { return ReadFileOr(File("cgroup.procs"), "x").empty(); }

 private:
  std::string path_;
  bool v2_;
};

class FreezerTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    v2_ = GetParam();
    root_ = v2_ ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup/freezer";
    if (!PathExists(root_ + "/cgroup.procs")) GTEST_SKIP() << "no " << root_;
    cgroup_ = std::make_unique<TestCgroup>(root_, v2_);
    if (v2_ && !PathExists(cgroup_->File("cgroup.freeze"))) GTEST_SKIP() << "no cgroup.freeze";
  }
  void TearDown() override {
    container_.reset();
    cgroup_.reset();
  }

  // A ticking shell in the test cgroup, started.
  void StartTicker() {
    ContainerOptions o;
    o.argv = {"/bin/sh", "-c", "while :; do echo tick; sleep 0.01; done"};
    o.monitor.freezer = cgroup_->File(v2_ ? "cgroup.freeze" : "freezer.state");
    o.monitor.cgroup_procs = cgroup_->File("cgroup.procs");
    container_ = std::make_unique<TestContainer>(dir_.path(), o);
    cgroup_->Add(container_->init_pid());  // still blocked before its exec
    MonitorClient::Start(state());
    ASSERT_TRUE(Eventually([&] { return FileSize(Log()) > 0; }, 5000));
  }
  std::string state() const { return dir_.path(); }
  std::string Log() const { return dir_.path() + "/console.log"; }
  bool Frozen() const {
    if (!v2_) return ReadFileOr(cgroup_->File("freezer.state")) == "FROZEN\n";
    return ReadFileOr(cgroup_->File("cgroup.events")).find("frozen 1") != std::string::npos;
  }

  bool v2_ = false;
  std::string root_;
  berth::testing::TempDir dir_;
  std::unique_ptr<TestCgroup> cgroup_;
  std::unique_ptr<TestContainer> container_;
};

TEST_P(FreezerTest, PauseStopsProgressAndResumeRestartsIt) {
  StartTicker();
  MonitorClient::Pause(state());
  EXPECT_TRUE(Frozen());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kPaused);
  EXPECT_EQ(ReadStatusFile(state())->state, MonitorState::kPaused);
  EXPECT_EQ(KindOf([&] { MonitorClient::Pause(state()); }), ErrorKind::kConflict);
  const long long frozen_size = FileSize(Log());
  ::usleep(300 * 1000);
  EXPECT_EQ(FileSize(Log()), frozen_size) << "the container made progress while paused";

  MonitorClient::Resume(state());
  EXPECT_FALSE(Frozen());
  EXPECT_EQ(MonitorClient::State(state()).state, MonitorState::kRunning);
  EXPECT_TRUE(Eventually([&] { return FileSize(Log()) > frozen_size; }, 5000));
  EXPECT_EQ(KindOf([&] { MonitorClient::Resume(state()); }), ErrorKind::kConflict);

  MonitorClient::Kill(state(), SIGKILL, /*all=*/true);
  EXPECT_EQ(MonitorClient::Wait(state(), 5000).exit_signal, SIGKILL);
  EXPECT_TRUE(container_->WaitMonitorExit(5000));
  EXPECT_TRUE(Eventually([&] { return cgroup_->Empty(); }, 5000));
}

TEST_P(FreezerTest, KillAllWhilePausedThawsSoTheKillLands) {
  StartTicker();
  MonitorClient::Pause(state());
  MonitorClient::Kill(state(), SIGKILL, /*all=*/true);
  MonitorStatus st = MonitorClient::Wait(state(), 5000);
  EXPECT_EQ(st.state, MonitorState::kStopped);
  EXPECT_EQ(st.exit_signal, SIGKILL);
  EXPECT_TRUE(container_->WaitMonitorExit(5000));
  EXPECT_TRUE(Eventually([&] { return cgroup_->Empty(); }, 5000));
}

INSTANTIATE_TEST_SUITE_P(CgroupVersions, FreezerTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "v2" : "v1"; });

}  // namespace
}  // namespace berth::monitor
