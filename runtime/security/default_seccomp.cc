// Berth's default seccomp profile: allow by default, and return an errno (never kill) for
// the calls that reach kernel state a container must not touch or that have a record of
// exploitable bugs. docs/security-profile.md lists every entry with its reason and compares
// the profile with Docker's allow-list.
#include <errno.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "runtime/security/security.h"

namespace berth::security {
namespace {

// Each group keeps the spec's shape: names sharing one action and errno. A group with
// lifted_by is left out when the container's bounding set holds that capability (the
// kernel then means to allow the call, as Docker's profile does); -1: always denied.
struct DeniedGroup {
  std::vector<std::string> names;
  uint32_t errno_ret;
  int lifted_by;
};

const std::vector<DeniedGroup>& DeniedGroups() {
  static const std::vector<DeniedGroup> kGroups = {
      // Mounts, old API and new; the mount table is the container's root of trust.
      {{"mount", "umount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "mount_setattr"},
       EPERM,
       CAP_SYS_ADMIN},
      // Replacing the host kernel.
      {{"kexec_load", "kexec_file_load"}, EPERM, -1},
      // Outside a pid namespace this reboots the host.
      {{"reboot"}, EPERM, CAP_SYS_BOOT},
      // Kernel modules.
      {{"init_module", "finit_module", "delete_module"}, EPERM, CAP_SYS_MODULE},
      // eBPF programs and perf events: large attack surface and host-wide visibility.
      {{"bpf"}, EPERM, CAP_BPF},
      {{"perf_event_open"}, EPERM, CAP_PERFMON},
      // The kernel keyring is not namespaced: keys would be shared with the host.
      {{"keyctl", "add_key", "request_key"}, EPERM, -1},
      // Host-wide swap configuration.
      {{"swapon", "swapoff"}, EPERM, -1},
      // Opens any inode of a filesystem by handle, bypassing the mount tree ("shocker").
      {{"open_by_handle_at"}, EPERM, CAP_DAC_READ_SEARCH},
      // Raw I/O ports.
      {{"iopl", "ioperm"}, EPERM, CAP_SYS_RAWIO},
      // Host-wide process accounting file.
      {{"acct"}, EPERM, CAP_SYS_PACCT},
      // The clocks are not namespaced: setting them changes the host's time.
      {{"settimeofday", "stime", "clock_settime", "clock_settime64"}, EPERM, CAP_SYS_TIME},
      // Obsolete or host-global interfaces nothing in a container needs.
      {{"nfsservctl", "uselib", "vm86", "vm86old", "sysfs", "_sysctl", "ustat", "create_module",
        "get_kernel_syms", "query_module"},
       EPERM,
       -1},
      // Profiling and quota interfaces that see or change the whole host.
      {{"lookup_dcookie", "quotactl", "quotactl_fd"}, EPERM, CAP_SYS_ADMIN},
      // A favourite primitive for winning kernel races.
      {{"userfaultfd"}, EPERM, -1},
      // The kernel log leaks host addresses and other tenants' messages.
      {{"syslog"}, EPERM, CAP_SYSLOG},
      // io_uring: a steady source of kernel exploits and it bypasses this filter for the
      // operations it performs.
      {{"io_uring_setup", "io_uring_enter", "io_uring_register"}, EPERM, -1},
      // clone3 passes its flags in memory seccomp cannot read, so CLONE_NEWUSER could not
      // be filtered; ENOSYS makes libc fall back to clone(2), which is filtered below.
      {{"clone3"}, ENOSYS, CAP_SYS_ADMIN},
  };
  return kGroups;
}

spec::SeccompArg MaskedEq(uint64_t mask, uint64_t value, uint32_t index = 0) {
  spec::SeccompArg arg;
  arg.index = index;
  arg.value = mask;
  arg.value_two = value;
  arg.op = "SCMP_CMP_MASKED_EQ";
  return arg;
}

spec::SeccompArg Eq(uint64_t value) {
  spec::SeccompArg arg;
  arg.value = value;
  arg.op = "SCMP_CMP_EQ";
  return arg;
}

spec::SeccompSyscall DenyWhen(const std::string& name, spec::SeccompArg arg) {
  spec::SeccompSyscall rule;
  rule.names = {name};
  rule.action = "SCMP_ACT_ERRNO";
  rule.errno_ret = EPERM;
  rule.args = {arg};
  return rule;
}

// personality(2) is allowed only with the values Docker allows: PER_LINUX (0x0),
// PER_LINUX_32BIT (0x8), UNAME26 (0x20000), UNAME26|PER_LINUX32 (0x20008) and the query
// 0xffffffff. A deny-list needs the complement, and libseccomp allows one comparison per
// argument in a rule, so the complement is written as single masked compares on the low 32
// bits (the kernel takes an unsigned int):
//  - bit 31 clear and a bit other than 3 and 17 set: one rule per such bit;
//  - bit 31 set and some bit below it clear (so not the query): one rule per bit.
void AddPersonalityRules(std::vector<spec::SeccompSyscall>& rules) {
  constexpr uint64_t kAllowedBits = 0x20008;
  constexpr uint64_t kBit31 = uint64_t{1} << 31;
  for (int bit = 0; bit < 31; ++bit) {
    uint64_t b = uint64_t{1} << bit;
    if (!(kAllowedBits & b)) rules.push_back(DenyWhen("personality", MaskedEq(b | kBit31, b)));
  }
  for (int bit = 0; bit < 31; ++bit) {
    uint64_t b = uint64_t{1} << bit;
    rules.push_back(DenyWhen("personality", MaskedEq(b | kBit31, kBit31)));
  }
}

std::vector<std::string> DefaultArchitectures() {
  // A deny-list must cover every ABI the CPU can enter the kernel with, or a 32-bit
  // binary would reach the same calls by other numbers. libseccomp kills calls from an
  // architecture that is not listed.
#if defined(__x86_64__)
  return {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
#elif defined(__aarch64__)
  return {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};
#else
  return {};
#endif
}

}  // namespace

spec::Seccomp DefaultSeccompProfile() { return DefaultSeccompProfileFor(0); }

spec::Seccomp DefaultSeccompProfileFor(uint64_t bounding) {
  auto lifted = [bounding](int cap) { return cap >= 0 && (bounding >> cap) & 1; };
  spec::Seccomp profile;
  profile.default_action = "SCMP_ACT_ALLOW";
  profile.architectures = DefaultArchitectures();
  for (const DeniedGroup& group : DeniedGroups()) {
    if (lifted(group.lifted_by)) continue;
    spec::SeccompSyscall rule;
    rule.names = group.names;
    rule.action = "SCMP_ACT_ERRNO";
    rule.errno_ret = group.errno_ret;
    profile.syscalls.push_back(std::move(rule));
  }
  // New user namespaces give full capabilities inside them and with them the kernel code
  // that only root could reach (filesystems, netfilter, ...). The other namespace types
  // need CAP_SYS_ADMIN, which the default capabilities do not hold.
  if (!lifted(CAP_SYS_ADMIN)) {
    profile.syscalls.push_back(DenyWhen("unshare", MaskedEq(CLONE_NEWUSER, CLONE_NEWUSER)));
    profile.syscalls.push_back(DenyWhen("clone", MaskedEq(CLONE_NEWUSER, CLONE_NEWUSER)));
    profile.syscalls.push_back(DenyWhen("setns", MaskedEq(CLONE_NEWUSER, CLONE_NEWUSER, 1)));
  }
  // vsock reaches the hypervisor or the host's vsock services past the network namespace;
  // compute hosts may run VMs beside the containers.
  profile.syscalls.push_back(DenyWhen("socket", Eq(AF_VSOCK)));
  AddPersonalityRules(profile.syscalls);
  return profile;
}

}  // namespace berth::security
