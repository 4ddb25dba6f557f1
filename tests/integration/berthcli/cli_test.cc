// The berth CLI against a real berthd.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

class CliTest : public ServerTest {
 protected:
  // Runs berth with the daemon's url and token; returns stdout, sets *status.
  std::string Berth(const std::string& args, int* status = nullptr) {
    return BerthWithOptions(
        "--url " + daemon().url() + " --token-file " + daemon().token_path() + " " + args, status);
  }
  // Runs berth with exactly these arguments.
  std::string BerthWithOptions(const std::string& args, int* status = nullptr) {
    std::string cmd = BuildDir() + "/driver/cli/berth " + args + " 2>&1";
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

// -1 when missing.
long long FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

TEST_F(CliTest, LifecycleThroughTheCli) {
  int st = -1;
  EXPECT_NE(Berth("host", &st).find("\"storage_driver\""), std::string::npos);
  EXPECT_EQ(st, 0);
  EXPECT_NE(Berth("images").find("busybox"), std::string::npos);

  std::string uuid =
      FirstLine(Berth("run --name cli-1 --memory-mb 64 -e GREETING=hi busybox sh -c "
                      "'echo $GREETING from cli; echo data > /made-here; trap \"exit 0\" TERM; "
                      "while true; do sleep 0.05; done'",
                      &st));
  ASSERT_EQ(st, 0) << uuid;
  ASSERT_EQ(uuid.size(), 36u) << uuid;
  std::string list = Berth("ps");
  EXPECT_NE(list.find(uuid), std::string::npos) << list;
  EXPECT_NE(list.find("RUNNING"), std::string::npos) << list;
  EXPECT_EQ(Berth("ps -q"), uuid + "\n");
  EXPECT_EQ(Berth("exec " + uuid + " hostname", &st), "cli-1\n");
  EXPECT_EQ(st, 0);
  Berth("exec " + uuid + " sh -c 'exit 5'", &st);
  EXPECT_EQ(st, 5);
  EXPECT_EQ(Berth("logs " + uuid), "hi from cli\n");
  EXPECT_NE(Berth("inspect " + uuid).find("\"cli-1\""), std::string::npos);
  EXPECT_NE(Berth("diff " + uuid).find("A /made-here\n"), std::string::npos);
  EXPECT_EQ(Berth("pause " + uuid), "PAUSED\n");
  EXPECT_EQ(Berth("unpause " + uuid), "RUNNING\n");
  EXPECT_EQ(Berth("stop " + uuid), "SHUTDOWN\n");
  EXPECT_EQ(Berth("ps -q"), "");  // only live instances without -a
  EXPECT_NE(Berth("ps -a").find(uuid), std::string::npos);
  std::string err = Berth("pause " + uuid, &st);
  EXPECT_EQ(st, 1);
  EXPECT_NE(err.find("SHUTDOWN"), std::string::npos) << err;
  EXPECT_EQ(Berth("start " + uuid), "RUNNING\n");
  EXPECT_EQ(Berth("restart --hard " + uuid), "RUNNING\n");
  EXPECT_NE(Berth("stats " + uuid).find("usage_bytes"), std::string::npos);

  // snapshot -o saves the committed image; import brings it back under another name.
  std::string archive = daemon().dir() + "/snap.tar";
  Berth("snapshot --name cli-snap -o " + archive + " " + uuid, &st);
  EXPECT_EQ(st, 0);
  EXPECT_GT(FileSize(archive), 0);
  EXPECT_NE(Berth("images").find("cli-snap"), std::string::npos);
  std::string reimported = FirstLine(Berth("import --name cli-again " + archive, &st));
  EXPECT_EQ(st, 0) << reimported;
  std::string exported = daemon().dir() + "/again.tar";
  Berth("export -o " + exported + " cli-again", &st);
  EXPECT_EQ(st, 0);
  EXPECT_GT(FileSize(exported), 0);
  // An export that fails leaves no file.
  Berth("export -o " + daemon().dir() + "/none.tar no-such-image", &st);
  EXPECT_EQ(st, 2);
  EXPECT_LT(FileSize(daemon().dir() + "/none.tar"), 0);
  EXPECT_LT(FileSize(daemon().dir() + "/none.tar.part"), 0);

  Berth("rm " + uuid, &st);
  EXPECT_EQ(st, 0);
  Berth("inspect " + uuid, &st);
  EXPECT_EQ(st, 2);
  Berth("rmi cli-again cli-snap", &st);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(Berth("images").find("cli-snap"), std::string::npos);
}

TEST_F(CliTest, LogsFollowPrintsUntilTheInstanceStops) {
  int st = -1;
  std::string uuid = FirstLine(Berth(
      "run busybox sh -c 'i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo n$i; sleep 0.05; done'",
      &st));
  ASSERT_EQ(st, 0) << uuid;
  std::string want;
  for (int i = 1; i <= 20; ++i) want += "n" + std::to_string(i) + "\n";
  // Returns by itself once the instance has exited, with every line once.
  EXPECT_EQ(Berth("logs -f -n 1000 " + uuid, &st), want);
  EXPECT_EQ(st, 0);
  Berth("rm " + uuid, &st);
}

TEST_F(CliTest, EndpointAndTokenFileComeFromBerthdsConfig) {
  std::string conf = daemon().dir() + "/cli.conf";
  WriteFileAtomic(conf, "[api]\nlisten = 127.0.0.1\nport = " + std::to_string(daemon().port()) +
                            "\ntoken_file = " + daemon().token_path() + "\n");
  int st = -1;
  std::string out = BerthWithOptions("--config " + conf + " host", &st);
  EXPECT_EQ(st, 0) << out;
  EXPECT_NE(out.find("\"storage_driver\""), std::string::npos) << out;
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
