// Prepares the process security profile before clone and applies it in the child. The
// apply side runs between clone and execve: raw system calls only, no allocation, no
// exceptions, so it is safe in a child of a multi-threaded parent and in a CLONE_VM child.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/common/error.h"
#include "runtime/security/security.h"

namespace berth::security {

ProcessSecurity PrepareProcessSecurity(const spec::Process& process,
                                       const std::optional<spec::Seccomp>& seccomp) {
  ProcessSecurity security;
  if (process.capabilities) {
    security.has_capabilities = true;
    security.caps = ParseCapabilities(*process.capabilities);
  }
  security.no_new_privileges = process.no_new_privileges;
  if (seccomp) security.seccomp = CompileSeccompCached(*seccomp);
  security.rlimits = PrepareRlimits(process.rlimits);
  security.uid = process.user.uid;
  security.gid = process.user.gid;
  security.additional_gids = process.user.additional_gids;
  if (process.user.umask) {
    if (*process.user.umask > 0777) {
      throw Error(ErrorKind::kInvalidArgument,
                  "process.user.umask: " + std::to_string(*process.user.umask) +
                      " is not a file mode (0..0777)");
    }
    security.has_umask = true;
    security.umask = *process.user.umask;
  }
  if (process.oom_score_adj) {
    if (*process.oom_score_adj < -1000 || *process.oom_score_adj > 1000) {
      throw Error(ErrorKind::kInvalidArgument,
                  "process.oomScoreAdj: " + std::to_string(*process.oom_score_adj) +
                      " is outside -1000..1000");
    }
    security.has_oom_score_adj = true;
    security.oom_score_adj = *process.oom_score_adj;
  }
  return security;
}

namespace {

// Each step returns 0 or an errno and names itself through *step.

int ApplyRlimits(const ProcessSecurity& s) noexcept {
  for (const PreparedRlimit& limit : s.rlimits) {
    rlimit value{static_cast<rlim_t>(limit.soft), static_cast<rlim_t>(limit.hard)};
    if (::syscall(SYS_prlimit64, 0, limit.resource, &value, nullptr) != 0) return errno;
  }
  return 0;
}

// Formats value into buf (no allocation); returns the length.
size_t FormatInt(int value, char* buf, size_t size) noexcept {
  char digits[16];
  size_t n = 0;
  unsigned magnitude = value < 0 ? 0u - static_cast<unsigned>(value) : value;
  do {
    digits[n++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0 && n < sizeof(digits));
  size_t len = 0;
  if (value < 0 && len < size) buf[len++] = '-';
  while (n > 0 && len < size) buf[len++] = digits[--n];
  return len;
}

int ApplyOomScoreAdj(const ProcessSecurity& s) noexcept {
  char buf[16];
  size_t len = FormatInt(s.oom_score_adj, buf, sizeof(buf));
  int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n;
  do {
    n = ::write(fd, buf, len);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : (static_cast<size_t>(n) == len ? 0 : EIO);
  ::close(fd);
  return err;
}

int DropBoundingSet(uint64_t keep) noexcept {
  for (int cap = 0; cap < 64; ++cap) {
    if (keep & (uint64_t{1} << cap)) continue;
    // Walking until the kernel says EINVAL needs no cap_last_cap read in the child.
    int present = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) {
      if (errno == EINVAL) break;
      return errno;
    }
    // Dropping needs CAP_SETPCAP; a set that is already small enough needs no drop.
    if (present == 1 && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) return errno;
  }
  return 0;
}

int SetGroups(const ProcessSecurity& s) noexcept {
  // Raw syscalls: glibc's wrappers broadcast id changes to every thread the parent had.
  const gid_t* gids = s.additional_gids.empty() ? nullptr : s.additional_gids.data();
  if (::syscall(SYS_setgroups, s.additional_gids.size(), gids) == 0) return 0;
  // In a user namespace with setgroups denied there is nothing to clear and nothing we
  // could clear; only a real request for groups is an error then.
  if (errno == EPERM && s.additional_gids.empty()) return 0;
  return errno;
}

int SetCapabilities(const CapabilitySets& caps) noexcept {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = static_cast<uint32_t>(caps.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(caps.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(caps.inheritable >> (32 * i));
  }
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  return 0;
}

int SetAmbient(uint64_t ambient) noexcept {
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    // Kernels before 4.3 have no ambient set; fine as long as none is asked for.
    if (errno == EINVAL && ambient == 0) return 0;
    return errno;
  }
  for (int cap = 0; cap < 64; ++cap) {
    if (!(ambient & (uint64_t{1} << cap))) continue;
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) return errno;
  }
  return 0;
}

}  // namespace

int ApplyProcessSecurity(const ProcessSecurity& s, const char** failed_step) noexcept {
  const char* unused_step = nullptr;
  const char*& step = failed_step ? *failed_step : unused_step;
  auto fail = [&](const char* name, int err) {
    step = name;
    return err;
  };
  int err = 0;

  // Limits and the OOM score first: raising them may need privileges dropped below.
  if ((err = ApplyRlimits(s)) != 0) return fail("setrlimit", err);
  if (s.has_oom_score_adj && (err = ApplyOomScoreAdj(s)) != 0) {
    return fail("write /proc/self/oom_score_adj", err);
  }

  if (s.has_capabilities) {
    // Keep the permitted set across the uid switch; capset below trims it to the spec.
    if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail("prctl(PR_SET_KEEPCAPS)", errno);
    // Needs CAP_SETPCAP in the effective set, which setresuid to non-root clears.
    if ((err = DropBoundingSet(s.caps.bounding)) != 0) return fail("prctl(PR_CAPBSET_DROP)", err);
  }

  // setgroups and setresgid need CAP_SETGID: before the uid switch.
  if ((err = SetGroups(s)) != 0) return fail("setgroups", err);
  if (::syscall(SYS_setresgid, s.gid, s.gid, s.gid) != 0) return fail("setresgid", errno);

  // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which is only certain to
  // be held before the uid switch and capset; the filter must then allow the remaining
  // setup calls (runc makes the same trade).
  bool seccomp_early = !s.no_new_privileges;
  if (seccomp_early && (err = s.seccomp.Load()) != 0) return fail("seccomp", err);

  if (::syscall(SYS_setresuid, s.uid, s.uid, s.uid) != 0) return fail("setresuid", errno);

  if (s.has_capabilities) {
    if ((err = SetCapabilities(s.caps)) != 0) return fail("capset", err);
    if ((err = SetAmbient(s.caps.ambient)) != 0) return fail("prctl(PR_CAP_AMBIENT)", err);
  }

  if (s.no_new_privileges && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return fail("prctl(PR_SET_NO_NEW_PRIVS)", errno);
  }
  if (s.has_umask) ::umask(static_cast<mode_t>(s.umask));

  // Last, so the filter never has to allow the setup calls above.
  if (!seccomp_early && (err = s.seccomp.Load()) != 0) return fail("seccomp", err);
  return 0;
}

}  // namespace berth::security
