// The container's static record (state.json) and container ids.
#include "runtime/linux/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::container {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

StateRecord FullRecord() {
  StateRecord r;
  r.oci_version = "1.0.2";
  r.id = "c1";
  r.bundle = "/srv/bundles/c1";
  r.rootfs = "/srv/bundles/c1/rootfs";
  r.cgroup_path = "berth/c1";
  r.created = "2026-11-28T02:51:38.123456789Z";
  r.init_pid = 4242;
  r.monitor_pid = 4241;
  r.user_namespace = true;
  r.annotations = {{"org.openstack.nova/uuid", "0f3c"}, {"quote", "a \"b\" \\ c"}};
  return r;
}

void ExpectSameRecord(const StateRecord& a, const StateRecord& b) {
  EXPECT_EQ(a.oci_version, b.oci_version);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.bundle, b.bundle);
  EXPECT_EQ(a.rootfs, b.rootfs);
  EXPECT_EQ(a.cgroup_path, b.cgroup_path);
  EXPECT_EQ(a.created, b.created);
  EXPECT_EQ(a.init_pid, b.init_pid);
  EXPECT_EQ(a.monitor_pid, b.monitor_pid);
  EXPECT_EQ(a.user_namespace, b.user_namespace);
  EXPECT_EQ(a.annotations, b.annotations);
}

// The message of the Error `fn` throws, checking its kind.
template <typename Fn>
std::string ErrorOf(Fn&& fn, ErrorKind kind) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(StateRecord, RoundTrips) {
  StateRecord r = FullRecord();
  ExpectSameRecord(ParseStateRecord(SerializeStateRecord(r), "state.json"), r);
  StateRecord empty;
  ExpectSameRecord(ParseStateRecord(SerializeStateRecord(empty), "state.json"), empty);
}

TEST(StateRecord, MissingFieldsKeepTheirDefaults) {
  StateRecord r = ParseStateRecord(R"({"id": "x"})", "state.json");
  EXPECT_EQ(r.id, "x");
  EXPECT_EQ(r.init_pid, 0);
  EXPECT_FALSE(r.user_namespace);
  EXPECT_TRUE(r.annotations.empty());
}

TEST(StateRecord, MalformedContentNamesTheFile) {
  const std::string path = "/run/berth-runtime/c1/state.json";
  for (const std::string& bad : {std::string("{"), std::string(""), std::string("[]"),
                                 std::string("\"text\""), std::string("{\"id\": 1,}")}) {
    SCOPED_TRACE(bad);
    std::string msg = ErrorOf([&] { ParseStateRecord(bad, path); }, ErrorKind::kInvalidArgument);
    EXPECT_THAT(msg, StartsWith(path + ": "));
  }
  std::string msg =
      ErrorOf([&] { ParseStateRecord(R"({"initPid": "12"})", path); }, ErrorKind::kInvalidArgument);
  EXPECT_THAT(msg, StartsWith(path + ": "));
  EXPECT_THAT(msg, HasSubstr("initPid"));
  msg = ErrorOf([&] { ParseStateRecord(R"({"bundle": 7})", path); }, ErrorKind::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr("bundle"));
}

TEST(StateRecord, WrittenAndReadBackFromAStateRoot) {
  testing::TempDir dir;
  StateRecord r = FullRecord();
  EXPECT_EQ(StateDir(dir.path(), "c1"), dir.path() + "/c1");
  MakeDirs(StateDir(dir.path(), "c1"));
  WriteStateRecord(StateDir(dir.path(), "c1"), r);
  ExpectSameRecord(ReadStateRecord(dir.path(), "c1"), r);

  std::string msg = ErrorOf([&] { ReadStateRecord(dir.path(), "c2"); }, ErrorKind::kNotFound);
  EXPECT_EQ(msg, "container \"c2\" does not exist");

  MakeDirs(StateDir(dir.path(), "torn"));
  WriteFileAtomic(StateDir(dir.path(), "torn") + "/state.json", "{\"id\": \"to");
  msg = ErrorOf([&] { ReadStateRecord(dir.path(), "torn"); }, ErrorKind::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr(dir.path() + "/torn/state.json"));
}

TEST(StateRecord, ReadRefusesAnIdThatWouldLeaveTheStateRoot) {
  testing::TempDir dir;
  MakeDirs(dir.Sub("root"));
  // A record outside the root that "../" would reach.
  WriteFileAtomic(dir.Sub("state.json"), SerializeStateRecord(FullRecord()));
  ErrorOf([&] { ReadStateRecord(dir.Sub("root"), ".."); }, ErrorKind::kInvalidArgument);
}

TEST(ValidateContainerId, Accepts) {
  for (const std::string& id :
       {std::string("a"), std::string("c1"), std::string("A-z_0.9"), std::string("nova-0f3c.1"),
        std::string("x."), std::string("-leading-dash"), std::string(64, 'x')}) {
    EXPECT_NO_THROW(ValidateContainerId(id)) << id;
  }
}

TEST(ValidateContainerId, Rejects) {
  for (const std::string& id :
       {std::string(""), std::string("."), std::string(".."), std::string(".hidden"),
        std::string("a/b"), std::string("../x"), std::string("a b"), std::string("tab\t"),
        std::string("new\nline"), std::string("caf\xc3\xa9"), std::string(65, 'x'),
        std::string("nul\0byte", 8), std::string("colon:x")}) {
    SCOPED_TRACE(::testing::PrintToString(id));
    std::string msg = ErrorOf([&] { ValidateContainerId(id); }, ErrorKind::kInvalidArgument);
    EXPECT_THAT(msg, HasSubstr("invalid container id"));
  }
}

TEST(NowRfc3339, IsUtcWithNanoseconds) {
  EXPECT_THAT(NowRfc3339(),
              ::testing::MatchesRegex("[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                      "\\.[0-9]{9}Z"));
}

}  // namespace
}  // namespace berth::container
