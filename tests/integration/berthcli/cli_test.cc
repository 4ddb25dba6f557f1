// The berth CLI against a real berthd.
#include <sys/wait.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

class CliTest : public ServerTest {
 protected:
  // Runs berth with the daemon's url and token; returns stdout, sets *status.
  std::string Berth(const std::string& args, int* status = nullptr) {
    std::string cmd = BuildDir() + "/driver/cli/berth --url " + daemon().url() + " --token-file " +
                      daemon().token_path() + " " + args + " 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int st = ::pclose(p);
    if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
  }
};

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST_F(CliTest, LifecycleThroughTheCli) {
  int st = -1;
  EXPECT_NE(Berth("host", &st).find("\"storage_driver\""), std::string::npos);
  EXPECT_EQ(st, 0);
  EXPECT_NE(Berth("image list").find("busybox"), std::string::npos);

  std::string uuid =
      FirstLine(Berth("instance create --image busybox --name cli-1 --memory-mb 64 -- sh -c "
                      "'echo hi from cli; trap \"exit 0\" TERM; while true; do sleep 0.05; done'",
                      &st));
  ASSERT_EQ(st, 0) << uuid;
  ASSERT_EQ(uuid.size(), 36u) << uuid;
  std::string list = Berth("instance list");
  EXPECT_NE(list.find(uuid), std::string::npos) << list;
  EXPECT_NE(list.find("RUNNING"), std::string::npos) << list;
  EXPECT_EQ(Berth("instance exec " + uuid + " -- hostname", &st), "cli-1\n");
  EXPECT_EQ(st, 0);
  Berth("instance exec " + uuid + " -- sh -c 'exit 5'", &st);
  EXPECT_EQ(st, 5);
  EXPECT_EQ(Berth("instance console " + uuid), "hi from cli\n");
  EXPECT_EQ(Berth("instance pause " + uuid), "PAUSED\n");
  EXPECT_EQ(Berth("instance unpause " + uuid), "RUNNING\n");
  EXPECT_EQ(Berth("instance stop " + uuid), "SHUTDOWN\n");
  std::string err = Berth("instance pause " + uuid, &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(err.find("SHUTDOWN"), std::string::npos) << err;
  EXPECT_EQ(Berth("instance start " + uuid), "RUNNING\n");
  EXPECT_EQ(Berth("instance reboot --hard " + uuid), "RUNNING\n");
  EXPECT_NE(Berth("instance stats " + uuid).find("usage_bytes"), std::string::npos);
  Berth("instance delete " + uuid, &st);
  EXPECT_EQ(st, 0);
  Berth("instance show " + uuid, &st);
  EXPECT_EQ(st, 2);
}

TEST_F(CliTest, WrongTokenFails) {
  std::string cmd = BuildDir() + "/driver/cli/berth --url " + daemon().url() +
                    " --token wrong-token-value host 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, p);
  int st = ::pclose(p);
  EXPECT_NE(std::string(buf, n).find("invalid token"), std::string::npos);
  EXPECT_EQ(WEXITSTATUS(st), 1);
}

}  // namespace
}  // namespace berth::testing
