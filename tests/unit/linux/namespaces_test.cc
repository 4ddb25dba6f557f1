// Which namespaces a spec asks for and how they are made: PlanNamespaces, without root.
#include "runtime/linux/namespaces.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include "runtime/common/error.h"
#include "runtime/spec/parser.h"

namespace berth::container {
namespace {

using spec::NamespaceType;
using ::testing::HasSubstr;

spec::Spec WithNamespaces(std::vector<spec::Namespace> namespaces) {
  spec::Spec s = spec::DefaultSpec();
  s.linux.namespaces = std::move(namespaces);
  return s;
}

std::string PlanError(const spec::Spec& s) {
  try {
    PlanNamespaces(s);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(HostIdFor, MapsThroughTheRangeThatCoversTheId) {
  std::vector<spec::IdMapping> maps = {{0, 100000, 1000}, {1000, 200000, 10}};
  EXPECT_EQ(HostIdFor(maps, 0), 100000u);
  EXPECT_EQ(HostIdFor(maps, 999), 100999u);
  EXPECT_EQ(HostIdFor(maps, 1000), 200000u);
  EXPECT_EQ(HostIdFor(maps, 1009), 200009u);
  EXPECT_EQ(HostIdFor(maps, 1010), std::nullopt);  // past the last range
  EXPECT_EQ(HostIdFor({}, 0), std::nullopt);
  // A range reaching the top of the id space does not wrap.
  EXPECT_EQ(HostIdFor({{4294967290u, 10, 6}}, 4294967295u), 15u);
  EXPECT_EQ(HostIdFor({{4294967290u, 10, 6}}, 3), std::nullopt);
}

TEST(PlanNamespaces, NewNamespacesAreCloneFlags) {
  auto plan = PlanNamespaces(spec::DefaultSpec());
  EXPECT_EQ(plan.clone_flags,
            static_cast<unsigned long>(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
                                       CLONE_NEWNS));
  EXPECT_TRUE(plan.new_network);
  EXPECT_FALSE(plan.new_user);
  EXPECT_FALSE(plan.new_cgroup);
  EXPECT_TRUE(plan.joins.empty());
  EXPECT_EQ(plan.pid_join_path, "");
}

TEST(PlanNamespaces, CgroupNamespaceIsUnsharedLaterNotCloned) {
  auto plan =
      PlanNamespaces(WithNamespaces({{NamespaceType::kMount, ""}, {NamespaceType::kCgroup, ""}}));
  EXPECT_TRUE(plan.new_cgroup);
  EXPECT_EQ(plan.clone_flags & CLONE_NEWCGROUP, 0u);
  EXPECT_EQ(plan.clone_flags, static_cast<unsigned long>(CLONE_NEWNS));
}

TEST(PlanNamespaces, UserNamespaceWithMappings) {
  spec::Spec s = WithNamespaces({{NamespaceType::kUser, ""}, {NamespaceType::kMount, ""}});
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 100000, 65536}};
  auto plan = PlanNamespaces(s);
  EXPECT_TRUE(plan.new_user);
  EXPECT_EQ(plan.clone_flags, static_cast<unsigned long>(CLONE_NEWUSER | CLONE_NEWNS));
}

TEST(PlanNamespaces, UserNamespaceWithoutMappingsIsAnError) {
  spec::Spec s = WithNamespaces({{NamespaceType::kUser, ""}, {NamespaceType::kMount, ""}});
  EXPECT_THAT(PlanError(s), HasSubstr("linux.uidMappings"));
}

TEST(PlanNamespaces, PathsAreJoinedUserFirstWhateverTheSpecOrder) {
  spec::Spec s = WithNamespaces({{NamespaceType::kNetwork, "/proc/self/ns/net"},
                                 {NamespaceType::kMount, ""},
                                 {NamespaceType::kUts, "/proc/self/ns/uts"},
                                 {NamespaceType::kIpc, "/proc/self/ns/ipc"},
                                 {NamespaceType::kUser, "/proc/self/ns/user"},
                                 {NamespaceType::kCgroup, "/proc/self/ns/cgroup"}});
  auto plan = PlanNamespaces(s);
  EXPECT_EQ(plan.clone_flags, static_cast<unsigned long>(CLONE_NEWNS));
  EXPECT_FALSE(plan.new_network);
  EXPECT_FALSE(plan.new_user);
  EXPECT_FALSE(plan.new_cgroup);
  using Join = std::pair<int, std::string>;
  EXPECT_EQ(plan.joins, (std::vector<Join>{{CLONE_NEWUSER, "/proc/self/ns/user"},
                                           {CLONE_NEWIPC, "/proc/self/ns/ipc"},
                                           {CLONE_NEWUTS, "/proc/self/ns/uts"},
                                           {CLONE_NEWNET, "/proc/self/ns/net"},
                                           {CLONE_NEWCGROUP, "/proc/self/ns/cgroup"}}));
}

TEST(PlanNamespaces, APidNamespacePathIsJoinedBeforeCloneNotByTheInit) {
  auto plan = PlanNamespaces(
      WithNamespaces({{NamespaceType::kPid, "/proc/self/ns/pid"}, {NamespaceType::kMount, ""}}));
  EXPECT_EQ(plan.pid_join_path, "/proc/self/ns/pid");
  EXPECT_TRUE(plan.joins.empty());
  EXPECT_EQ(plan.clone_flags & CLONE_NEWPID, 0u);
}

TEST(PlanNamespaces, DuplicateTypeNamesTheSecondEntry) {
  std::string msg = PlanError(WithNamespaces({{NamespaceType::kMount, ""},
                                              {NamespaceType::kNetwork, ""},
                                              {NamespaceType::kNetwork, "/proc/self/ns/net"}}));
  EXPECT_THAT(msg, HasSubstr("linux.namespaces[2].type"));
  EXPECT_THAT(msg, HasSubstr("\"network\""));
}

TEST(PlanNamespaces, ANewMountNamespaceIsRequired) {
  std::string msg = PlanError(WithNamespaces({{NamespaceType::kPid, ""}}));
  EXPECT_THAT(msg, HasSubstr("linux.namespaces"));
  EXPECT_THAT(msg, HasSubstr("\"mount\""));
  // Joining one is not building our own.
  msg = PlanError(WithNamespaces({{NamespaceType::kMount, "/proc/self/ns/mnt"}}));
  EXPECT_THAT(msg, HasSubstr("linux.namespaces[0].path"));
}

TEST(PlanNamespaces, AJoinPathThatDoesNotExistNamesTheField) {
  std::string msg = PlanError(WithNamespaces(
      {{NamespaceType::kMount, ""}, {NamespaceType::kNetwork, "/nonexistent/berth-test/net"}}));
  EXPECT_THAT(msg, HasSubstr("linux.namespaces[1].path"));
  EXPECT_THAT(msg, HasSubstr("/nonexistent/berth-test/net"));
  EXPECT_THAT(msg, HasSubstr("ENOENT"));
}

}  // namespace
}  // namespace berth::container
