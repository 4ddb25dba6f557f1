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
std::vector<std::string> CapabilityNames(uint64_t mask);

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

// Berth's default profile (see default_seccomp.cc for the list and why each entry).
spec::Seccomp DefaultSeccompProfile();

// Resolves rlimits and checks them against the caller's hard limits before clone: an
// unknown type or a soft > hard is kInvalidArgument ("process.rlimits[0]..."); a hard
// limit above what the caller holds without CAP_SYS_RESOURCE is kInvalidArgument too.
struct PreparedRlimit {
  int resource;
  uint64_t soft;
  uint64_t hard;
};
std::vector<PreparedRlimit> PrepareRlimits(const std::vector<spec::Rlimit>& rlimits);

// Everything the child needs, prepared before clone.
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
// groups/gid/uid with capabilities kept across the uid switch, capability sets (bounding
// drop, then permitted/effective/inheritable, then ambient), no_new_privs, and seccomp
// last so the filter does not have to allow the setup calls. Returns 0 or an errno and
// sets *failed_step to a static string naming the step. No exceptions, no allocation.
int ApplyProcessSecurity(const ProcessSecurity& security, const char** failed_step) noexcept;

}  // namespace berth::security
