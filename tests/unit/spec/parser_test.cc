// ParseSpec on real config.json files: crun's and runc's `spec` output and a file that sets
// every field Berth models (plus fields it ignores).
#include "runtime/spec/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"
#include "tests/unit/spec/spec_equal.h"

namespace berth::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;

std::string TestData(const std::string& name) {
  return ReadFile(berth::testing::SourceDir() + "/tests/unit/spec/testdata/" + name);
}

TEST(ParseSpecTest, FullConfigHasEveryValue) {
  Spec s = ParseSpec(TestData("full.json"));
  EXPECT_EQ(s.oci_version, "1.1.0");

  const Process& p = s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size.has_value());
  EXPECT_EQ(p.console_size->height, 25u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1001u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_THAT(p.user.additional_gids, ElementsAre(5u, 6u));
  EXPECT_THAT(p.args, ElementsAre("/bin/app", "--flag", "value"));
  EXPECT_THAT(p.env, ElementsAre("PATH=/usr/bin:/bin", "HOME=/home/app"));
  EXPECT_EQ(p.cwd, "/srv");
  ASSERT_TRUE(p.capabilities.has_value());
  EXPECT_THAT(p.capabilities->bounding, ElementsAre("CAP_CHOWN", "CAP_KILL"));
  EXPECT_THAT(p.capabilities->effective, ElementsAre("CAP_KILL"));
  EXPECT_THAT(p.capabilities->inheritable, IsEmpty());
  EXPECT_THAT(p.capabilities->permitted, ElementsAre("CAP_CHOWN", "CAP_KILL"));
  EXPECT_THAT(p.capabilities->ambient, ElementsAre("CAP_KILL"));
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0], (Rlimit{"RLIMIT_NOFILE", 4096, 1024}));
  EXPECT_EQ(p.rlimits[1], (Rlimit{"RLIMIT_CORE", UINT64_MAX, 0}));
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.oom_score_adj, -500);

  EXPECT_EQ(s.root.path, "rootfs");
  EXPECT_FALSE(s.root.readonly);
  EXPECT_EQ(s.hostname, "full-host");
  ASSERT_EQ(s.mounts.size(), 2u);
  EXPECT_EQ(s.mounts[0], (Mount{"/proc", "proc", "proc", {}}));
  EXPECT_EQ(s.mounts[1], (Mount{"/data", "bind", "/var/data", {"rbind", "rw"}}));
  EXPECT_THAT(s.annotations,
              ElementsAre(Pair("com.example.key", "v"),
                          Pair("org.openstack.nova.uuid", "2a4e9b1c-0000-4000-8000-000000000001")));

  const Linux& l = s.linux;
  ASSERT_EQ(l.namespaces.size(), 7u);
  EXPECT_EQ(l.namespaces[0], (Namespace{NamespaceType::kPid, ""}));
  EXPECT_EQ(l.namespaces[1], (Namespace{NamespaceType::kNetwork, "/var/run/netns/berth"}));
  EXPECT_EQ(l.namespaces[2].type, NamespaceType::kIpc);
  EXPECT_EQ(l.namespaces[3].type, NamespaceType::kUts);
  EXPECT_EQ(l.namespaces[4].type, NamespaceType::kMount);
  EXPECT_EQ(l.namespaces[5].type, NamespaceType::kUser);
  EXPECT_EQ(l.namespaces[6].type, NamespaceType::kCgroup);
  EXPECT_THAT(l.uid_mappings, ElementsAre(IdMapping{0, 100000, 65536}));
  EXPECT_THAT(l.gid_mappings, ElementsAre(IdMapping{0, 200000, 65536}));
  ASSERT_EQ(l.devices.size(), 3u);
  EXPECT_EQ(l.devices[0], (Device{"/dev/fuse", "c", 10, 229, 0666, 0, 0}));
  EXPECT_EQ(l.devices[1],
            (Device{"/dev/sda", "b", 8, 0, std::nullopt, std::nullopt, std::nullopt}));
  EXPECT_EQ(l.devices[2].type, "p");
  EXPECT_EQ(l.cgroups_path, "/berth/full");

  ASSERT_TRUE(l.resources.has_value());
  const Resources& r = *l.resources;
  ASSERT_EQ(r.devices.size(), 3u);
  EXPECT_EQ(r.devices[0], (DeviceRule{false, "a", std::nullopt, std::nullopt, "rwm"}));
  EXPECT_EQ(r.devices[1], (DeviceRule{true, "c", 10, 229, "rw"}));
  EXPECT_EQ(r.devices[2], (DeviceRule{true, "b", 8, std::nullopt, "r"}));
  ASSERT_TRUE(r.memory.has_value());
  EXPECT_EQ(r.memory->limit, 536870912);
  EXPECT_EQ(r.memory->reservation, 268435456);
  EXPECT_EQ(r.memory->swap, 1073741824);
  EXPECT_EQ(r.memory->swappiness, 60u);
  EXPECT_EQ(r.memory->disable_oom_killer, true);
  ASSERT_TRUE(r.cpu.has_value());
  EXPECT_EQ(r.cpu->shares, 1024u);
  EXPECT_EQ(r.cpu->quota, 50000);
  EXPECT_EQ(r.cpu->period, 100000u);
  EXPECT_EQ(r.cpu->realtime_runtime, 950000);
  EXPECT_EQ(r.cpu->realtime_period, 1000000u);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(r.cpu->mems, "0");
  ASSERT_TRUE(r.pids.has_value());
  EXPECT_EQ(r.pids->limit, 128);
  ASSERT_TRUE(r.block_io.has_value());
  EXPECT_EQ(r.block_io->weight, 500);
  EXPECT_EQ(r.block_io->leaf_weight, 300);
  EXPECT_THAT(r.block_io->weight_device, ElementsAre(BlockIoDeviceWeight{8, 0, 200, 100}));
  EXPECT_THAT(r.block_io->throttle_read_bps_device, ElementsAre(BlockIoDeviceRate{8, 0, 1048576}));
  EXPECT_THAT(r.block_io->throttle_write_bps_device,
              ElementsAre(BlockIoDeviceRate{8, 16, 2097152}));
  EXPECT_THAT(r.block_io->throttle_read_iops_device, ElementsAre(BlockIoDeviceRate{8, 32, 300}));
  EXPECT_THAT(r.block_io->throttle_write_iops_device, ElementsAre(BlockIoDeviceRate{8, 48, 400}));
  EXPECT_THAT(r.unified,
              ElementsAre(Pair("io.weight", "default 100"), Pair("memory.high", "400M")));

  ASSERT_TRUE(l.seccomp.has_value());
  const Seccomp& sc = *l.seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_THAT(sc.architectures, ElementsAre("SCMP_ARCH_X86_64", "SCMP_ARCH_X86"));
  EXPECT_THAT(sc.flags, ElementsAre("SECCOMP_FILTER_FLAG_LOG"));
  ASSERT_EQ(sc.syscalls.size(), 3u);
  EXPECT_THAT(sc.syscalls[0].names, ElementsAre("read", "write"));
  EXPECT_EQ(sc.syscalls[0].action, "SCMP_ACT_ALLOW");
  EXPECT_EQ(sc.syscalls[0].errno_ret, std::nullopt);
  EXPECT_THAT(sc.syscalls[1].args,
              ElementsAre(SeccompArg{0, 8, 0, "SCMP_CMP_EQ"},
                          SeccompArg{1, 4294967295u, 3, "SCMP_CMP_MASKED_EQ"}));
  EXPECT_EQ(sc.syscalls[2].errno_ret, 38u);

  EXPECT_THAT(l.masked_paths, ElementsAre("/proc/kcore"));
  EXPECT_THAT(l.readonly_paths, ElementsAre("/proc/sys"));
  EXPECT_EQ(l.rootfs_propagation, "rslave");
  EXPECT_THAT(l.sysctl,
              ElementsAre(Pair("kernel.msgmax", "8192"), Pair("net.ipv4.ip_forward", "1")));
}

