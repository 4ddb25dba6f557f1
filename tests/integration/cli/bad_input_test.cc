// Bad input to berth-runtime: each is a clear error on stderr naming the field or path, a
// non-zero exit, and nothing left behind (no state entry, cgroup or monitor).
#include <gmock/gmock.h>
#include <rapidjson/pointer.h>
#include <sys/sysinfo.h>

#include "runtime/common/file_util.h"
#include "tests/integration/cli/cli_fixture.h"

namespace berth::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class CliBadInputTest : public CliTest {
 protected:
  // `run` and `create` both must refuse it the same way.
  void ExpectRefused(const std::string& id, const std::string& bundle,
                     const std::vector<std::string>& fragments) {
    for (const char* verb : {"create", "run"}) {
      SCOPED_TRACE(verb);
      CliResult r = Cli({verb, "--bundle", bundle, id});
      EXPECT_NE(r.exit_code, 0);
      EXPECT_THAT(r.err, StartsWith("berth-runtime: "));
      for (const auto& f : fragments) EXPECT_THAT(r.err, HasSubstr(f));
      EXPECT_EQ(r.out, "");
      ExpectNothingLeft(id);
    }
  }
};

TEST_F(CliBadInputTest, MalformedConfigNamesTheFileAndOffset) {
  const std::string text = "{\"ociVersion\": \"1.0.0\",, \"hostname\": \"x\"}";
  const size_t offset = text.find(",,") + 1;  // where a member name should start
  std::string bundle = RawBundle("badjson", text);
  ExpectRefused("badjson", bundle,
                {bundle + "/config.json", "malformed JSON at offset " + std::to_string(offset)});
}

TEST_F(CliBadInputTest, WrongTypeNamesTheField) {
  std::string bundle = Bundle("wrongtype", {"true"}, [](rapidjson::Document& d) {
    rapidjson::Pointer("/process/args").Set(d, "not-a-list");
  });
  ExpectRefused("wrongtype", bundle, {"config.json", "process.args"});
}

TEST_F(CliBadInputTest, UnknownNamespaceTypeNamesTheField) {
  std::string bundle = Bundle("badns", {"true"}, [](rapidjson::Document& d) {
    rapidjson::Pointer("/linux/namespaces/1/type").Set(d, "bogus");
  });
  ExpectRefused("badns", bundle, {"linux.namespaces[1].type", "bogus"});
}

TEST_F(CliBadInputTest, CpusetBeyondTheHostsCpusNamesTheField) {
  if (get_nprocs_conf() >= 60) GTEST_SKIP() << "host has CPUs 60-63";
  std::string bundle = Bundle("cpuset", {"true"}, [](rapidjson::Document& d) {
    rapidjson::Pointer("/linux/resources/cpu/cpus").Set(d, "60-63");
  });
  ExpectRefused("cpuset", bundle, {"linux.resources.cpu.cpus", "60-63"});
}

TEST_F(CliBadInputTest, CpuQuotaBelowTheKernelsMinimumNamesTheField) {
  std::string bundle = Bundle("quota", {"true"}, [](rapidjson::Document& d) {
    rapidjson::Pointer("/linux/resources/cpu/quota").Set(d, 500);
    rapidjson::Pointer("/linux/resources/cpu/period").Set(d, 100000);
  });
  ExpectRefused("quota", bundle, {"linux.resources.cpu.quota"});
}

TEST_F(CliBadInputTest, MissingRootfsNamesRootPath) {
  std::string bundle = Bundle("noroot", {"true"}, [](rapidjson::Document& d) {
    rapidjson::Pointer("/root/path").Set(d, "no-such-rootfs");
  });
  ExpectRefused("noroot", bundle, {"root.path", bundle + "/no-such-rootfs"});
}

TEST_F(CliBadInputTest, MissingExecutableNamesProcessArgs0) {
  ExpectRefused("noexe-abs", Bundle("noexe-abs", {"/bin/no-such-program"}),
                {"process.args[0]", "/bin/no-such-program"});
  ExpectRefused("noexe-path", Bundle("noexe-path", {"no-such-program"}),
                {"process.args[0]", "no-such-program"});
}

