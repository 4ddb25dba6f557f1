#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>

#include "runtime/common/error.h"
#include "runtime/monitor/client.h"
#include "tests/support/test_env.h"

namespace berth::monitor {
namespace {

TEST(ParseStatus, Created) {
  MonitorStatus st =
      ParseStatus(R"({"status":"created","pid":42,"oom_killed":false,"oom_kills":0})");
  EXPECT_EQ(st.state, MonitorState::kCreated);
  EXPECT_EQ(st.pid, 42);
  EXPECT_FALSE(st.started_at);
  EXPECT_FALSE(st.exit_code);
  EXPECT_FALSE(st.ShellExitCode());
}

TEST(ParseStatus, StoppedWithEverything) {
  MonitorStatus st =
      ParseStatus(R"({"status":"stopped","pid":7,"started_at":"2026-11-28T02:51:38.000000001Z",)"
                  R"("finished_at":"2026-11-28T02:52:00.5Z","exit_signal":9,"oom_killed":true,)"
                  R"("oom_kills":3,"future_field":[1,2]})");
  EXPECT_EQ(st.state, MonitorState::kStopped);
  EXPECT_EQ(st.started_at, "2026-11-28T02:51:38.000000001Z");
  EXPECT_EQ(st.finished_at, "2026-11-28T02:52:00.5Z");
  EXPECT_EQ(st.exit_signal, 9);
  EXPECT_FALSE(st.exit_code);
  EXPECT_TRUE(st.oom_killed);
  EXPECT_EQ(st.oom_kills, 3u);
  EXPECT_EQ(st.ShellExitCode(), 137);
}

TEST(ParseStatus, ExitCodeAndExecErrno) {
  MonitorStatus st = ParseStatus(R"({"status":"stopped","pid":7,"exit_code":127,"exec_errno":2,)"
                                 R"("oom_killed":false,"oom_kills":0})");
  EXPECT_EQ(st.exit_code, 127);
  EXPECT_EQ(st.exec_errno, ENOENT);
  EXPECT_EQ(st.ShellExitCode(), 127);
}

void ExpectInvalid(const char* json) {
  try {
    ParseStatus(json);
    ADD_FAILURE() << "accepted: " << json;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << json;
  }
}

TEST(ParseStatus, RejectsBadShapes) {
  ExpectInvalid("");
  ExpectInvalid("{");
  ExpectInvalid("[]");
  ExpectInvalid(R"({"pid":1,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"dancing","pid":1,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":1,"pid":1,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"created","pid":"1","oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"created","pid":0,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"created","pid":1,"oom_killed":0,"oom_kills":0})");
  ExpectInvalid(R"({"status":"created","pid":1,"oom_killed":false,"oom_kills":-1})");
  ExpectInvalid(R"({"status":"created","pid":1,"oom_killed":false})");
  ExpectInvalid(R"({"status":"created","pid":1,"started_at":5,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"stopped","pid":1,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(
      R"({"status":"stopped","pid":1,"exit_code":1,"exit_signal":9,"oom_killed":false,"oom_kills":0})");
  ExpectInvalid(R"({"status":"stopped","pid":1,"exit_code":1.5,"oom_killed":false,"oom_kills":0})");
}

TEST(ReadStatusFile, MissingIsNullopt) {
  testing::TempDir dir;
  EXPECT_FALSE(ReadStatusFile(dir.path()));
}

TEST(ReadStatusFile, ReadsAndNamesThePathOnError) {
  testing::TempDir dir;
  std::ofstream(dir.Sub("status.json"))
      << R"({"status":"running","pid":9,"oom_killed":false,"oom_kills":0})"
      << "\n";
  auto st = ReadStatusFile(dir.path());
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, MonitorState::kRunning);
  std::ofstream(dir.Sub("status.json")) << "{nope";
  try {
    ReadStatusFile(dir.path());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(dir.Sub("status.json")), std::string::npos) << e.message();
  }
}

TEST(ParseReply, OkForms) {
  EXPECT_EQ(ParseReply("start", "ok"), "");
  EXPECT_EQ(ParseReply("state", "ok {\"a\":1}"), "{\"a\":1}");
}

TEST(ParseReply, ErrKindFollowsErrno) {
  struct Case {
    const char* reply;
    ErrorKind kind;
    int err;
  } cases[] = {
      {"err 2 exec the container process: No such file or directory", ErrorKind::kNotFound, 2},
      {"err 16 the container is not in state created", ErrorKind::kConflict, 16},
      {"err 22 unknown request", ErrorKind::kInvalidArgument, 22},
      {"err 95 no freezer", ErrorKind::kUnsupported, 95},
  };
  for (const auto& c : cases) {
    try {
      ParseReply("start", c.reply);
      ADD_FAILURE() << c.reply;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), c.kind) << c.reply;
      EXPECT_EQ(e.sys_errno(), c.err);
      EXPECT_NE(e.message().find("monitor start"), std::string::npos) << e.message();
    }
  }
}

TEST(ParseReply, Malformed) {
  for (const char* reply : {"", "okay", "err", "err x y", "err -3 no", "hello"}) {
    EXPECT_THROW(ParseReply("state", reply), Error) << reply;
  }
}

TEST(MonitorClient, NoSocketIsNotFound) {
  testing::TempDir dir;
  try {
    MonitorClient::Request(dir.path(), "state", 100);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(e.message().find("monitor not running"), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace berth::monitor