// `crun spec` and `runc spec` output is what users start from; it must parse, and our
// default must match it except where Berth deliberately differs.
void ExpectLikeDefault(const std::string& file, const std::string& hostname,
                       const std::string& oci_version) {
  Spec s = ParseSpec(TestData(file));
  Spec d = DefaultSpec();
  EXPECT_EQ(s.oci_version, oci_version);
  EXPECT_EQ(s.hostname, hostname);
  // crun/runc: ambient set, inheritable empty (crun even writes "inheritable": [], runc
  // leaves it out); Berth: inheritable set, ambient empty. devpts: they add gid=5.
  ASSERT_TRUE(s.process.capabilities.has_value());
  EXPECT_EQ(s.process.capabilities->ambient, d.process.capabilities->inheritable);
  EXPECT_THAT(s.process.capabilities->inheritable, IsEmpty());
  EXPECT_EQ(s.mounts[2].options.back(), "gid=5");
  s.mounts[2].options.pop_back();
  s.process.capabilities->inheritable = s.process.capabilities->ambient;
  s.process.capabilities->ambient.clear();
  s.hostname = d.hostname;
  s.oci_version = d.oci_version;
  EXPECT_EQ(s.process, d.process);
  EXPECT_EQ(s.root, d.root);
  EXPECT_EQ(s.mounts, d.mounts);
  EXPECT_EQ(s.linux, d.linux);
  EXPECT_EQ(s, d);
}

