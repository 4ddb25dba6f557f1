// berth-runtime's verbs end to end, as crun and runc callers use them.
#include <gmock/gmock.h>
#include <signal.h>

#include <set>
#include <thread>

#include "runtime/common/file_util.h"
#include "tests/integration/cli/cli_fixture.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(CliTest, RunExitsWithTheContainersExitCode) {
  std::string bundle = Bundle("exit42", {"sh", "-c", "exit 42"});
  CliResult r = Cli({"run", "--bundle", bundle, "exit42"});
  EXPECT_EQ(r.exit_code, 42) << r.err;
  // run deletes what it created.
  ExpectNothingLeft("exit42");
}

TEST_F(CliTest, RunReportsAKillingSignalAs128PlusIt) {
  // The init cannot SIGKILL itself (PID 1 ignores it from inside), so kill it from here
  // while `run` waits in the foreground.
  std::string bundle = Bundle("killed", {"sleep", "60"});
  CliResult run;
  std::thread foreground([&] { run = Cli({"run", "--bundle", bundle, "killed"}); });
  EXPECT_EQ(WaitForStatus("killed", "running"), "running");
  CliResult kill = Cli({"kill", "killed", "9"});
  EXPECT_EQ(kill.exit_code, 0) << kill.err;
  foreground.join();
  EXPECT_EQ(run.exit_code, 128 + SIGKILL) << run.err;
  ExpectNothingLeft("killed");
}

