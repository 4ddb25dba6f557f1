#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <sched.h>

#include <algorithm>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

using ::testing::HasSubstr;

size_t Instructions(const SeccompProgram& program) {
  return program.bpf().size() / sizeof(sock_filter);
}

spec::SeccompArg Arg(uint32_t index, std::string op, uint64_t value, uint64_t value_two = 0) {
  spec::SeccompArg arg;
  arg.index = index;
  arg.op = std::move(op);
  arg.value = value;
  arg.value_two = value_two;
  return arg;
}

// A profile in the shape Docker's default.json has: default ERRNO, an allow-list, several
// rules for one syscall, and arguments.
spec::Seccomp SpecStyleProfile() {
  spec::Seccomp profile;
  profile.default_action = "SCMP_ACT_ERRNO";
  profile.default_errno_ret = EPERM;
  profile.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  profile.flags = {"SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  spec::SeccompSyscall allow;
  allow.names = {"read", "write", "exit_group", "openat", "close", "berth_no_such_syscall"};
  allow.action = "SCMP_ACT_ALLOW";
  profile.syscalls.push_back(allow);
  for (uint64_t persona : {0x0ull, 0x8ull, 0xffffffffull}) {
    spec::SeccompSyscall rule;
    rule.names = {"personality"};
    rule.action = "SCMP_ACT_ALLOW";
    rule.args = {Arg(0, "SCMP_CMP_EQ", persona)};
    profile.syscalls.push_back(rule);
  }
  spec::SeccompSyscall clone;
  clone.names = {"clone"};
  clone.action = "SCMP_ACT_ALLOW";
  clone.args = {Arg(0, "SCMP_CMP_MASKED_EQ", 0x7E020000, 0)};
  profile.syscalls.push_back(clone);
  spec::SeccompSyscall two_args;
  two_args.names = {"socket"};
  two_args.action = "SCMP_ACT_ALLOW";
  two_args.args = {Arg(0, "SCMP_CMP_NE", 16), Arg(1, "SCMP_CMP_LE", 5)};
  profile.syscalls.push_back(two_args);
  spec::SeccompSyscall traced;
  traced.names = {"ptrace"};
  traced.action = "SCMP_ACT_TRACE";
  traced.errno_ret = 7;
  profile.syscalls.push_back(traced);
  return profile;
}

void ExpectInvalid(const spec::Seccomp& profile, const std::string& field_and_what) {
  try {
    CompileSeccomp(profile);
    ADD_FAILURE() << "compiled; expected an error about " << field_and_what;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << e.what();
    EXPECT_THAT(e.message(), HasSubstr(field_and_what));
  }
}

TEST(CompileSeccomp, DefaultProfileCompiles) {
  SeccompProgram program = CompileSeccomp(DefaultSeccompProfile());
  EXPECT_FALSE(program.empty());
  EXPECT_EQ(program.bpf().size() % sizeof(sock_filter), 0u);
  EXPECT_GT(Instructions(program), 50u);
  EXPECT_LE(Instructions(program), 4096u);  // BPF_MAXINSNS
  EXPECT_EQ(program.flags(), 0u);
}

TEST(CompileSeccomp, SpecStyleProfileWithArgumentsCompiles) {
  SeccompProgram program = CompileSeccomp(SpecStyleProfile());
  EXPECT_FALSE(program.empty());
  EXPECT_EQ(program.bpf().size() % sizeof(sock_filter), 0u);
  EXPECT_EQ(program.flags(), 4u);  // SECCOMP_FILTER_FLAG_SPEC_ALLOW
}

TEST(CompileSeccomp, ArgumentRulesChangeTheProgram) {
  spec::Seccomp plain = SpecStyleProfile();
  spec::Seccomp more = SpecStyleProfile();
  more.syscalls.back().args = {Arg(0, "SCMP_CMP_GT", 3)};
  EXPECT_NE(CompileSeccomp(plain).bpf(), CompileSeccomp(more).bpf());
}

TEST(CompileSeccomp, RepeatedArgumentIndexBecomesSeparateRules) {
  // libseccomp refuses two comparisons of argument 0 in one rule; runc splits them.
  spec::Seccomp profile;
  profile.default_action = "SCMP_ACT_ALLOW";
  spec::SeccompSyscall rule;
  rule.names = {"personality"};
  rule.action = "SCMP_ACT_ERRNO";
  rule.args = {Arg(0, "SCMP_CMP_EQ", 1), Arg(0, "SCMP_CMP_EQ", 2)};
  profile.syscalls.push_back(rule);
  EXPECT_FALSE(CompileSeccomp(profile).empty());
}

TEST(CompileSeccomp, OnlyUnknownSyscallsStillCompiles) {
  spec::Seccomp profile;
  profile.default_action = "SCMP_ACT_ALLOW";
  spec::SeccompSyscall rule;
  rule.names = {"berth_from_the_future"};
  rule.action = "SCMP_ACT_ERRNO";
  profile.syscalls.push_back(rule);
  EXPECT_FALSE(CompileSeccomp(profile).empty());
}

TEST(CompileSeccomp, UnknownDefaultActionNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.default_action = "SCMP_ACT_EXPLODE";
  ExpectInvalid(profile, "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_EXPLODE\"");
  profile.default_action = "";
  ExpectInvalid(profile, "linux.seccomp.defaultAction");
}

TEST(CompileSeccomp, UnknownRuleActionNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.syscalls[2].action = "SCMP_ACT_NOPE";
  ExpectInvalid(profile, "linux.seccomp.syscalls[2].action: unknown action \"SCMP_ACT_NOPE\"");
}

TEST(CompileSeccomp, UnknownOperatorNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.syscalls[5].args[1].op = "SCMP_CMP_SORTA";
  ExpectInvalid(profile,
                "linux.seccomp.syscalls[5].args[1].op: unknown operator \"SCMP_CMP_SORTA\"");
}

TEST(CompileSeccomp, ArgumentIndexOutOfRangeNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.syscalls[5].args[0].index = 6;
  ExpectInvalid(profile, "linux.seccomp.syscalls[5].args[0].index");
}

TEST(CompileSeccomp, UnknownArchitectureNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.architectures.push_back("SCMP_ARCH_Z80");
  ExpectInvalid(profile, "linux.seccomp.architectures[3]: unknown architecture \"SCMP_ARCH_Z80\"");
  profile.architectures.back() = "x86_64";  // libseccomp's spelling, not the spec's
  ExpectInvalid(profile, "linux.seccomp.architectures[3]");
}

TEST(CompileSeccomp, UnknownFlagNamesTheField) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.flags.push_back("SECCOMP_FILTER_FLAG_BOGUS");
  ExpectInvalid(profile, "linux.seccomp.flags[1]: unknown flag");
}