TEST(ParseSpecTest, CrunSpecOutputParses) { ExpectLikeDefault("crun_spec.json", "crun", "1.0.0"); }

TEST(ParseSpecTest, RuncSpecOutputParses) {
  ExpectLikeDefault("runc_spec.json", "runc", "1.0.2-dev");
}

TEST(ParseSpecTest, MinimalConfigKeepsDefaults) {
  Spec s = ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"]}})");
  EXPECT_EQ(s.process.cwd, "/");
  EXPECT_EQ(s.process.user.uid, 0u);
  EXPECT_FALSE(s.process.capabilities.has_value());
  EXPECT_FALSE(s.process.oom_score_adj.has_value());
  EXPECT_FALSE(s.linux.resources.has_value());
  EXPECT_FALSE(s.linux.seccomp.has_value());
  EXPECT_THAT(s.linux.namespaces, IsEmpty());
}

TEST(ParseSpecTest, NullCountsAsAbsent) {
  // Go's encoding/json writes nil slices and pointers as null.
  Spec s = ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"], "env": null,
      "capabilities": null, "oomScoreAdj": null}, "mounts": null, "linux": {"resources": null}})");
  EXPECT_THAT(s.process.env, IsEmpty());
  EXPECT_FALSE(s.process.capabilities.has_value());
  EXPECT_FALSE(s.process.oom_score_adj.has_value());
  EXPECT_FALSE(s.linux.resources.has_value());
}

TEST(ParseSpecTest, FifoDeviceNeedsNoNumbers) {
  Spec s = ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"]},
      "linux": {"devices": [{"path": "/dev/p", "type": "p"}]}})");
  ASSERT_EQ(s.linux.devices.size(), 1u);
  EXPECT_EQ(s.linux.devices[0].major, 0);
}

TEST(ParseSpecTest, UnlimitedValuesAreAccepted) {
  Spec s = ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"]},
      "linux": {"resources": {"memory": {"limit": -1, "swap": -1}, "cpu": {"quota": -1},
                              "pids": {"limit": -1}}}})");
  EXPECT_EQ(s.linux.resources->memory->limit, -1);
  EXPECT_EQ(s.linux.resources->memory->swap, -1);
  EXPECT_EQ(s.linux.resources->cpu->quota, -1);
  EXPECT_EQ(s.linux.resources->pids->limit, -1);
}

TEST(ParseSpecTest, JoiningAUserNamespaceNeedsNoMappings) {
  Spec s = ParseSpec(R"({"root": {"path": "r"}, "process": {"args": ["x"]},
      "linux": {"namespaces": [{"type": "user", "path": "/proc/1/ns/user"}]}})");
  EXPECT_EQ(s.linux.namespaces[0].path, "/proc/1/ns/user");
}

}  // namespace
}  // namespace berth::spec
