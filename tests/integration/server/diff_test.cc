// GET /v1/instances/{uuid}/diff through a real berthd: what the instance did to its disk,
// as `docker diff` shows it.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

using DiffTest = ServerTest;

std::string Changes(const Daemon& d, const std::string& uuid) {
  HttpResult r = d.Get("/v1/instances/" + uuid + "/diff");
  EXPECT_EQ(r.status, 200) << r.body;
  std::string out;
  auto doc = r.Json();
  for (const auto& c : doc["changes"].GetArray()) {
    out += std::string(c["kind"].GetString()) + " " + c["path"].GetString() + "\n";
  }
  return out;
}

TEST_F(DiffTest, ListsAddedChangedAndDeletedPaths) {
  std::string uuid =
      CreateInstance("",
                     "echo hi > /added.txt; rm /bin/yes; echo ready; trap 'exit 0' TERM; "
                     "while true; do sleep 0.05; done");
  std::string changes;
  for (int i = 0; i < 250; ++i) {
    changes = Changes(daemon(), uuid);
    if (changes.find("/bin/yes") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(changes.find("A /added.txt\n"), std::string::npos) << changes;
  EXPECT_NE(changes.find("D /bin/yes\n"), std::string::npos) << changes;
  EXPECT_NE(changes.find("C /bin\n"), std::string::npos) << changes;
  // Still there after a stop: the disk is kept.
  ASSERT_EQ(daemon().Post("/v1/instances/" + uuid + "/action", R"({"action": "stop"})").status,
            200);
  EXPECT_NE(Changes(daemon(), uuid).find("A /added.txt\n"), std::string::npos);
  EXPECT_EQ(daemon().Get("/v1/instances/00000000-0000-4000-8000-000000000000/diff").status, 404);
}

}  // namespace
}  // namespace berth::testing
