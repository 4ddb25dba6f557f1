// Containers created through the spawner: the same containers and the same errors as
// CreateContainer in the caller, monitors reaped by the spawner, and a spawner that dies
// reported as such without leaving a half-made container.
#include "runtime/linux/spawner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
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

  std::unique_ptr<container::Spawner> spawner_;
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

}  // namespace
}  // namespace berth::testing