TEST_F(CliTest, RunPrintsTheContainersOutputOnOurStdoutAndStderr) {
  std::string bundle =
      Bundle("hello", {"sh", "-c", "echo hello from $(hostname); echo to-stderr >&2"});
  CliResult r = Cli({"run", "--bundle", bundle, "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello from berth-test\n");
  EXPECT_THAT(r.err, HasSubstr("to-stderr"));
  ExpectNothingLeft("hello");
}

TEST_F(CliTest, CreateStartStateKillDelete) {
  std::string bundle = Bundle("life", {"sleep", "60"});
  CliResult r = Cli({"create", "--bundle", bundle, "life"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  auto created = State("life");
  ASSERT_TRUE(created.HasMember("status") && created["status"].IsString());
  EXPECT_STREQ(created["status"].GetString(), "created");
  EXPECT_STREQ(created["id"].GetString(), "life");
  EXPECT_STREQ(created["ociVersion"].GetString(), "1.0.0");
  EXPECT_EQ(std::string(created["bundle"].GetString()), bundle);
  ASSERT_TRUE(created.HasMember("pid") && created["pid"].IsInt());
  pid_t pid = created["pid"].GetInt();
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(ProcessAlive(pid));
  EXPECT_EQ(Monitors("life").size(), 1u);
  EXPECT_FALSE(CgroupDirs("life").empty());

  r = Cli({"start", "life"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto running = State("life");
  EXPECT_STREQ(running["status"].GetString(), "running");
  EXPECT_EQ(running["pid"].GetInt(), pid);
  // The init is now the container's command.
  EXPECT_THAT(ReadFile("/proc/" + std::to_string(pid) + "/cmdline"), HasSubstr("sleep"));

  r = Cli({"start", "life"});
  EXPECT_NE(r.exit_code, 0) << "started twice";

  r = Cli({"kill", "life", "KILL"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(WaitForStatus("life", "stopped"), "stopped");
  auto stopped = State("life");
  ASSERT_TRUE(stopped.HasMember("exitSignal")) << r.out;
  EXPECT_EQ(stopped["exitSignal"].GetInt(), SIGKILL);
  EXPECT_FALSE(stopped.HasMember("exitCode"));
  EXPECT_FALSE(ProcessAlive(pid));

  r = Cli({"delete", "life"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ExpectNothingLeft("life");
  r = Cli({"state", "life"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("\"life\" does not exist"));
}

TEST_F(CliTest, KillWithASignalNameTheInitHandles) {
  std::string bundle =
      Bundle("term", {"sh", "-c", "trap 'exit 5' TERM; while :; do sleep 0.05; done"});
  ASSERT_EQ(Cli({"run", "-d", "--bundle", bundle, "term"}).exit_code, 0);
  ASSERT_TRUE(WaitForSignalHandler(State("term")["pid"].GetInt(), SIGTERM));
  CliResult r = Cli({"kill", "term", "SIGTERM"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(WaitForStatus("term", "stopped"), "stopped");
  auto st = State("term");
  ASSERT_TRUE(st.HasMember("exitCode"));
  EXPECT_EQ(st["exitCode"].GetInt(), 5);
  EXPECT_EQ(Cli({"delete", "term"}).exit_code, 0);
  ExpectNothingLeft("term");
}

TEST_F(CliTest, ListShowsEveryContainerWithItsStatus) {
  ASSERT_EQ(Cli({"create", "--bundle", Bundle("one", {"sleep", "60"}), "one"}).exit_code, 0);
  ASSERT_EQ(Cli({"run", "-d", "--bundle", Bundle("two", {"sleep", "60"}), "two"}).exit_code, 0);

  CliResult table = Cli({"list"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("STATUS"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("one +[0-9]+ +created"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("two +[0-9]+ +running"));

  CliResult json = Cli({"list", "-f", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  rapidjson::Document doc;
  doc.Parse(json.out.c_str());
  ASSERT_FALSE(doc.HasParseError()) << json.out;
  ASSERT_TRUE(doc.IsArray());
  std::set<std::string> seen;
  for (const auto& c : doc.GetArray()) {
    seen.insert(std::string(c["id"].GetString()) + "=" + c["status"].GetString());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"one=created", "two=running"}));
}

TEST_F(CliTest, PsListsTheContainersProcessesAsHostPids) {
  std::string bundle = Bundle("ps", {"sh", "-c", "sleep 60 & sleep 60 & wait"});
  ASSERT_EQ(Cli({"run", "-d", "--bundle", bundle, "ps"}).exit_code, 0);
  pid_t init = State("ps")["pid"].GetInt();
  // The shell forks its two sleeps after exec: wait for them.
  rapidjson::Document pids;
  for (int i = 0; i < 100; ++i) {
    CliResult r = Cli({"ps", "-f", "json", "ps"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    pids.Parse(r.out.c_str());
    ASSERT_FALSE(pids.HasParseError()) << r.out;
    ASSERT_TRUE(pids.IsArray()) << r.out;
    if (pids.Size() >= 3) break;
    ::usleep(20000);
  }
  ASSERT_EQ(pids.Size(), 3u);
  std::set<pid_t> host_pids;
  for (const auto& p : pids.GetArray()) host_pids.insert(p.GetInt());
  EXPECT_TRUE(host_pids.count(init)) << "init " << init << " not listed";
  for (pid_t p : host_pids) EXPECT_TRUE(ProcessAlive(p)) << p;

  CliResult table = Cli({"ps", "ps"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("PID"));
  EXPECT_THAT(table.out, HasSubstr("sleep 60"));
  EXPECT_THAT(table.out, HasSubstr(std::to_string(init)));
}

TEST_F(CliTest, ExecReturnsTheCommandsExitCodeAndOutput) {
  ASSERT_EQ(Cli({"run", "-d", "--bundle", Bundle("ex", {"sleep", "60"}), "ex"}).exit_code, 0);
  CliResult r = Cli({"exec", "ex", "sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << r.err;
  // Inside the container: its hostname, and its init is PID 1.
  r = Cli({"exec", "ex", "sh", "-c", "echo $(hostname) $(cat /proc/1/cmdline | tr '\\0' ' ')"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "berth-test sleep 60\n");
  r = Cli({"exec", "-e", "GREETING=hi", "--cwd", "/tmp", "ex", "sh", "-c", "echo $GREETING $PWD"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hi /tmp\n");
  r = Cli({"exec", "ex", "no-such-command"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("no-such-command"));
  // The container is unaffected.
  EXPECT_STREQ(State("ex")["status"].GetString(), "running");
}

}  // namespace
}  // namespace berth::testing
