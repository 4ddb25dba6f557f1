// SerializeSpec and DefaultSpec: what is written reads back field for field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/spec/parser.h"
#include "tests/support/test_env.h"
#include "tests/unit/spec/spec_equal.h"

namespace berth::spec {
namespace {

using ::testing::HasSubstr;

std::string TestData(const std::string& name) {
  return ReadFile(berth::testing::SourceDir() + "/tests/unit/spec/testdata/" + name);
}

void ExpectRoundTrip(const Spec& original) {
  std::string json = SerializeSpec(original);
  Spec again = ParseSpec(json);
  // Comparing the text too makes a failure show which field went missing.
  EXPECT_EQ(SerializeSpec(again), json);
  EXPECT_TRUE(again == original) << json;
}

TEST(SerializeSpecTest, FullConfigRoundTrips) { ExpectRoundTrip(ParseSpec(TestData("full.json"))); }

TEST(SerializeSpecTest, CrunConfigRoundTrips) {
  ExpectRoundTrip(ParseSpec(TestData("crun_spec.json")));
}

TEST(SerializeSpecTest, DefaultSpecRoundTrips) { ExpectRoundTrip(DefaultSpec()); }

TEST(SerializeSpecTest, MinimalSpecLeavesOptionalsUnset) {
  Spec s;
  s.root.path = "/r";
  s.process.args = {"x"};
  ExpectRoundTrip(s);
  std::string json = SerializeSpec(s);
  EXPECT_THAT(json, ::testing::Not(HasSubstr("capabilities")));
  EXPECT_THAT(json, ::testing::Not(HasSubstr("resources")));
  EXPECT_THAT(json, ::testing::Not(HasSubstr("oomScoreAdj")));
}

// berthd's form is one line (it travels to the init on the spawn path); the form for a
// person to edit is indented, and both read back as the same spec.
TEST(SerializeSpecTest, CompactForBerthdIndentedForAPerson) {
  const Spec s = DefaultSpec();
  const std::string compact = SerializeSpec(s);
  const std::string indented = SerializeSpecIndented(s);
  EXPECT_EQ(compact.find('\n'), std::string::npos);
  EXPECT_THAT(indented, HasSubstr("\n  \"ociVersion\": "));
  EXPECT_LT(compact.size() * 3 / 2, indented.size());
  EXPECT_EQ(SerializeSpec(ParseSpec(indented)), compact);
}

// Present-but-empty structures are kept apart from absent ones ("memory": {} means "set
// nothing", but the caller asked for a memory section).
TEST(SerializeSpecTest, EmptyOptionalStructsRoundTrip) {
  Spec s;
  s.root.path = "/r";
  s.process.args = {"x"};
  s.process.capabilities = Capabilities{};
  s.linux.resources = Resources{};
  s.linux.resources->memory = MemoryResources{};
  s.linux.resources->cpu = CpuResources{};
  s.linux.resources->pids = PidsResources{};
  s.linux.resources->block_io = BlockIoResources{};
  ExpectRoundTrip(s);
}

TEST(SerializeSpecTest, ExtremeValuesRoundTrip) {
  Spec s;
  s.root.path = "/r";
  s.process.args = {"quote\" backslash\\ newline\n tab\t unicode \xc3\xa9"};
  s.process.user.uid = UINT32_MAX;
  s.process.user.gid = UINT32_MAX;
  s.process.rlimits = {{"RLIMIT_NOFILE", UINT64_MAX, UINT64_MAX}};
  s.process.oom_score_adj = -1000;
  s.linux.devices = {{"/dev/x", "c", INT64_MAX, INT64_MIN, UINT32_MAX, 0, UINT32_MAX}};
  s.linux.resources = Resources{};
  s.linux.resources->memory = MemoryResources{};
  s.linux.resources->memory->limit = INT64_MAX;
  s.linux.resources->memory->swap = -1;
  s.linux.seccomp = Seccomp{};
  s.linux.seccomp->default_action = "SCMP_ACT_ALLOW";
  s.linux.seccomp->syscalls = {
      {{"x"}, "SCMP_ACT_ERRNO", UINT32_MAX, {{5, UINT64_MAX, UINT64_MAX, "SCMP_CMP_NE"}}}};
  s.annotations = {{"k.with.dots", "v"}};
  ExpectRoundTrip(s);
}

TEST(DefaultSpecTest, Validates) { EXPECT_NO_THROW(ValidateSpec(DefaultSpec())); }

TEST(DefaultSpecTest, LooksLikeCrunSpec) {
  Spec d = DefaultSpec();
  EXPECT_EQ(d.process.args, std::vector<std::string>{"sh"});
  EXPECT_EQ(d.process.env, (std::vector<std::string>{
                               "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                               "TERM=xterm"}));
  EXPECT_EQ(d.process.cwd, "/");
  EXPECT_EQ(d.root.path, "rootfs");
  EXPECT_TRUE(d.root.readonly);
  EXPECT_EQ(d.hostname, "berth");
  EXPECT_TRUE(d.process.no_new_privileges);
  EXPECT_EQ(d.process.rlimits, (std::vector<Rlimit>{{"RLIMIT_NOFILE", 1024, 1024}}));
  EXPECT_FALSE(d.HasNamespace(NamespaceType::kUser));
  EXPECT_FALSE(d.HasNamespace(NamespaceType::kCgroup));
  for (auto t : {NamespaceType::kPid, NamespaceType::kNetwork, NamespaceType::kIpc,
                 NamespaceType::kUts, NamespaceType::kMount}) {
    EXPECT_TRUE(d.HasNamespace(t)) << NamespaceTypeName(t);
  }
  std::vector<std::string> destinations;
  for (const auto& m : d.mounts) destinations.push_back(m.destination);
  EXPECT_THAT(destinations, ::testing::ElementsAre("/proc", "/dev", "/dev/pts", "/dev/shm",
                                                   "/dev/mqueue", "/sys", "/sys/fs/cgroup"));
  EXPECT_EQ(d.linux.masked_paths.size(), 10u);
  EXPECT_EQ(d.linux.readonly_paths.size(), 5u);
}

}  // namespace
}  // namespace berth::spec
