// GET /v1/instances/{uuid}/console?follow=true through a real berthd: polls with the
// cursor get the output once and in order while the instance runs, a parked poll is
// answered when the instance stops, and a stopped instance's saved log comes at once.
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

using ConsoleFollowTest = ServerTest;

struct Poll {
  long status = 0;
  std::string output, cursor;
  bool running = false;
  bool lost = false;
};

Poll Follow(const Daemon& d, const std::string& uuid, const std::string& query) {
  HttpResult r = d.Get("/v1/instances/" + uuid + "/console?follow=true" + query);
  Poll p;
  p.status = r.status;
  if (r.status != 200) return p;
  auto doc = r.Json();
  p.output = doc["output"].GetString();
  p.cursor = doc["cursor"].GetString();
  p.running = doc["running"].GetBool();
  p.lost = doc["lost"].GetBool();
  return p;
}

std::string PowerStateName(const Daemon& d, const std::string& uuid) {
  return Str(d.Get("/v1/instances/" + uuid).Json(), "power_state_name");
}

TEST_F(ConsoleFollowTest, PollsGetTheOutputOnceInOrderUntilTheInstanceStops) {
  // Prints for ~1.5 s, then exits by itself (SHUTDOWN).
  std::string uuid = CreateInstance(
      "",
      "echo first; i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo tick$i; sleep 0.05; done; "
      "echo last");
  Poll p = Follow(daemon(), uuid, "&lines=1000");
  ASSERT_EQ(p.status, 200);
  std::string all = p.output;
  std::string state_when_tick3_arrived;
  int polls = 1;
  while (p.running && polls < 500) {
    p = Follow(daemon(), uuid, "&wait=5&since=" + p.cursor);
    ASSERT_EQ(p.status, 200);
    EXPECT_FALSE(p.lost);
    all += p.output;
    ++polls;
    if (state_when_tick3_arrived.empty() && all.find("tick3\n") != std::string::npos) {
      state_when_tick3_arrived = PowerStateName(daemon(), uuid);
    }
  }
  EXPECT_FALSE(p.running);
  // Output arrived while the instance ran, in several answers.
  EXPECT_EQ(state_when_tick3_arrived, "RUNNING");
  EXPECT_GT(polls, 2);
  // Everything, once, in order.
  std::string want = "first\n";
  for (int i = 1; i <= 30; ++i) want += "tick" + std::to_string(i) + "\n";
  want += "last\n";
  EXPECT_EQ(all, want);
  EXPECT_EQ(PowerStateName(daemon(), uuid), "SHUTDOWN");
}

TEST_F(ConsoleFollowTest, AWaitingPollIsAnsweredWhenTheInstanceStops) {
  std::string uuid =
      CreateInstance("", "echo hello; trap 'exit 0' TERM; while true; do sleep 0.05; done");
  Poll p = Follow(daemon(), uuid, "");
  for (int i = 0; i < 200 && p.output.find("hello") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p = Follow(daemon(), uuid, "");
  }
  ASSERT_EQ(p.output, "hello\n");
  auto started = std::chrono::steady_clock::now();
  auto waiting = std::async(std::launch::async,
                            [&] { return Follow(daemon(), uuid, "&wait=60&since=" + p.cursor); });
  // Parked: nothing new for a while.
  EXPECT_EQ(waiting.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout);
  ASSERT_EQ(daemon().Post("/v1/instances/" + uuid + "/action", R"({"action": "stop"})").status,
            200);
  Poll last = waiting.get();
  EXPECT_EQ(last.status, 200);
  EXPECT_FALSE(last.running);
  EXPECT_EQ(last.output, "");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  // Stopped: the saved log, at once, and nothing more to follow.
  Poll saved = Follow(daemon(), uuid, "");
  EXPECT_EQ(saved.output, "hello\n");
  EXPECT_FALSE(saved.running);
}

TEST_F(ConsoleFollowTest, BadQueriesAre400AndUnknownInstance404) {
  std::string uuid = CreateInstance();
  EXPECT_EQ(daemon().Get("/v1/instances/" + uuid + "/console?follow=maybe").status, 400);
  EXPECT_EQ(daemon().Get("/v1/instances/" + uuid + "/console?follow=true&since=../etc").status,
            400);
  EXPECT_EQ(
      daemon().Get("/v1/instances/" + uuid + "/console?follow=true&since=1-2-3-4&wait=999").status,
      400);
  EXPECT_EQ(
      daemon().Get("/v1/instances/00000000-0000-4000-8000-000000000000/console?follow=true").status,
      404);
}

}  // namespace
}  // namespace berth::testing