TEST(CompileSeccomp, FlagsAreCombined) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"};
  EXPECT_EQ(CompileSeccomp(profile).flags(), 3u);
}

TEST(CompileSeccomp, NotifyIsUnsupported) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.syscalls[0].action = "SCMP_ACT_NOTIFY";
  try {
    CompileSeccomp(profile);
    FAIL() << "SCMP_ACT_NOTIFY was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUnsupported);
    EXPECT_THAT(e.message(), HasSubstr("linux.seccomp.syscalls[0].action"));
  }
}

TEST(CompileSeccomp, ErrnoRetOutOfRangeIsRejected) {
  spec::Seccomp profile = SpecStyleProfile();
  profile.syscalls[6].errno_ret = 70000;
  ExpectInvalid(profile, "linux.seccomp.syscalls[6].action: errnoRet 70000");
}

TEST(CompileSeccomp, ErrnoRetChangesTheProgram) {
  spec::Seccomp eperm;
  eperm.default_action = "SCMP_ACT_ALLOW";
  spec::SeccompSyscall rule;
  rule.names = {"mount"};
  rule.action = "SCMP_ACT_ERRNO";
  eperm.syscalls.push_back(rule);
  spec::Seccomp enosys = eperm;
  enosys.syscalls[0].errno_ret = ENOSYS;
  spec::Seccomp explicit_eperm = eperm;
  explicit_eperm.syscalls[0].errno_ret = EPERM;
  EXPECT_NE(CompileSeccomp(eperm).bpf(), CompileSeccomp(enosys).bpf());
  EXPECT_EQ(CompileSeccomp(eperm).bpf(), CompileSeccomp(explicit_eperm).bpf());
}

TEST(DefaultSeccompProfile, AllowsByDefaultAndNeverKills) {
  spec::Seccomp profile = DefaultSeccompProfile();
  EXPECT_EQ(profile.default_action, "SCMP_ACT_ALLOW");
  for (const spec::SeccompSyscall& rule : profile.syscalls) {
    EXPECT_EQ(rule.action, "SCMP_ACT_ERRNO");
    ASSERT_TRUE(rule.errno_ret.has_value());
  }
}

TEST(DefaultSeccompProfile, DeniesTheDocumentedCalls) {
  std::set<std::string> unconditional;
  std::set<std::string> conditional;
  for (const spec::SeccompSyscall& rule : DefaultSeccompProfile().syscalls) {
    for (const std::string& name : rule.names) {
      (rule.args.empty() ? unconditional : conditional).insert(name);
    }
  }
  for (const char* name : {"mount",         "umount2",
                           "kexec_load",    "reboot",
                           "init_module",   "finit_module",
                           "bpf",           "perf_event_open",
                           "keyctl",        "add_key",
                           "request_key",   "swapon",
                           "pivot_root",    "open_by_handle_at",
                           "iopl",          "ioperm",
                           "acct",          "settimeofday",
                           "clock_settime", "userfaultfd",
                           "move_mount",    "fsopen",
                           "fsmount",       "fspick",
                           "open_tree",     "mount_setattr",
                           "clone3",        "io_uring_setup"}) {
    EXPECT_TRUE(unconditional.count(name)) << name;
  }
  for (const char* name : {"unshare", "clone", "setns", "personality", "socket"}) {
    EXPECT_TRUE(conditional.count(name)) << name;
    EXPECT_FALSE(unconditional.count(name)) << name;
  }
  for (const char* name : {"ptrace", "getpid", "execve", "chroot", "clock_adjtime", "adjtimex",
                           "name_to_handle_at", "process_vm_readv", "fanotify_init"}) {
    EXPECT_FALSE(unconditional.count(name) || conditional.count(name)) << name;
  }
}

