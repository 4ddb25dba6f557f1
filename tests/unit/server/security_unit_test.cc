// The pure parts of instance security: subordinate range files, the idmap record, the extra
// specs and the spec changes of the default and the privileged profile.
#include <gtest/gtest.h>

#include <algorithm>

#include "driver/server/config.h"
#include "driver/server/instance_security.h"
#include "driver/server/userns_ranges.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/security/security.h"
#include "runtime/spec/parser.h"
#include "tests/support/test_env.h"

namespace berth::server {
namespace {

bool HasNs(const spec::Spec& s, spec::NamespaceType t) {
  return std::any_of(s.linux.namespaces.begin(), s.linux.namespaces.end(),
                     [&](const auto& n) { return n.type == t; });
}

bool HasCap(const std::vector<std::string>& v, const char* c) {
  return std::find(v.begin(), v.end(), c) != v.end();
}

TEST(SubidRange, FindsTheUserByNameOrUid) {
  std::string text = "alice:100000:65536\nberth:1000000000:1000000000\n999:5:6\n";
  SubidRange r = FindSubidRange(text, "berth", "", "/etc/subuid");
  EXPECT_EQ(r.start, 1000000000u);
  EXPECT_EQ(r.count, 1000000000u);
  EXPECT_EQ(FindSubidRange(text, "nobody-here", "999", "/etc/subuid").start, 5u);
}

TEST(SubidRange, MissingOrMalformedIsAClearError) {
  try {
    FindSubidRange("alice:1:2\n", "berth", "", "/etc/subuid");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(e.message().find("/etc/subuid: no subordinate range for user \"berth\""),
              std::string::npos)
        << e.message();
  }
  EXPECT_THROW(FindSubidRange("berth:x:2\n", "berth", "", "f"), Error);
  EXPECT_THROW(FindSubidRange("berth:1:0\n", "berth", "", "f"), Error);
  EXPECT_THROW(FindSubidRange("berth:4294967000:65536\n", "berth", "", "f"), Error);
}

TEST(UsernsRanges, AllocatesDistinctSlotsPersistsAndReleases) {
  testing::TempDir dir;
  WriteFileAtomic(dir.Sub("subuid"), "berth:200000:196608\n");  // three slots
  WriteFileAtomic(dir.Sub("subgid"), "berth:300000:262144\n");
  std::string instances = dir.Sub("instances");
  MakeDirs(instances + "/a");
  MakeDirs(instances + "/b");
  MakeDirs(instances + "/c");
  MakeDirs(instances + "/d");
  UsernsRanges ranges(dir.path(), "berth", 65536, instances);
  EXPECT_EQ(ranges.slots(), 3u);
  IdRange a = ranges.Allocate(instances + "/a");
  IdRange b = ranges.Allocate(instances + "/b");
  EXPECT_EQ(a, (IdRange{200000, 300000, 65536}));
  EXPECT_EQ(b, (IdRange{265536, 365536, 65536}));
  EXPECT_EQ(UsernsRanges::Load(instances + "/a"), a);
  EXPECT_FALSE(UsernsRanges::Load(instances + "/d").has_value());
  // A new allocator (berthd restarted) sees what the records hold.
  UsernsRanges again(dir.path(), "berth", 65536, instances);
  IdRange c = again.Allocate(instances + "/c");
  EXPECT_EQ(c.uid, 331072u);
  try {
    again.Allocate(instances + "/d");
    FAIL() << "four slots out of three";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kResourceExhausted);
  }
  RemoveTree(instances + "/a");  // delete releases the slot
  EXPECT_EQ(again.Allocate(instances + "/d"), a);
}

TEST(UsernsRanges, AFreedSlotIsReusedOnlyWhenNoOtherIsFree) {
  testing::TempDir dir;
  WriteFileAtomic(dir.Sub("subuid"), "berth:200000:196608\n");  // three slots
  WriteFileAtomic(dir.Sub("subgid"), "berth:300000:196608\n");
  std::string instances = dir.Sub("instances");
  for (const char* name : {"a", "b", "c", "d", "e"}) MakeDirs(instances + "/" + name);
  UsernsRanges ranges(dir.path(), "berth", 65536, instances);
  EXPECT_EQ(ranges.Peek(), (IdRange{200000, 300000, 65536}));  // the records are read
  IdRange a = ranges.Allocate(instances + "/a");
  RemoveTree(instances + "/a");  // deleted: its ids go to another instance last
  // What berthd makes a shell and a mapping namespace for, ahead of the next spawn: what
  // the next Allocate gives.
  auto next = ranges.Peek();
  IdRange b = ranges.Allocate(instances + "/b");
  EXPECT_EQ(next, b);
  EXPECT_EQ(ranges.Peek(), (IdRange{331072, 431072, 65536}));
  IdRange c = ranges.Allocate(instances + "/c");
  EXPECT_FALSE(ranges.Peek().has_value());  // known-free ones gone: the next reads again
  EXPECT_EQ(b.uid, 265536u);
  EXPECT_EQ(c.uid, 331072u);
  // The known-free slots are gone: the records are read again and a's slot is found.
  EXPECT_EQ(ranges.Allocate(instances + "/d"), a);
  // All three are in use now.
  try {
    ranges.Allocate(instances + "/e");
    FAIL() << "four slots out of three";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kResourceExhausted);
  }
}

