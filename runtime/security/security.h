// The process security profile: capabilities (libcap), no_new_privs, seccomp
// (libseccomp), rlimits, and the switch to the spec's uid/gid/groups. Parsing and
// compiling happen before clone (so errors are reported to the caller and the child only
// applies prepared data); the Apply* functions run in the container's init (or an exec'd
// process) just before execve.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec/spec.h"

namespace berth::security {

// Capability sets as bitmasks (bit n = capability number n).
struct CapabilitySets {
  uint64_t bounding = 0;
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
  uint64_t ambient = 0;
};

// Parses capability names; an unknown name is kInvalidArgument naming the field
// ("process.capabilities.bounding[3]: unknown capability \"CAP_FOO\"").
// Names this kernel does not know (newer than it) are skipped, as crun does.
CapabilitySets ParseCapabilities(const spec::Capabilities& caps);
// The default set Docker gives a container (CHOWN, DAC_OVERRIDE, FSETID, FOWNER, MKNOD,
// NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL,
// AUDIT_WRITE) as spec names, used when berthd builds a spec.
spec::Capabilities DefaultCapabilities();
// "CAP_CHOWN", ... for each set bit, lowest first.
std::vector<std::string> CapabilityNames(uint64_t mask);
// The running kernel's highest capability number (/proc/sys/kernel/cap_last_cap, read
// once); parsing skips names above it.
int LastCapability();
// Whether the calling thread holds cap (a CAP_* number) in its effective set.
bool HasEffectiveCapability(int cap);

// A compiled seccomp filter ready to load in the child.
class SeccompProgram {
 public:
  SeccompProgram() = default;
  bool empty() const { return bpf_.empty(); }
  // Loads the filter into the calling thread (seccomp(2) with the spec's flags). Needs
  // no_new_privs or CAP_SYS_ADMIN. Returns 0 or an errno; no allocation, no exceptions.
  int Load() const noexcept;
  const std::vector<uint8_t>& bpf() const { return bpf_; }  // struct sock_filter array
  unsigned flags() const { return flags_; }

 private:
  friend SeccompProgram CompileSeccomp(const spec::Seccomp& seccomp);
  std::vector<uint8_t> bpf_;
  unsigned flags_ = 0;
};

// Compiles linux.seccomp with libseccomp. Unknown syscall names are skipped (a newer
// profile on an older kernel); unknown actions, operators and architectures are
// kInvalidArgument naming the field.
SeccompProgram CompileSeccomp(const spec::Seccomp& seccomp);

// CompileSeccomp behind a small process-wide cache keyed by the profile's content: berthd
// spawns instance after instance with the same default profile, and compiling it costs
// ~1.5 ms of every spawn. Thread-safe; errors are not cached.
SeccompProgram CompileSeccompCached(const spec::Seccomp& seccomp);

// Berth's default profile: allow by default, EPERM for a deny-list (ENOSYS for clone3).
// docs/security-profile.md lists every entry, why, and how it differs from Docker's.
// The strict form: as if the container held no capability beyond Docker's defaults.
spec::Seccomp DefaultSeccompProfile();
// The form berthd uses: entries whose capability is in the container's bounding set are
// left out (mount and the namespace rules with CAP_SYS_ADMIN, reboot with CAP_SYS_BOOT,
// ...), as Docker's profile does, since the capability says the call is meant to work.
spec::Seccomp DefaultSeccompProfileFor(uint64_t bounding);

// Resolves rlimits and checks them against the caller's hard limits before clone: an
// unknown type or a soft > hard is kInvalidArgument ("process.rlimits[0]..."); a hard
// limit above what the caller holds without CAP_SYS_RESOURCE is kInvalidArgument too.
struct PreparedRlimit {
  int resource;
  uint64_t soft;
  uint64_t hard;
};
std::vector<PreparedRlimit> PrepareRlimits(const std::vector<spec::Rlimit>& rlimits);

// Everything the child needs, prepared before clone. PrepareProcessSecurity also rejects
// a umask above 0777 and an oomScoreAdj outside -1000..1000 (kInvalidArgument).
struct ProcessSecurity {
  bool has_capabilities = false;
  CapabilitySets caps;
  bool no_new_privileges = false;
  SeccompProgram seccomp;
  std::vector<PreparedRlimit> rlimits;
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  bool has_umask = false;
  uint32_t umask = 022;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
};
ProcessSecurity PrepareProcessSecurity(const spec::Process& process,
                                       const std::optional<spec::Seccomp>& seccomp);

// Applies everything in the right order for an execve that follows: rlimits, oom score,
// PR_SET_KEEPCAPS and the bounding-set drop (needs CAP_SETPCAP, so before the uid
// switch), groups and gid, uid, capset (permitted/effective/inheritable), ambient,
// no_new_privs, umask, and seccomp last so the filter does not have to allow the setup
// calls. Without no_new_privileges the filter is loaded right before setresuid instead,
// while CAP_SYS_ADMIN is still held (the kernel demands one or the other), so it must
// allow setresuid/capset/prctl/umask (the default profile does). Returns 0 or an errno and
// sets *failed_step to a static string naming the step. No exceptions, no allocation.
int ApplyProcessSecurity(const ProcessSecurity& security, const char** failed_step) noexcept;

}  // namespace berth::security
