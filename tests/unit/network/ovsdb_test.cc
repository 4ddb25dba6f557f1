// ovs-vsctl argument rendering and output parsing, and the spawn helper it runs through.
#include "runtime/network/ovsdb.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/network/command.h"

namespace berth::net {
namespace {

ErrorKind KindOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no error";
  return ErrorKind::kInternal;
}

TEST(OvsdbTest, NeutronExternalIdsAreWhatOsVifWrites) {
  auto ids = NeutronExternalIds("3f2a6c1e-0b5d-4f0e-9a55-1c2d3e4f5a6b", "fa:16:3e:11:22:33",
                                "5b0c9e7a-1111-2222-3333-444455556666");
  EXPECT_EQ(ids, (ExternalIds{{"attached-mac", "fa:16:3e:11:22:33"},
                              {"iface-id", "3f2a6c1e-0b5d-4f0e-9a55-1c2d3e4f5a6b"},
                              {"iface-status", "active"},
                              {"vm-uuid", "5b0c9e7a-1111-2222-3333-444455556666"}}));
}

TEST(OvsdbTest, AddPortIsOneTransactionThatReplacesAStalePort) {
  OvsdbConfig config{.vsctl = "ovs-vsctl", .db = "unix:/tmp/x/db.sock", .timeout_seconds = 7};
  auto argv = VsctlAddPortArgs(config, "br-int", "tap3f2a6c1e-0b",
                               {{"iface-id", "p1"}, {"attached-mac", "fa:16:3e:00:00:01"}}, 1450);
  std::vector<std::string> want = {"ovs-vsctl",
                                   "--timeout=7",
                                   "--db=unix:/tmp/x/db.sock",
                                   "--",
                                   "--if-exists",
                                   "del-port",
                                   "tap3f2a6c1e-0b",
                                   "--",
                                   "add-port",
                                   "br-int",
                                   "tap3f2a6c1e-0b",
                                   "--",
                                   "set",
                                   "Interface",
                                   "tap3f2a6c1e-0b",
                                   "external_ids:\"attached-mac\"=\"fa:16:3e:00:00:01\"",
                                   "external_ids:\"iface-id\"=\"p1\"",
                                   "mtu_request=1450"};
  EXPECT_EQ(argv, want);
  EXPECT_EQ(VsctlDelPortArgs(OvsdbConfig{}, "br-int", "tap1"),
            (std::vector<std::string>{"ovs-vsctl", "--timeout=10", "--if-exists", "del-port",
                                      "br-int", "tap1"}));
}

TEST(OvsdbTest, QuotesValuesSoTheyStayStrings) {
  EXPECT_EQ(QuoteOvsString("a"), "\"a\"");
  EXPECT_EQ(QuoteOvsString("x\" -- del-br br-int"), "\"x\\\" -- del-br br-int\"");
  EXPECT_EQ(QuoteOvsString("back\\slash"), "\"back\\\\slash\"");
}

TEST(OvsdbTest, ParsesVsctlMaps) {
  EXPECT_EQ(ParseOvsMap("{}\n"), ExternalIds{});
  EXPECT_EQ(ParseOvsMap("{attached-mac=\"fa:16:3e:00:00:01\", iface-id=\"p1\", "
                        "iface-status=active, \"vm uuid\"=\"a \\\"q\\\", b\"}\n"),
            (ExternalIds{{"attached-mac", "fa:16:3e:00:00:01"},
                         {"iface-id", "p1"},
                         {"iface-status", "active"},
                         {"vm uuid", "a \"q\", b"}}));
  for (const char* bad : {"", "[]", "{a}", "{\"a=b}", "x{a=b}"}) {
    EXPECT_THROW(ParseOvsMap(bad), Error) << bad;
  }
}

TEST(CommandTest, CapturesOutputAndExitCode) {
  auto r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, 5000);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  EXPECT_EQ(RunCommand({"true"}, 5000).exit_code, 0) << "found through PATH";
}

TEST(CommandTest, MissingProgramIsNotFoundAndVsctlMissingIsUnsupported) {
  EXPECT_EQ(KindOf([] { RunCommand({"/nonexistent/berth-test-prog"}, 1000); }),
            ErrorKind::kNotFound);
  OvsVsctl vsctl(OvsdbConfig{.vsctl = "/nonexistent/ovs-vsctl", .db = "", .timeout_seconds = 1});
  EXPECT_EQ(KindOf([&] { vsctl.BridgeExists("br-int"); }), ErrorKind::kUnsupported);
}

TEST(CommandTest, KillsAChildThatOverrunsItsDeadline) {
  try {
    RunCommand({"/bin/sleep", "30"}, 200);
    FAIL() << "no timeout";
  } catch (const Error& e) {
    EXPECT_EQ(e.sys_errno(), ETIMEDOUT);
    EXPECT_NE(e.message().find("killed"), std::string::npos) << e.message();
  }
}

TEST(CommandTest, VsctlFailureCarriesItsStderr) {
  // A database socket that does not exist: ovs-vsctl gives up and says why.
  if (RunCommand({"sh", "-c", "command -v ovs-vsctl"}, 5000).exit_code != 0) {
    GTEST_SKIP() << "ovs-vsctl not installed";
  }
  OvsVsctl vsctl(OvsdbConfig{
      .vsctl = "ovs-vsctl", .db = "unix:/nonexistent/berth-test/db.sock", .timeout_seconds = 1});
  try {
    vsctl.ListPorts("br-int");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kSystem);
    EXPECT_NE(e.message().find("ovs-vsctl"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("db.sock"), std::string::npos) << e.message();
  }
}

}  // namespace
}  // namespace berth::net
