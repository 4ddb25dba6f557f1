// GET /v1/instances is served from cached views and a cached body: it must still show a
// state change as soon as it happened, whoever made it. The daemon here never polls
// (state_refresh_ms = 0), so only the operations and the monitors' status files can move
// the list, and nothing in these tests asks for a live view (GET /v1/instances/{uuid}
// would refresh the cache itself).
#include <signal.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/linux/state.h"
#include "runtime/monitor/client.h"
#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

class ListCacheTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    extra_conf_ = "state_refresh_ms = 0\n";
    ServerTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    ServerTest::TearDownTestSuite();
    extra_conf_.clear();
  }

  // uuid -> the instance as GET /v1/instances shows it.
  std::map<std::string, rapidjson::Document> List() const {
    std::map<std::string, rapidjson::Document> out;
    HttpResult r = daemon().Get("/v1/instances");
    EXPECT_EQ(r.status, 200) << r.body;
    rapidjson::Document d = r.Json();
    if (!d.IsObject() || !d.HasMember("instances")) return out;
    for (auto& v : d["instances"].GetArray()) {
      rapidjson::Document one;
      one.CopyFrom(v, one.GetAllocator());
      out.emplace(Str(v, "uuid"), std::move(one));
    }
    return out;
  }

  std::string ListedState(const std::string& uuid) const {
    auto all = List();
    auto it = all.find(uuid);
    if (it == all.end()) return "(not listed)";
    return Str(it->second, "power_state_name");
  }

  // The list polled until `uuid` shows `state`: false after 10 s. Without a watch on the
  // monitors' status files it would never change here (no polling refresher).
  bool ListReaches(const std::string& uuid, const std::string& state) const {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (ListedState(uuid) == state) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::string MonitorDir(const std::string& uuid) const {
    return container::StateDir(daemon().run_dir() + "/containers", uuid);
  }
};

TEST_F(ListCacheTest, ListShowsAnInstanceThatExitsOrIsKilled) {
  std::string exits = CreateInstance();
  std::string killed = CreateInstance();
  ASSERT_FALSE(exits.empty());
  ASSERT_FALSE(killed.empty());
  auto before = List();
  ASSERT_EQ(before.count(exits), 1u);
  ASSERT_EQ(before.count(killed), 1u);
  EXPECT_EQ(Str(before[exits], "power_state_name"), "RUNNING");
  EXPECT_EQ(Str(before[killed], "power_state_name"), "RUNNING");
  auto exits_pid = static_cast<pid_t>(Int(before[exits], "pid"));
  auto killed_pid = static_cast<pid_t>(Int(before[killed], "pid"));
  ASSERT_GT(exits_pid, 0);
  ASSERT_GT(killed_pid, 0);

  // The shell's trap exits 0: a VM that powered itself off.
  ASSERT_TRUE(WaitForSignalHandler(exits_pid, SIGTERM));
  ASSERT_EQ(::kill(exits_pid, SIGTERM), 0);
  EXPECT_TRUE(ListReaches(exits, "SHUTDOWN")) << "listed " << ListedState(exits);
  ASSERT_EQ(::kill(killed_pid, SIGKILL), 0);
  EXPECT_TRUE(ListReaches(killed, "CRASHED")) << "listed " << ListedState(killed);

  auto after = List();
  EXPECT_EQ(Int(after[exits], "exit_code"), 0);
  EXPECT_EQ(Int(after[exits], "pid"), 0);
  EXPECT_EQ(Int(after[killed], "exit_signal"), SIGKILL);
  EXPECT_EQ(Int(after[killed], "pid"), 0);
}

TEST_F(ListCacheTest, ListShowsEachActionAsSoonAsItReturns) {
  std::string uuid = CreateInstance();
  ASSERT_FALSE(uuid.empty());
  EXPECT_EQ(ListedState(uuid), "RUNNING");
  const std::pair<const char*, const char*> steps[] = {
      {"pause", "PAUSED"},   {"unpause", "RUNNING"}, {"suspend", "SUSPENDED"},
      {"resume", "RUNNING"}, {"stop", "SHUTDOWN"},   {"start", "RUNNING"},
  };
  for (const auto& [action, state] : steps) {
    HttpResult r = Action(uuid, std::string("{\"action\": \"") + action + "\"}");
    ASSERT_EQ(r.status, 200) << action << ": " << r.body;
    EXPECT_EQ(ListedState(uuid), state) << "right after " << action;
  }
  // A pid the list shows is the live one after the restart.
  auto listed = List();
  pid_t pid = static_cast<pid_t>(Int(listed[uuid], "pid"));
  EXPECT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), 0);
}

// Another client of the monitor (berth-runtime by hand, an operator) changes the state:
// the monitor records it, berthd sees it.
TEST_F(ListCacheTest, ListShowsAPauseMadeBehindBerthdsBack) {
  std::string uuid = CreateInstance();
  ASSERT_FALSE(uuid.empty());
  EXPECT_EQ(ListedState(uuid), "RUNNING");
  monitor::MonitorClient::Pause(MonitorDir(uuid));
  EXPECT_TRUE(ListReaches(uuid, "PAUSED")) << "listed " << ListedState(uuid);
  monitor::MonitorClient::Resume(MonitorDir(uuid));
  EXPECT_TRUE(ListReaches(uuid, "RUNNING")) << "listed " << ListedState(uuid);
}

}  // namespace
}  // namespace berth::testing