TEST_F(CliBadInputTest, InvalidContainerIdIsRefused) {
  std::string bundle = Bundle("idcheck", {"true"});
  for (const std::string& id : {std::string("../escape"), std::string(".hidden"),
                                std::string("a/b"), std::string("sp ace"), std::string(65, 'x')}) {
    SCOPED_TRACE(id);
    for (const char* verb : {"create", "run"}) {
      CliResult r = Cli({verb, "--bundle", bundle, id});
      EXPECT_NE(r.exit_code, 0);
      EXPECT_THAT(r.err, HasSubstr("invalid container id \"" + id + "\""));
    }
  }
  // Nothing was made: the state root holds no entry, the bundle's cgroup does not exist.
  EXPECT_FALSE(PathExists(state_root_ + "/escape"));
  EXPECT_FALSE(PathExists(dir_->Sub("escape")));
  if (PathExists(state_root_)) {
    CliResult list = Cli({"list", "-f", "json"});
    EXPECT_EQ(list.out, "[]\n");
  }
  EXPECT_EQ(CgroupDirs("idcheck"), std::vector<std::string>{});
}

TEST_F(CliBadInputTest, DuplicateIdIsRefusedAndTheFirstContainerIsUntouched) {
  std::string bundle = Bundle("dup", {"sh", "-c", "exit 3"});
  ASSERT_EQ(Cli({"create", "--bundle", bundle, "dup"}).exit_code, 0);
  pid_t pid = State("dup")["pid"].GetInt();
  auto monitors = Monitors("dup");
  ASSERT_EQ(monitors.size(), 1u);
  for (const char* verb : {"create", "run"}) {
    SCOPED_TRACE(verb);
    CliResult r = Cli({verb, "--bundle", bundle, "dup"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr("container \"dup\" already exists"));
  }
  // Still the one container, the one monitor, and it still works.
  EXPECT_EQ(Monitors("dup"), monitors);
  auto st = State("dup");
  EXPECT_STREQ(st["status"].GetString(), "created");
  EXPECT_EQ(st["pid"].GetInt(), pid);
  ASSERT_EQ(Cli({"start", "dup"}).exit_code, 0);
  EXPECT_EQ(WaitForStatus("dup", "stopped"), "stopped");
  EXPECT_EQ(State("dup")["exitCode"].GetInt(), 3);
  EXPECT_EQ(Cli({"delete", "dup"}).exit_code, 0);
  ExpectNothingLeft("dup");
}

TEST_F(CliBadInputTest, UnknownIdIsNotFoundForEveryVerb) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"start", "nosuch"},
                                               {"state", "nosuch"},
                                               {"kill", "nosuch"},
                                               {"delete", "nosuch"},
                                               {"delete", "--force", "nosuch"},
                                               {"exec", "nosuch", "true"},
                                               {"ps", "nosuch"},
                                               {"pause", "nosuch"}}) {
    SCOPED_TRACE(::testing::PrintToString(args));
    CliResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;  // berth-runtime's "not found"
    EXPECT_THAT(r.err, HasSubstr("container \"nosuch\" does not exist"));
  }
  ExpectNothingLeft("nosuch");
}

TEST_F(CliBadInputTest, DeleteOfARunningContainerNeedsForce) {
  ASSERT_EQ(Cli({"run", "-d", "--bundle", Bundle("busy", {"sleep", "60"}), "busy"}).exit_code, 0);
  pid_t pid = State("busy")["pid"].GetInt();
  CliResult r = Cli({"delete", "busy"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("\"busy\" is running"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_STREQ(State("busy")["status"].GetString(), "running");
  EXPECT_TRUE(ProcessAlive(pid));
  EXPECT_EQ(Monitors("busy").size(), 1u);

  r = Cli({"delete", "--force", "busy"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(ProcessAlive(pid));
  ExpectNothingLeft("busy");
}

TEST_F(CliBadInputTest, UnknownSignalIsRefusedAndTheContainerKeepsRunning) {
  ASSERT_EQ(Cli({"run", "-d", "--bundle", Bundle("sig", {"sleep", "60"}), "sig"}).exit_code, 0);
  CliResult r = Cli({"kill", "sig", "SIGNOPE"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("unknown signal \"SIGNOPE\""));
  EXPECT_STREQ(State("sig")["status"].GetString(), "running");
}

// RUNTIME BUG (reported, runtime/linux/container.cc PauseContainer/ResumeContainer): once the
// monitor is gone they pass on the client's kNotFound, so the CLI exits 2 ("not found") with
// "monitor not running: connect .../monitor.sock" instead of a conflict naming the state, as
// KillContainer does. Enable when fixed.
TEST_F(CliBadInputTest, PauseOrResumeOfAStoppedContainerIsAConflict) {
  ASSERT_EQ(Cli({"run", "-d", "--bundle", Bundle("gone", {"true"}), "gone"}).exit_code, 0);
  ASSERT_EQ(WaitForStatus("gone", "stopped"), "stopped");
  for (const char* verb : {"pause", "resume"}) {
    SCOPED_TRACE(verb);
    CliResult r = Cli({verb, "gone"});
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("\"gone\" is not running"));
  }
}

}  // namespace
}  // namespace berth::testing