std::set<std::string> DeniedNames(const spec::Seccomp& profile) {
  std::set<std::string> names;
  for (const spec::SeccompSyscall& rule : profile.syscalls) {
    names.insert(rule.names.begin(), rule.names.end());
  }
  return names;
}

TEST(DefaultSeccompProfile, GrantedCapabilitiesLiftTheirEntries) {
  EXPECT_EQ(DeniedNames(DefaultSeccompProfileFor(0)), DeniedNames(DefaultSeccompProfile()));
  uint64_t defaults = ParseCapabilities(DefaultCapabilities()).bounding;
  EXPECT_EQ(DeniedNames(DefaultSeccompProfileFor(defaults)), DeniedNames(DefaultSeccompProfile()));

  std::set<std::string> admin =
      DeniedNames(DefaultSeccompProfileFor(defaults | (uint64_t{1} << CAP_SYS_ADMIN)));
  for (const char* name : {"mount", "umount2", "fsopen", "unshare", "clone", "clone3", "setns"}) {
    EXPECT_FALSE(admin.count(name)) << name;
  }
  for (const char* name : {"keyctl", "kexec_load", "reboot", "init_module", "userfaultfd",
                           "io_uring_setup", "personality", "socket"}) {
    EXPECT_TRUE(admin.count(name)) << name;
  }
  std::set<std::string> boot = DeniedNames(DefaultSeccompProfileFor(uint64_t{1} << CAP_SYS_BOOT));
  EXPECT_FALSE(boot.count("reboot"));
  EXPECT_TRUE(boot.count("mount"));
}

TEST(DefaultSeccompProfile, Clone3GetsEnosysSoLibcFallsBack) {
  for (const spec::SeccompSyscall& rule : DefaultSeccompProfile().syscalls) {
    if (std::find(rule.names.begin(), rule.names.end(), "clone3") != rule.names.end()) {
      EXPECT_EQ(rule.errno_ret, static_cast<uint32_t>(ENOSYS));
      return;
    }
  }
  FAIL() << "clone3 is not in the profile";
}

// The personality rules are a complement written as masked compares; check the logic
// here against the allowed values, without a kernel.
bool PersonalityDenied(uint64_t persona) {
  for (const spec::SeccompSyscall& rule : DefaultSeccompProfile().syscalls) {
    if (rule.names != std::vector<std::string>{"personality"}) continue;
    bool all = true;
    for (const spec::SeccompArg& arg : rule.args) {
      EXPECT_EQ(arg.op, "SCMP_CMP_MASKED_EQ");
      all = all && (persona & arg.value) == arg.value_two;
    }
    if (all) return true;
  }
  return false;
}

TEST(DefaultSeccompProfile, PersonalityAllowsOnlyDockersValues) {
  for (uint64_t ok : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    EXPECT_FALSE(PersonalityDenied(ok)) << std::hex << ok;
  }
  for (uint64_t bad : {0x1ull, 0x7ull, 0x9ull, 0x40000ull, 0x0040008ull, 0x0400000ull,
                       0x80000000ull, 0xfffffffeull, 0x7fffffffull, 0x80020008ull}) {
    EXPECT_TRUE(PersonalityDenied(bad)) << std::hex << bad;
  }
  for (int bit = 0; bit < 32; ++bit) {
    uint64_t value = uint64_t{1} << bit;
    EXPECT_EQ(PersonalityDenied(value), value != 0x8 && value != 0x20000) << bit;
  }
}

TEST(SeccompCacheTest, SameProfileSameProgramOtherProfileOtherProgram) {
  spec::Seccomp profile = DefaultSeccompProfile();
  SeccompProgram first = CompileSeccompCached(profile);
  SeccompProgram again = CompileSeccompCached(profile);
  EXPECT_EQ(first.bpf(), again.bpf());
  EXPECT_EQ(first.bpf(), CompileSeccomp(profile).bpf());
  spec::Seccomp other = profile;
  other.syscalls.push_back({{"getcwd"}, "SCMP_ACT_ERRNO", 1, {}});
  EXPECT_NE(CompileSeccompCached(other).bpf(), first.bpf());
  // A bad profile is an error every time, not a cached empty program.
  spec::Seccomp bad = profile;
  bad.default_action = "SCMP_ACT_NOPE";
  EXPECT_THROW(CompileSeccompCached(bad), Error);
  EXPECT_THROW(CompileSeccompCached(bad), Error);
}

}  // namespace
}  // namespace berth::security
