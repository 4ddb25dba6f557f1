// The root filesystem plan: which mounts, nodes and masks a spec turns into, without root.
#include "runtime/linux/mount_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <algorithm>

#include "runtime/common/error.h"
#include "runtime/spec/parser.h"

namespace berth::container {
namespace {

using ::testing::HasSubstr;

// ---- ParseMountOptions ------------------------------------------------------------------

TEST(ParseMountOptions, FlagWordsBecomeFlags) {
  auto f = ParseMountOptions({"nosuid", "nodev", "noexec", "ro"});
  EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY));
  EXPECT_EQ(f.data, "");
  EXPECT_EQ(f.propagation, 0u);
}

TEST(ParseMountOptions, OtherWordsBecomeDataInOrder) {
  auto f = ParseMountOptions({"nosuid", "mode=755", "strictatime", "size=65536k"});
  EXPECT_EQ(f.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(f.data, "mode=755,size=65536k");
  EXPECT_EQ(ParseMountOptions({"newinstance", "ptmxmode=0666"}).data, "newinstance,ptmxmode=0666");
}

TEST(ParseMountOptions, LaterWordsOverrideEarlierOnes) {
  EXPECT_EQ(ParseMountOptions({"ro", "rw"}).flags, 0u);
  EXPECT_EQ(ParseMountOptions({"rw", "ro"}).flags, static_cast<unsigned long>(MS_RDONLY));
  EXPECT_EQ(ParseMountOptions({"noexec", "nosuid", "exec"}).flags,
            static_cast<unsigned long>(MS_NOSUID));
  EXPECT_EQ(ParseMountOptions({"noatime", "atime"}).flags, 0u);
}

TEST(ParseMountOptions, BindAndRbind) {
  EXPECT_EQ(ParseMountOptions({"bind"}).flags, static_cast<unsigned long>(MS_BIND));
  EXPECT_EQ(ParseMountOptions({"rbind", "ro"}).flags,
            static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
}

TEST(ParseMountOptions, PropagationIsKeptApartAndTheLastOneWins) {
  auto f = ParseMountOptions({"rprivate"});
  EXPECT_EQ(f.propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(f.flags, 0u);
  EXPECT_EQ(ParseMountOptions({"shared", "rslave"}).propagation,
            static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_EQ(ParseMountOptions({"unbindable"}).propagation,
            static_cast<unsigned long>(MS_UNBINDABLE));
  EXPECT_EQ(ParseMountOptions({"rshared"}).propagation,
            static_cast<unsigned long>(MS_SHARED | MS_REC));
}

TEST(ParseMountOptions, WordsThatMeanNothingToTheKernelAreDropped) {
  auto f = ParseMountOptions({"defaults", "tmpcopyup", ""});
  EXPECT_EQ(f.flags, 0u);
  EXPECT_EQ(f.data, "");
  EXPECT_EQ(f.propagation, 0u);
}

// ---- BuildRootfsPlan --------------------------------------------------------------------

spec::Spec TestSpec() {
  spec::Spec s = spec::DefaultSpec();
  s.root.path = "/var/lib/berth/rootfs";
  s.hostname = "box";
  return s;
}

RootfsHostInfo V1Host() {
  RootfsHostInfo h;
  h.new_network_namespace = true;
  h.cgroup_host.version = cgroup::CgroupVersion::kV1;
  for (const char* c : {"cpu", "memory", "pids"}) {
    h.cgroup_host.v1_mounts[c] = std::string("/sys/fs/cgroup/") + c;
    h.cgroup_dirs[c] = std::string("/sys/fs/cgroup/") + c + "/berth/c1";
  }
  return h;
}

RootfsHostInfo V2Host(bool cgroup_namespace) {
  RootfsHostInfo h;
  h.new_network_namespace = true;
  h.new_cgroup_namespace = cgroup_namespace;
  h.cgroup_host.version = cgroup::CgroupVersion::kV2;
  h.cgroup_host.unified_mount = "/sys/fs/cgroup";
  h.unified_dir = "/sys/fs/cgroup/berth/c1";
  return h;
}

std::vector<std::string> Destinations(const RootfsPlan& plan) {
  std::vector<std::string> out;
  for (const auto& m : plan.mounts) out.push_back(m.destination);
  return out;
}

const MountEntry* FindMount(const RootfsPlan& plan, const std::string& destination) {
  for (const auto& m : plan.mounts) {
    if (m.destination == destination) return &m;
  }
  return nullptr;
}

// The message of the Error that BuildRootfsPlan throws (empty, with a failure, if none).
std::string PlanError(const spec::Spec& s, const RootfsHostInfo& h = V1Host()) {
  try {
    BuildRootfsPlan(s, h);
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(BuildRootfsPlan, MountsComeInSpecOrderWithTheCgroupMountExpandedOnV1) {
  auto plan = BuildRootfsPlan(TestSpec(), V1Host());
  EXPECT_EQ(Destinations(plan), (std::vector<std::string>{
                                    "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                    "/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory",
                                    "/sys/fs/cgroup/pids", "/sys/fs/cgroup"}));
  EXPECT_EQ(plan.rootfs, "/var/lib/berth/rootfs");
  const auto& proc = plan.mounts[0];
  EXPECT_EQ(proc.type, "proc");
  EXPECT_EQ(proc.source, "proc");
  EXPECT_FALSE(proc.bind);
  const auto& dev = plan.mounts[1];
  EXPECT_EQ(dev.type, "tmpfs");
  EXPECT_EQ(dev.flags.flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(dev.flags.data, "mode=755,size=65536k");
  // With its own network namespace the container gets a sysfs of its own, read-only.
  const auto& sys = plan.mounts[5];
  EXPECT_EQ(sys.type, "sysfs");
  EXPECT_FALSE(sys.bind);
  EXPECT_TRUE(sys.flags.flags & MS_RDONLY);
}

TEST(BuildRootfsPlan, V1CgroupMountIsATmpfsWithEachControllersOwnGroupBoundReadOnly) {
  auto plan = BuildRootfsPlan(TestSpec(), V1Host());
  ASSERT_EQ(plan.mounts.size(), 11u);
  const auto& tmpfs = plan.mounts[6];
  EXPECT_EQ(tmpfs.type, "tmpfs");
  EXPECT_EQ(tmpfs.destination, "/sys/fs/cgroup");
  EXPECT_FALSE(tmpfs.bind);
  EXPECT_EQ(tmpfs.flags.flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV | MS_NOEXEC));
  EXPECT_EQ(tmpfs.flags.data, "mode=755");
  for (size_t i = 7; i < 10; ++i) {
    const auto& b = plan.mounts[i];
    std::string controller = b.destination.substr(b.destination.rfind('/') + 1);
    EXPECT_EQ(b.source, "/sys/fs/cgroup/" + controller + "/berth/c1");
    EXPECT_TRUE(b.bind);
    EXPECT_TRUE(b.remount_after_bind);
    EXPECT_TRUE(b.flags.flags & MS_BIND);
    EXPECT_TRUE(b.flags.flags & MS_RDONLY) << b.destination;
    EXPECT_TRUE(b.flags.flags & MS_NOSUID);
  }
  // Then the tmpfs itself becomes read-only, once its sub-mounts are in place.
  const auto& remount = plan.mounts[10];
  EXPECT_TRUE(remount.flags.flags & MS_REMOUNT);
  EXPECT_TRUE(remount.flags.flags & MS_RDONLY);
  EXPECT_FALSE(remount.bind);
}

TEST(BuildRootfsPlan, V1CgroupMountWithoutRoStaysWritable) {
  spec::Spec s = TestSpec();
  for (auto& m : s.mounts) {
    if (m.type == "cgroup") m.options = {"nosuid", "noexec", "nodev"};
  }
  auto plan = BuildRootfsPlan(s, V1Host());
  for (const auto& m : plan.mounts) {
    EXPECT_FALSE(m.flags.flags & MS_REMOUNT) << m.destination;
    if (m.destination.rfind("/sys/fs/cgroup/", 0) == 0) {
      EXPECT_FALSE(m.flags.flags & MS_RDONLY) << m.destination;
    }
  }
}

TEST(BuildRootfsPlan, V2WithACgroupNamespaceMountsCgroup2) {
  auto plan = BuildRootfsPlan(TestSpec(), V2Host(true));
  auto cg = std::count_if(plan.mounts.begin(), plan.mounts.end(), [](const MountEntry& m) {
    return m.destination.rfind("/sys/fs/cgroup", 0) == 0;
  });
  EXPECT_EQ(cg, 1);
  const MountEntry* m = FindMount(plan, "/sys/fs/cgroup");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->type, "cgroup2");
  EXPECT_FALSE(m->bind);
  EXPECT_TRUE(m->flags.flags & MS_RDONLY);
  EXPECT_TRUE(m->flags.flags & MS_NOEXEC);
}

TEST(BuildRootfsPlan, V2WithoutACgroupNamespaceBindsTheContainersOwnGroup) {
  auto plan = BuildRootfsPlan(TestSpec(), V2Host(false));
  const MountEntry* m = FindMount(plan, "/sys/fs/cgroup");
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->bind);
  EXPECT_EQ(m->source, "/sys/fs/cgroup/berth/c1");
  EXPECT_TRUE(m->remount_after_bind);
  EXPECT_TRUE(m->flags.flags & MS_RDONLY);
}

TEST(BuildRootfsPlan, SysfsIsTheHostsBoundReadOnlyWithoutANetworkNamespace) {
  RootfsHostInfo h = V1Host();
  h.new_network_namespace = false;
  auto plan = BuildRootfsPlan(TestSpec(), h);
  const MountEntry* sys = FindMount(plan, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_TRUE(sys->bind);
  EXPECT_EQ(sys->source, "/sys");
  EXPECT_TRUE(sys->remount_after_bind);
  EXPECT_EQ(sys->flags.flags & (MS_BIND | MS_REC | MS_RDONLY),
            static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
}

TEST(BuildRootfsPlan, DevIsPopulatedOnlyWhenItIsAFreshTmpfs) {
  auto plan = BuildRootfsPlan(TestSpec(), V1Host());
  EXPECT_TRUE(plan.populate_dev);
  ASSERT_EQ(plan.devices.size(), DefaultDevices().size());
  for (size_t i = 0; i < plan.devices.size(); ++i) {
    EXPECT_EQ(plan.devices[i].path, DefaultDevices()[i].path);
  }
  std::vector<std::string> links;
  for (const auto& [target, link] : plan.dev_symlinks) links.push_back(link + "->" + target);
  EXPECT_THAT(
      links, ::testing::IsSupersetOf(
                 {"/dev/fd->/proc/self/fd", "/dev/stdin->/proc/self/fd/0", "/dev/ptmx->pts/ptmx"}));

  // The host's /dev bound in: nothing to create.
  spec::Spec s = TestSpec();
  s.mounts[1] = {"/dev", "bind", "/dev", {"rbind", "nosuid"}};
  auto bound = BuildRootfsPlan(s, V1Host());
  EXPECT_FALSE(bound.populate_dev);
  EXPECT_TRUE(bound.devices.empty());
  EXPECT_TRUE(bound.dev_symlinks.empty());
  // No /dev mount at all: the image's own /dev is used as it is.
  s.mounts.erase(s.mounts.begin() + 1);
  EXPECT_FALSE(BuildRootfsPlan(s, V1Host()).populate_dev);
}

TEST(BuildRootfsPlan, SpecDevicesReplaceDefaultsWithTheSamePathAndAddTheRest) {
  spec::Spec s = TestSpec();
  s.linux.devices = {{"/dev/null", "c", 1, 3, 0600, 5, 6},
                     {"/dev/fuse", "c", 10, 229, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/loop0", "b", 7, 0, 0660, std::nullopt, std::nullopt},
                     {"/dev/kmsg", "u", 1, 11, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/fifo", "p", 0, 0, std::nullopt, std::nullopt, std::nullopt}};
  auto plan = BuildRootfsPlan(s, V1Host());
  auto count = [&](const std::string& path) {
    return std::count_if(plan.devices.begin(), plan.devices.end(),
                         [&](const DeviceNode& d) { return d.path == path; });
  };
  EXPECT_EQ(count("/dev/null"), 1);
  EXPECT_EQ(plan.devices.size(), DefaultDevices().size() + 4);
  auto find = [&](const std::string& path) {
    return *std::find_if(plan.devices.begin(), plan.devices.end(),
                         [&](const DeviceNode& d) { return d.path == path; });
  };
  DeviceNode null = find("/dev/null");
  EXPECT_EQ(null.mode, 0600u);
  EXPECT_EQ(null.uid, 5u);
  EXPECT_EQ(null.gid, 6u);
  DeviceNode fuse = find("/dev/fuse");
  EXPECT_EQ(fuse.type, 'c');
  EXPECT_EQ(fuse.major, 10u);
  EXPECT_EQ(fuse.minor, 229u);
  EXPECT_EQ(fuse.mode, 0666u);  // the default when the spec gives none
  EXPECT_EQ(find("/dev/loop0").type, 'b');
  EXPECT_EQ(find("/dev/kmsg").type, 'c');  // "u": unbuffered character device
  EXPECT_EQ(find("/dev/fifo").type, 'p');
}

TEST(BuildRootfsPlan, BindMountsGetARemountOnlyWhenTheyAskForRestrictions) {
  spec::Spec s = TestSpec();
  s.mounts.push_back({"/data", "bind", "/srv/data", {"rbind", "ro"}});
  s.mounts.push_back({"/cache", "none", "/srv/cache", {"bind"}});
  s.mounts.push_back({"/scratch", "tmpfs", "", {"size=1m"}});
  auto plan = BuildRootfsPlan(s, V1Host());
  const MountEntry* data = FindMount(plan, "/data");
  ASSERT_NE(data, nullptr);
  EXPECT_TRUE(data->bind);
  EXPECT_TRUE(data->remount_after_bind);
  EXPECT_EQ(data->source, "/srv/data");
  EXPECT_EQ(data->flags.flags, static_cast<unsigned long>(MS_BIND | MS_REC | MS_RDONLY));
  const MountEntry* cache = FindMount(plan, "/cache");
  ASSERT_NE(cache, nullptr);
  EXPECT_TRUE(cache->bind);
  EXPECT_FALSE(cache->remount_after_bind);
  const MountEntry* scratch = FindMount(plan, "/scratch");
  ASSERT_NE(scratch, nullptr);
  EXPECT_FALSE(scratch->bind);
  EXPECT_EQ(scratch->flags.data, "size=1m");
  // Type "bind" alone, without the option, is a bind too.
  s.mounts.push_back({"/typed", "bind", "/srv/typed", {}});
  const MountEntry* typed = FindMount(BuildRootfsPlan(s, V1Host()), "/typed");
  ASSERT_NE(typed, nullptr);
  EXPECT_TRUE(typed->bind);
}

TEST(BuildRootfsPlan, HostnameOnlyWithANewUtsNamespace) {
  spec::Spec s = TestSpec();
  EXPECT_EQ(BuildRootfsPlan(s, V1Host()).hostname, "box");
  for (auto& ns : s.linux.namespaces) {
    if (ns.type == spec::NamespaceType::kUts) ns.path = "/proc/1/ns/uts";
  }
  EXPECT_EQ(BuildRootfsPlan(s, V1Host()).hostname, "");
}

TEST(BuildRootfsPlan, CopiesRootMasksAndPropagation) {
  spec::Spec s = TestSpec();
  auto plan = BuildRootfsPlan(s, V1Host());
  EXPECT_TRUE(plan.readonly_root);
  EXPECT_EQ(plan.root_propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(plan.masked_paths, s.linux.masked_paths);
  EXPECT_EQ(plan.readonly_paths, s.linux.readonly_paths);
  EXPECT_FALSE(plan.bind_devices);
  s.linux.rootfs_propagation = "slave";
  EXPECT_EQ(BuildRootfsPlan(s, V1Host()).root_propagation, static_cast<unsigned long>(MS_SLAVE));
  s.linux.rootfs_propagation = "rshared";
  EXPECT_EQ(BuildRootfsPlan(s, V1Host()).root_propagation,
            static_cast<unsigned long>(MS_SHARED | MS_REC));
  RootfsHostInfo userns = V1Host();
  userns.new_user_namespace = true;
  EXPECT_TRUE(BuildRootfsPlan(s, userns).bind_devices);
}

TEST(BuildRootfsPlan, ErrorsNameTheField) {
  spec::Spec s = TestSpec();
  s.mounts[2].destination = "dev/pts";
  EXPECT_THAT(PlanError(s), HasSubstr("mounts[2].destination"));

  s = TestSpec();
  s.mounts.push_back({"/data/../../etc", "bind", "/srv", {"bind"}});
  EXPECT_THAT(PlanError(s), HasSubstr("mounts[7].destination"));

  s = TestSpec();
  s.mounts.push_back({"/data", "bind", "", {"rbind"}});
  EXPECT_THAT(PlanError(s), HasSubstr("mounts[7].source"));

  s = TestSpec();
  s.mounts.push_back({"/data", "", "somewhere", {}});
  EXPECT_THAT(PlanError(s), HasSubstr("mounts[7].type"));

  s = TestSpec();
  s.linux.devices = {{"/dev/ok", "c", 1, 3, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/weird", "x", 1, 3, std::nullopt, std::nullopt, std::nullopt}};
  std::string msg = PlanError(s);
  EXPECT_THAT(msg, HasSubstr("linux.devices[1].type"));
  EXPECT_THAT(msg, HasSubstr("\"x\""));

  s = TestSpec();
  s.linux.devices = {{"/etc/shadow", "c", 1, 3, std::nullopt, std::nullopt, std::nullopt}};
  EXPECT_THAT(PlanError(s), HasSubstr("linux.devices[0].path"));

  s = TestSpec();
  s.linux.devices = {{"/dev/../etc/x", "c", 1, 3, std::nullopt, std::nullopt, std::nullopt}};
  EXPECT_THAT(PlanError(s), HasSubstr("linux.devices[0].path"));

  s = TestSpec();
  s.linux.masked_paths.push_back("proc/kcore");
  EXPECT_THAT(PlanError(s), HasSubstr("linux.maskedPaths[10]"));

  s = TestSpec();
  s.linux.readonly_paths = {"/proc/../sys"};
  EXPECT_THAT(PlanError(s), HasSubstr("linux.readonlyPaths[0]"));

  s = TestSpec();
  s.linux.rootfs_propagation = "sideways";
  EXPECT_THAT(PlanError(s), HasSubstr("linux.rootfsPropagation"));
}

// ---- EffectiveDeviceRules ---------------------------------------------------------------

std::string RuleText(const spec::DeviceRule& r) {
  auto num = [](const std::optional<int64_t>& n) { return n ? std::to_string(*n) : "*"; };
  return std::string(r.allow ? "allow " : "deny ") + r.type + " " + num(r.major) + ":" +
         num(r.minor) + " " + r.access;
}

std::vector<std::string> RuleTexts(const std::vector<spec::DeviceRule>& rules) {
  std::vector<std::string> out;
  for (const auto& r : rules) out.push_back(RuleText(r));
  return out;
}

TEST(EffectiveDeviceRules, SpecRulesFirstThenTheStandardNodesThenSpecDevices) {
  spec::Spec s = TestSpec();  // denies everything
  s.linux.devices = {{"/dev/fuse", "c", 10, 229, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/loop0", "b", 7, 0, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/fifo", "p", 0, 0, std::nullopt, std::nullopt, std::nullopt},
                     {"/dev/kmsg", "u", 1, 11, std::nullopt, std::nullopt, std::nullopt}};
  EXPECT_EQ(RuleTexts(EffectiveDeviceRules(s)),
            (std::vector<std::string>{
                "deny a *:* rwm", "allow c *:* m", "allow b *:* m", "allow c 1:3 rwm",
                "allow c 1:5 rwm", "allow c 1:7 rwm", "allow c 1:8 rwm", "allow c 1:9 rwm",
                "allow c 5:0 rwm", "allow c 5:1 rwm", "allow c 5:2 rwm", "allow c 136:* rwm",
                "allow c 10:229 rwm", "allow b 7:0 rwm", "allow c 1:11 rwm"}));
}

TEST(EffectiveDeviceRules, WithoutResourcesOnlyTheStandardAllowList) {
  spec::Spec s = TestSpec();
  s.linux.resources.reset();
  auto rules = RuleTexts(EffectiveDeviceRules(s));
  ASSERT_FALSE(rules.empty());
  EXPECT_EQ(rules.front(), "allow c *:* m");
  EXPECT_EQ(rules.back(), "allow c 136:* rwm");
  for (const auto& r : rules) EXPECT_THAT(r, ::testing::StartsWith("allow ")) << r;
}

}  // namespace
}  // namespace berth::container