TEST(UsernsRanges, TooSmallARangeIsRefused) {
  testing::TempDir dir;
  WriteFileAtomic(dir.Sub("subuid"), "berth:200000:1000\n");
  WriteFileAtomic(dir.Sub("subgid"), "berth:200000:65536\n");
  EXPECT_THROW(UsernsRanges(dir.path(), "berth", 65536, dir.Sub("i")), Error);
}

TEST(SecurityRequest, PrivilegedNeedsTheConfig) {
  Flavor f;
  f.extra_specs["berth:privileged"] = "true";
  try {
    ParseSecurityRequest(f, false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(e.message().find("allow_privileged = true"), std::string::npos) << e.message();
  }
  EXPECT_TRUE(ParseSecurityRequest(f, true).privileged);
  f.extra_specs["berth:privileged"] = "maybe";
  EXPECT_THROW(ParseSecurityRequest(f, true), Error);
  Flavor raw;
  raw.extra_specs["berth:net_raw"] = "true";
  EXPECT_TRUE(ParseSecurityRequest(raw, false).net_raw);
  EXPECT_FALSE(ParseSecurityRequest(Flavor{}, false).net_raw);
}

spec::Spec BaseSpec() {
  spec::Spec s = spec::DefaultSpec();
  s.root.path = "/tmp/rootfs";
  s.process.capabilities = security::DefaultCapabilities();
  s.linux.seccomp = security::DefaultSeccompProfile();
  return s;
}

TEST(SecurityProfile, DefaultAddsUserAndCgroupNamespacesAndDropsNetRaw) {
  spec::Spec s = BaseSpec();
  ApplySecurityProfile(s, SecurityRequest{}, IdRange{1000000000, 1000065536, 65536});
  EXPECT_TRUE(HasNs(s, spec::NamespaceType::kUser));
  EXPECT_TRUE(HasNs(s, spec::NamespaceType::kCgroup));
  ASSERT_EQ(s.linux.uid_mappings.size(), 1u);
  EXPECT_EQ(s.linux.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(s.linux.uid_mappings[0].host_id, 1000000000u);
  EXPECT_EQ(s.linux.gid_mappings[0].host_id, 1000065536u);
  EXPECT_FALSE(HasCap(s.process.capabilities->bounding, "CAP_NET_RAW"));
  EXPECT_FALSE(HasCap(s.process.capabilities->bounding, "CAP_SYS_ADMIN"));
  EXPECT_TRUE(HasCap(s.process.capabilities->bounding, "CAP_CHOWN"));
  EXPECT_TRUE(s.linux.seccomp.has_value());
  EXPECT_TRUE(s.process.no_new_privileges);
  EXPECT_FALSE(s.linux.masked_paths.empty());

  spec::Spec raw = BaseSpec();
  ApplySecurityProfile(raw, SecurityRequest{.privileged = false, .net_raw = true}, std::nullopt);
  EXPECT_TRUE(HasCap(raw.process.capabilities->bounding, "CAP_NET_RAW"));
  EXPECT_FALSE(HasNs(raw, spec::NamespaceType::kUser)) << "no range: [security] userns = false";
}

TEST(SecurityProfile, PrivilegedHasEverythingAndNoUserNamespace) {
  spec::Spec s = BaseSpec();
  ApplySecurityProfile(s, SecurityRequest{.privileged = true, .net_raw = false}, std::nullopt);
  EXPECT_TRUE(HasCap(s.process.capabilities->bounding, "CAP_SYS_ADMIN"));  // held by root here
  EXPECT_FALSE(s.linux.seccomp.has_value());
  EXPECT_TRUE(s.linux.masked_paths.empty());
  EXPECT_FALSE(HasNs(s, spec::NamespaceType::kUser));
}

TEST(SecurityConfig, ParsesTheSecuritySection) {
  Config c = ParseConfig(
      "[security]\nuserns = false\nuserns_user = other\nuserns_range_size = 4096\n"
      "allow_privileged = true\nsubid_dir = /x\n");
  EXPECT_FALSE(c.userns);
  EXPECT_EQ(c.userns_user, "other");
  EXPECT_EQ(c.userns_range_size, 4096u);
  EXPECT_TRUE(c.allow_privileged);
  EXPECT_EQ(c.subid_dir, "/x");
  Config d = ParseConfig("");
  EXPECT_TRUE(d.userns);
  EXPECT_FALSE(d.allow_privileged);
  EXPECT_THROW(ParseConfig("[security]\nallow_privileged = perhaps\n"), Error);
  EXPECT_THROW(ParseConfig("[security]\nuserns_range_size = 10\n"), Error);
}

}  // namespace
}  // namespace berth::server
