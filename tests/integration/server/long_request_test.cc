// Requests that may take long run off Pistache's threads: with one Pistache thread and a
// spawn held in the middle, every other request is still answered.
#include <unistd.h>

#include <gtest/gtest.h>

#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

class LongRequestTest : public ServerTest {
 protected:
  static void SetUpTestSuite() {
    extra_conf_ = "[api]\nthreads = 1\n";
    ServerTest::SetUpTestSuite();
  }
  static void TearDownTestSuite() {
    ServerTest::TearDownTestSuite();
    extra_conf_.clear();
  }
};

TEST_F(LongRequestTest, ASpawnHeldMidwayStallsNoOtherRequest) {
  daemon().Kill9();
  daemon().SetPauseAt("spawn-after-launch");
  daemon().Start();
  const std::string held = "7d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6";
  int fd = daemon().SendAndForget(
      "POST", "/v1/instances",
      R"({"uuid": ")" + held + R"(", "image": "busybox", "command": ["sleep", "1000"]})");
  ASSERT_TRUE(daemon().WaitPaused("spawn-after-launch")) << daemon().log();
  // Had the spawn been served on the one Pistache thread, none of these would be answered
  // (the client gives up after its timeout).
  for (int i = 0; i < 3; ++i) EXPECT_EQ(daemon().Get("/v1/host").status, 200);
  EXPECT_EQ(daemon().Get("/v1/instances").status, 200);
  // A long route too, on another pool thread.
  EXPECT_EQ(daemon().Delete("/v1/images/sha256:" + std::string(64, '0')).status, 404);
  daemon().Kill9();
  ::close(fd);
  daemon().SetPauseAt("");
  daemon().Start();
  EXPECT_EQ(daemon().Get("/v1/instances/" + held).status, 404);
}

}  // namespace
}  // namespace berth::testing
