// ContainerWatcher over a state root laid out as the runtime lays it out: it reports a
// container whose monitor rewrote status.json, one that appeared or went away, and stays
// quiet for the console log the monitor writes and rotates next to it.
#include "driver/server/container_watcher.h"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::server {
namespace {

using berth::testing::TempDir;

// What the watcher reported, in order ("*" for a lost-events call).
class Reports {
 public:
  void Add(const std::string& what) {
    std::lock_guard lock(mu_);
    seen_.push_back(what);
    cv_.notify_all();
  }
  // Waits until `what` has been reported `times` times in all; false after 5 s.
  bool WaitFor(const std::string& what, size_t times = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return CountLocked(what) >= times; });
  }
  size_t Count(const std::string& what) {
    std::lock_guard lock(mu_);
    return CountLocked(what);
  }

 private:
  size_t CountLocked(const std::string& what) const {
    size_t n = 0;
    for (const auto& s : seen_) n += s == what;
    return n;
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> seen_;
};

// As berth-monitor writes it: a temp file renamed over status.json.
void WriteStatus(const std::string& dir, const std::string& status) {
  WriteFileAtomic(dir + "/.status.json.tmp", "{\"status\":\"" + status + "\"}\n");
  ASSERT_EQ(::rename((dir + "/.status.json.tmp").c_str(), (dir + "/status.json").c_str()), 0);
}

class ContainerWatcherTest : public ::testing::Test {
 protected:
  std::unique_ptr<ContainerWatcher> Watch() {
    return std::make_unique<ContainerWatcher>(
        root_.path(), [this](const std::string& id) { reports_.Add(id); },
        [this] { reports_.Add("*"); });
  }
  std::string Dir(const std::string& id) { return root_.Sub(id); }

  TempDir root_;
  Reports reports_;
};

TEST_F(ContainerWatcherTest, ReportsStatusChangesOfContainersOldAndNew) {
  MakeDirs(Dir("old"));
  WriteStatus(Dir("old"), "running");
  auto watcher = Watch();
  // At start every container may have changed unseen.
  ASSERT_TRUE(reports_.WaitFor("*"));

  WriteStatus(Dir("old"), "stopped");
  EXPECT_TRUE(reports_.WaitFor("old"));

  MakeDirs(Dir("new"));
  EXPECT_TRUE(reports_.WaitFor("new"));
  WriteStatus(Dir("new"), "created");
  EXPECT_TRUE(reports_.WaitFor("new", 2));
  WriteStatus(Dir("new"), "running");
  EXPECT_TRUE(reports_.WaitFor("new", 3));
}

TEST_F(ContainerWatcherTest, ReportsAContainerWhoseDirectoryGoesAway) {
  MakeDirs(Dir("c"));
  WriteStatus(Dir("c"), "running");
  auto watcher = Watch();
  ASSERT_TRUE(reports_.WaitFor("*"));
  RemoveTree(Dir("c"));
  EXPECT_TRUE(reports_.WaitFor("c"));
  // Made again under the same id (an instance started after a stop): watched again.
  MakeDirs(Dir("c"));
  EXPECT_TRUE(reports_.WaitFor("c", 2));
  WriteStatus(Dir("c"), "running");
  EXPECT_TRUE(reports_.WaitFor("c", 3));
}

TEST_F(ContainerWatcherTest, QuietForTheConsoleLogAndOtherFiles) {
  MakeDirs(Dir("c"));
  auto watcher = Watch();
  ASSERT_TRUE(reports_.WaitFor("*"));
  WriteFileAtomic(Dir("c") + "/console.log", "hello\n");
  ASSERT_EQ(::rename((Dir("c") + "/console.log").c_str(), (Dir("c") + "/console.log.1").c_str()),
            0);
  WriteFileAtomic(Dir("c") + "/console.log", "more\n");
  WriteFileAtomic(root_.Sub("a-file"), "not a container\n");
  // Events come in order: once the marker is reported, anything about "c" would have been.
  MakeDirs(Dir("marker"));
  ASSERT_TRUE(reports_.WaitFor("marker"));
  EXPECT_EQ(reports_.Count("c"), 0u);
  EXPECT_EQ(reports_.Count("a-file"), 0u);
}

TEST_F(ContainerWatcherTest, AMissingRootIsAnError) {
  EXPECT_THROW(ContainerWatcher(
                   root_.Sub("nothing-here"), [](const std::string&) {}, [] {}),
               Error);
}

}  // namespace
}  // namespace berth::server
