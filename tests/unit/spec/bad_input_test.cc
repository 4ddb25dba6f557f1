// Every kind of bad config.json is refused with kInvalidArgument and a message that names
// the field by its JSON path. Each case patches one value of testdata/full.json (a config
// that parses) through a JSON pointer, so the case tests exactly that one value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/spec/parser.h"
#include "tests/support/test_env.h"

namespace berth::spec {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kDelete = "<delete>";

struct BadCase {
  const char* pointer;  // RFC 6901 pointer into full.json
  const char* value;    // JSON text to put there, or kDelete
  const char* path;     // the JSON path the message must start with
  const char* detail;   // a part of the message after the path
};

std::ostream& operator<<(std::ostream& os, const BadCase& c) {
  return os << c.pointer << " = " << c.value;
}

const BadCase kBadCases[] = {
    // Wrong types and ranges.
    {"/ociVersion", "1", "ociVersion", "expected a string"},
    {"/process", "[]", "process", "expected an object"},
    {"/process/terminal", "1", "process.terminal", "expected a boolean"},
    {"/process/consoleSize/height", "-1", "process.consoleSize.height",
     "expected an unsigned 32-bit integer"},
    {"/process/consoleSize/width", kDelete, "process.consoleSize.width",
     "required field is missing"},
    {"/process/user/uid", "4294967296", "process.user.uid", "expected an unsigned 32-bit integer"},
    {"/process/user/uid", "-1", "process.user.uid", "expected an unsigned 32-bit integer"},
    {"/process/user/uid", "\"0\"", "process.user.uid", "expected an unsigned 32-bit integer"},
    {"/process/user/uid", "1.5", "process.user.uid", "expected an unsigned 32-bit integer"},
    {"/process/user/uid", "1e3", "process.user.uid", "expected an unsigned 32-bit integer"},
    {"/process/user/gid", kDelete, "process.user.gid", "required field is missing"},
    {"/process/user/umask", "512", "process.user.umask", "must be at most 0777"},
    {"/process/user/additionalGids/1", "-5", "process.user.additionalGids[1]",
     "expected an unsigned 32-bit integer"},
    {"/process/args", "\"sh\"", "process.args", "expected an array"},
    {"/process/args/1", "5", "process.args[1]", "expected a string"},
    {"/process/args/0", "\"a\\u0000b\"", "process.args[0]", "NUL"},
    {"/process/args", "[]", "process.args", "must not be empty"},
    {"/process/env", "{}", "process.env", "expected an array"},
    {"/process/cwd", "\"srv\"", "process.cwd", "must be an absolute path, got \"srv\""},
    {"/process/cwd", "\"\"", "process.cwd", "must be an absolute path"},
    {"/process/capabilities", "[]", "process.capabilities", "expected an object"},
    {"/process/capabilities/bounding", "[1]", "process.capabilities.bounding[0]",
     "expected a string"},
    {"/process/rlimits", "{}", "process.rlimits", "expected an array"},
    {"/process/rlimits/0/type", "\"RLIMIT_FOO\"", "process.rlimits[0].type",
     "unknown rlimit type \"RLIMIT_FOO\""},
    {"/process/rlimits/0/hard", "-1", "process.rlimits[0].hard",
     "expected an unsigned 64-bit integer"},
    {"/process/rlimits/0/soft", kDelete, "process.rlimits[0].soft", "required field is missing"},
    {"/process/rlimits/1/type", "\"RLIMIT_NOFILE\"", "process.rlimits[1].type",
     "duplicate rlimit \"RLIMIT_NOFILE\""},
    {"/process/rlimits/0/soft", "5000", "process.rlimits[0].soft", "must not exceed hard"},
    {"/process/noNewPrivileges", "\"true\"", "process.noNewPrivileges", "expected a boolean"},
    {"/process/oomScoreAdj", "1001", "process.oomScoreAdj", "must be in [-1000, 1000]"},
    {"/process/oomScoreAdj", "2147483648", "process.oomScoreAdj", "expected a 32-bit integer"},
    {"/root", "\"rootfs\"", "root", "expected an object"},
    {"/root", kDelete, "root.path", "must not be empty"},
    {"/root/path", kDelete, "root.path", "required field is missing"},
    {"/root/path", "\"\"", "root.path", "must not be empty"},
    {"/root/readonly", "\"yes\"", "root.readonly", "expected a boolean"},
    {"/hostname", "5", "hostname", "expected a string"},
    {"/mounts", "{}", "mounts", "expected an array"},
    {"/mounts/1", "\"/data\"", "mounts[1]", "expected an object"},
    {"/mounts/1/destination", "\"data\"", "mounts[1].destination", "must be an absolute path"},
    {"/mounts/0/destination", kDelete, "mounts[0].destination", "required field is missing"},
    {"/mounts/1/options", "[true]", "mounts[1].options[0]", "expected a string"},
    {"/mounts/1/source", "null", "", ""},  // null is absent: accepted
    {"/annotations", "[]", "annotations", "expected an object"},
    {"/annotations/com.example.key", "5", "annotations[\"com.example.key\"]", "expected a string"},
    {"/linux", "\"x\"", "linux", "expected an object"},
    {"/linux/namespaces", "{}", "linux.namespaces", "expected an array"},
    {"/linux/namespaces/2/type", "\"foo\"", "linux.namespaces[2].type",
     "unknown namespace type \"foo\""},
    {"/linux/namespaces/2/type", "7", "linux.namespaces[2].type", "expected a string"},
    {"/linux/namespaces/2/type", kDelete, "linux.namespaces[2].type", "required field is missing"},
    {"/linux/namespaces/2/type", "\"pid\"", "linux.namespaces[2].type",
     "duplicate namespace type \"pid\""},
    {"/linux/namespaces/1/path", "\"netns\"", "linux.namespaces[1].path",
     "must be an absolute path"},
    {"/linux/uidMappings/0/containerID", "-1", "linux.uidMappings[0].containerID",
     "expected an unsigned 32-bit integer"},
    {"/linux/gidMappings/0/hostID", kDelete, "linux.gidMappings[0].hostID",
     "required field is missing"},
    {"/linux/gidMappings/0/size", "0", "linux.gidMappings[0].size", "must be > 0"},
    {"/linux/uidMappings/0/hostID", "4294967295", "linux.uidMappings[0].size",
     "past the last 32-bit id"},
    {"/linux/namespaces/5", kDelete, "linux.uidMappings", "need a user namespace"},
    {"/linux/uidMappings", kDelete, "linux.uidMappings", "a new user namespace needs uid mappings"},
    {"/linux/gidMappings", "[]", "linux.gidMappings", "a new user namespace needs gid mappings"},
    {"/linux/namespaces/3", kDelete, "hostname", "needs a new uts namespace"},
    {"/linux/namespaces/3/path", "\"/proc/1/ns/uts\"", "hostname", "needs a new uts namespace"},
    {"/linux/devices/0/type", "\"x\"", "linux.devices[0].type", "unknown device type \"x\""},
    {"/linux/devices/1/major", kDelete, "linux.devices[1].major", "required field is missing"},
    {"/linux/devices/0/path", "\"dev/fuse\"", "linux.devices[0].path", "must be an absolute path"},
    {"/linux/devices/0/fileMode", "-1", "linux.devices[0].fileMode",
     "expected an unsigned 32-bit integer"},
    {"/linux/devices/0/major", "\"10\"", "linux.devices[0].major", "expected a 64-bit integer"},
    {"/linux/cgroupsPath", "5", "linux.cgroupsPath", "expected a string"},
    {"/linux/resources", "[]", "linux.resources", "expected an object"},
    {"/linux/resources/devices/1/type", "\"z\"", "linux.resources.devices[1].type",
     "unknown device type \"z\""},
    {"/linux/resources/devices/1/access", "\"rwx\"", "linux.resources.devices[1].access",
     "expected a combination of r, w and m"},
    {"/linux/resources/devices/1/access", "\"\"", "linux.resources.devices[1].access",
     "expected a combination of r, w and m"},
    {"/linux/resources/devices/0/allow", kDelete, "linux.resources.devices[0].allow",
     "required field is missing"},
    {"/linux/resources/devices/2/major", "\"8\"", "linux.resources.devices[2].major",
     "expected a 64-bit integer"},
    {"/linux/resources/memory/limit", "0", "linux.resources.memory.limit", "must be > 0 or -1"},
    {"/linux/resources/memory/limit", "-2", "linux.resources.memory.limit", "must be > 0 or -1"},
    {"/linux/resources/memory/limit", "18446744073709551615", "linux.resources.memory.limit",
     "expected a 64-bit integer"},
    {"/linux/resources/memory/swap", "1000", "linux.resources.memory.swap", "must be >= limit"},
    {"/linux/resources/memory/reservation", "-5", "linux.resources.memory.reservation",
     "must be >= 0 or -1"},
    {"/linux/resources/memory/swappiness", "101", "linux.resources.memory.swappiness",
     "must be in [0, 100]"},
    {"/linux/resources/memory/disableOOMKiller", "\"true\"",
     "linux.resources.memory.disableOOMKiller", "expected a boolean"},
    {"/linux/resources/cpu/period", "999", "linux.resources.cpu.period", "[1000, 1000000]"},
    {"/linux/resources/cpu/period", "1000001", "linux.resources.cpu.period", "[1000, 1000000]"},
    {"/linux/resources/cpu/quota", "0", "linux.resources.cpu.quota", "must be > 0 or -1"},
    {"/linux/resources/cpu/shares", "-1", "linux.resources.cpu.shares",
     "expected an unsigned 64-bit integer"},
    {"/linux/resources/cpu/cpus", "\"0-\"", "linux.resources.cpu.cpus", "not a cpu list"},
    {"/linux/resources/cpu/cpus", "\"3-1\"", "linux.resources.cpu.cpus", "not a cpu list"},
    {"/linux/resources/cpu/mems", "\"a\"", "linux.resources.cpu.mems", "not a node list"},
    {"/linux/resources/pids/limit", "-2", "linux.resources.pids.limit", "must be > 0"},
    {"/linux/resources/pids/limit", kDelete, "linux.resources.pids.limit",
     "required field is missing"},
    {"/linux/resources/pids/limit", "\"10\"", "linux.resources.pids.limit",
     "expected a 64-bit integer"},
    {"/linux/resources/blockIO/weight", "5", "linux.resources.blockIO.weight", "[10, 1000]"},
    {"/linux/resources/blockIO/weight", "70000", "linux.resources.blockIO.weight",
     "expected an unsigned 16-bit integer"},
    {"/linux/resources/blockIO/weightDevice/0/leafWeight", "2000",
     "linux.resources.blockIO.weightDevice[0].leafWeight", "[10, 1000]"},
    {"/linux/resources/blockIO/throttleReadBpsDevice/0/rate", kDelete,
     "linux.resources.blockIO.throttleReadBpsDevice[0].rate", "required field is missing"},
    {"/linux/resources/blockIO/throttleWriteIOPSDevice/0/minor", "\"x\"",
     "linux.resources.blockIO.throttleWriteIOPSDevice[0].minor", "expected a 64-bit integer"},
    {"/linux/resources/unified", "[]", "linux.resources.unified", "expected an object"},
    {"/linux/resources/unified/memory.high", "400", "linux.resources.unified[\"memory.high\"]",
     "expected a string"},
    {"/linux/seccomp", "true", "linux.seccomp", "expected an object"},
    {"/linux/seccomp/defaultAction", "1", "linux.seccomp.defaultAction", "expected a string"},
    {"/linux/seccomp/defaultAction", kDelete, "linux.seccomp.defaultAction",
     "required field is missing"},
    {"/linux/seccomp/defaultAction", "\"\"", "linux.seccomp.defaultAction", "must not be empty"},
    {"/linux/seccomp/defaultErrnoRet", "-1", "linux.seccomp.defaultErrnoRet",
     "expected an unsigned 32-bit integer"},
    {"/linux/seccomp/architectures/0", "64", "linux.seccomp.architectures[0]", "expected a string"},
    {"/linux/seccomp/syscalls/0/names", "[]", "linux.seccomp.syscalls[0].names",
     "must not be empty"},
    {"/linux/seccomp/syscalls/0/action", "[\"x\"]", "linux.seccomp.syscalls[0].action",
     "expected a string"},
    {"/linux/seccomp/syscalls/2/errnoRet", "-1", "linux.seccomp.syscalls[2].errnoRet",
     "expected an unsigned 32-bit integer"},
    {"/linux/seccomp/syscalls/1/args/0/index", "6", "linux.seccomp.syscalls[1].args[0].index",
     "must be in [0, 5]"},
    {"/linux/seccomp/syscalls/1/args/1/value", "-1", "linux.seccomp.syscalls[1].args[1].value",
     "expected an unsigned 64-bit integer"},
    {"/linux/seccomp/syscalls/1/args/1/op", kDelete, "linux.seccomp.syscalls[1].args[1].op",
     "required field is missing"},
    {"/linux/maskedPaths/0", "\"proc/kcore\"", "linux.maskedPaths[0]", "must be an absolute path"},
    {"/linux/readonlyPaths", "\"/proc/sys\"", "linux.readonlyPaths", "expected an array"},
    {"/linux/rootfsPropagation", "\"sideways\"", "linux.rootfsPropagation",
     "unknown propagation \"sideways\""},
    {"/linux/sysctl/kernel.msgmax", "8192", "linux.sysctl[\"kernel.msgmax\"]", "expected a string"},
    {"/linux/sysctl", "[\"a=b\"]", "linux.sysctl", "expected an object"},
};

std::string FullJson() {
  return ReadFile(berth::testing::SourceDir() + "/tests/unit/spec/testdata/full.json");
}

std::string Patched(const BadCase& c) {
  rapidjson::Document doc;
  std::string base = FullJson();
  doc.Parse(base.c_str());
  EXPECT_FALSE(doc.HasParseError());
  rapidjson::Pointer pointer(c.pointer);
  EXPECT_TRUE(pointer.IsValid()) << c.pointer;
  if (std::string(c.value) == kDelete) {
    EXPECT_TRUE(pointer.Erase(doc)) << "nothing at " << c.pointer;
  } else {
    // The value may be new, but its parent must exist, or the case tests nothing.
    rapidjson::Pointer parent(pointer.GetTokens(), pointer.GetTokenCount() - 1);
    EXPECT_NE(parent.Get(doc), nullptr) << "no parent for " << c.pointer;
    rapidjson::Document value(&doc.GetAllocator());
    value.Parse(c.value);
    EXPECT_FALSE(value.HasParseError()) << c.value;
    pointer.Set(doc, value);
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  doc.Accept(writer);
  return std::string(buf.GetString(), buf.GetSize());
}

class BadSpecTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadSpecTest, IsInvalidArgumentNamingTheField) {
  const BadCase& c = GetParam();
  std::string json = Patched(c);
  if (c.path[0] == '\0') {
    EXPECT_NO_THROW(ParseSpec(json));
    return;
  }
  try {
    ParseSpec(json);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    EXPECT_THAT(e.message(), StartsWith(std::string("config.json: ") + c.path + ": "));
    EXPECT_THAT(e.message(), HasSubstr(c.detail));
  }
}

// "linux_namespaces_2_type_48": readable in ctest, and only characters gtest allows.
std::string CaseName(const ::testing::TestParamInfo<BadCase>& info) {
  std::string name;
  for (const char* c = info.param.pointer; *c; ++c) {
    bool alnum = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
    if (alnum) {
      name += *c;
    } else if (!name.empty() && name.back() != '_') {
      name += '_';
    }
  }
  if (!name.empty() && name.back() != '_') name += '_';
  return name + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Cases, BadSpecTest, ::testing::ValuesIn(kBadCases), CaseName);

TEST(BadSpecTest, BaseConfigParses) { EXPECT_NO_THROW(ParseSpec(FullJson())); }

// Not JSON, or not an object: the message says where the parser stopped.
struct MalformedCase {
  std::string json;
  std::string message_start;
};

TEST(MalformedSpecTest, ReportsParseErrorAndOffset) {
  const MalformedCase cases[] = {
      {"", "config.json: malformed JSON at offset 0: The document is empty."},
      {"{\"root\": {\"path\": \"r\"} \"process\": {}}",
       "config.json: malformed JSON at offset 23: Missing a comma or '}'"},
      {"{\"a\": 1} trailing", "config.json: malformed JSON at offset 9: "},
      {"{\"a\": tru}", "config.json: malformed JSON at offset 9: Invalid value."},
      {"{\"a\": \"\\x\"}", "config.json: malformed JSON at offset "},
      {"{\"a\": 1e999}", "config.json: malformed JSON at offset "},
      {"[1, 2]", "config.json: expected a JSON object at the top level"},
      {"\"text\"", "config.json: expected a JSON object at the top level"},
      {"null", "config.json: expected a JSON object at the top level"},
      {std::string("{\"a\"\0: 1}", 9), "config.json: malformed JSON at offset "},
  };
  for (const auto& c : cases) {
    try {
      ParseSpec(c.json);
      ADD_FAILURE() << "accepted: " << c.json;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_THAT(e.message(), StartsWith(c.message_start)) << c.json;
    }
  }
}

TEST(MalformedSpecTest, DuplicateKeysAreRefused) {
  try {
    ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"],
        "user": {"uid": 0, "gid": 0, "uid": 1000}}})");
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "config.json: process.user.uid: duplicate key");
  }
}

TEST(MalformedSpecTest, DeepNestingDoesNotOverflowTheStack) {
  std::string json = "{\"x\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  // Valid JSON with an unknown deep field: ignored; root.path then is missing.
  try {
    ParseSpec(json);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.message(), "config.json: root.path: must not be empty");
  }
  std::string unclosed = "{\"process\": " + std::string(200000, '[');
  EXPECT_THROW(ParseSpec(unclosed), Error);
}

TEST(ValidateSpecTest, BuiltSpecsAreCheckedWithoutFilePrefix) {
  Spec s = DefaultSpec();
  s.linux.namespaces.push_back({NamespaceType::kPid, ""});
  try {
    ValidateSpec(s);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_EQ(e.message(), "linux.namespaces[5].type: duplicate namespace type \"pid\"");
  }
}

TEST(ValidateSpecTest, SwapMayBeUnlimitedWithALimit) {
  Spec s = DefaultSpec();
  s.linux.resources->memory = MemoryResources{};
  s.linux.resources->memory->limit = 1 << 20;
  s.linux.resources->memory->swap = -1;
  EXPECT_NO_THROW(ValidateSpec(s));
  s.linux.resources->memory->swap = 1 << 20;
  EXPECT_NO_THROW(ValidateSpec(s));
  s.linux.resources->memory->swap = (1 << 20) - 1;
  EXPECT_THROW(ValidateSpec(s), Error);
}

}  // namespace
}  // namespace berth::spec
