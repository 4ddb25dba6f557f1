// Applies process security profiles in forked children, as root, and checks what the
// kernel reports afterwards. Each child reports through a pipe ("" = all checks passed)
// and is always reaped; mounts are only tried inside a private mount namespace the child
// made, so nothing leaks to the host even when a check fails.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"
#include "runtime/security/security.h"
#include "tests/support/test_env.h"

namespace berth::security {
namespace {

uint64_t Bit(int cap) { return uint64_t{1} << cap; }

struct ChildResult {
  int status = 0;
  std::string report;
};

// Forks, runs body in the child and collects its report. The child exits 0 when body
// returns; a crash or signal shows up in status.
ChildResult RunInChild(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  pid_t pid = fork();
  if (pid < 0) ThrowErrno("fork");
  if (pid == 0) {
    read_end.reset();
    std::string report;
    try {
      report = body();
    } catch (const std::exception& e) {
      report = std::string("exception: ") + e.what();
    }
    const char* p = report.data();
    size_t left = report.size();
    while (left > 0) {
      ssize_t n = write(write_end.get(), p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<size_t>(n);
    }
    _exit(0);
  }
  write_end.reset();
  ChildResult result;
  char buf[4096];
  ssize_t n;
  while ((n = read(read_end.get(), buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    result.report.append(buf, static_cast<size_t>(n));
  }
  // The pipe closes when the child exits (or execs into something that closes it): reap it
  // whatever happened above.
  while (waitpid(pid, &result.status, 0) < 0 && errno == EINTR) {
  }
  return result;
}

std::string StatusField(const std::string& name) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, name.size() + 1, name + ":") == 0) {
      size_t start = line.find_first_not_of(" \t", name.size() + 1);
      size_t end = line.find_last_not_of(" \t");
      return start == std::string::npos ? "" : line.substr(start, end + 1 - start);
    }
  }
  return "<missing " + name + ">";
}

std::string Hex16(uint64_t mask) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(mask));
  return buf;
}

// A system call's result with errno read at once, before anything else can change it.
struct SysResult {
  long rc;
  int err;
};
SysResult Sys(long rc) { return {rc, errno}; }

// Collects failed expectations in the child as text.
class Checks {
 public:
  void Equal(const std::string& what, const std::string& got, const std::string& want) {
    if (got != want) out_ << what << ": got \"" << got << "\", want \"" << want << "\"\n";
  }
  void Fails(const std::string& what, SysResult r, int want_errno) {
    if (r.rc != -1 || r.err != want_errno) {
      out_ << what << ": got rc=" << r.rc << " errno=" << ErrnoName(r.err) << ", want -1/"
           << ErrnoName(want_errno) << "\n";
    }
  }
  void Succeeds(const std::string& what, SysResult r) {
    if (r.rc < 0) out_ << what << ": failed with " << ErrnoName(r.err) << "\n";
  }
  std::string Report() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string Apply(const ProcessSecurity& security) {
  const char* step = nullptr;
  int err = ApplyProcessSecurity(security, &step);
  if (err != 0)
    return std::string("ApplyProcessSecurity: ") + (step ? step : "?") + ": " + ErrnoName(err);
  return "";
}

// A private mount namespace so a mount that wrongly succeeds dies with the child.
std::string EnterPrivateMountNamespace() {
  if (unshare(CLONE_NEWNS) != 0) return std::string("unshare(CLONE_NEWNS): ") + strerror(errno);
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return std::string("make / private: ") + strerror(errno);
  }
  return "";
}

// Everything the kernel has except CAP_SYS_RESOURCE-like gaps of this host: the caller's
// own bounding set.
uint64_t CallerBoundingSet() {
  uint64_t mask = 0;
  for (int cap = 0; cap <= LastCapability(); ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) mask |= Bit(cap);
  }
  return mask;
}

class ProcessSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
  }
};

TEST_F(ProcessSecurityTest, SwitchesUserAndSetsCapabilitiesLimitsAndNoNewPrivs) {
  spec::Process process;
  process.user.uid = 1000;
  process.user.gid = 1000;
  process.user.additional_gids = {1001, 1002};
  process.user.umask = 027;
  process.no_new_privileges = true;
  process.oom_score_adj = 500;
  process.rlimits = {{"RLIMIT_NOFILE", 1024, 512}};
  spec::Capabilities caps;
  caps.bounding = {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP"};
  caps.permitted = {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"};
  caps.effective = {"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_NET_BIND_SERVICE"};
  caps.inheritable = {"CAP_NET_BIND_SERVICE"};
  caps.ambient = {"CAP_NET_BIND_SERVICE"};
  process.capabilities = caps;
  ProcessSecurity security = PrepareProcessSecurity(process, std::nullopt);

  ChildResult result = RunInChild([&]() -> std::string {
    if (std::string err = Apply(security); !err.empty()) return err;
    Checks check;
    uint64_t eff = Bit(CAP_CHOWN) | Bit(CAP_SYS_ADMIN) | Bit(CAP_NET_BIND_SERVICE);
    check.Equal("CapEff", StatusField("CapEff"), Hex16(eff));
    check.Equal("CapPrm", StatusField("CapPrm"), Hex16(eff));
    check.Equal("CapInh", StatusField("CapInh"), Hex16(Bit(CAP_NET_BIND_SERVICE)));
    check.Equal("CapBnd", StatusField("CapBnd"), Hex16(eff | Bit(CAP_SETPCAP)));
    check.Equal("CapAmb", StatusField("CapAmb"), Hex16(Bit(CAP_NET_BIND_SERVICE)));
    check.Equal("NoNewPrivs", StatusField("NoNewPrivs"), "1");
    check.Equal("Seccomp", StatusField("Seccomp"), "0");
    check.Equal("Uid", StatusField("Uid"), "1000\t1000\t1000\t1000");
    check.Equal("Gid", StatusField("Gid"), "1000\t1000\t1000\t1000");
    check.Equal("Groups", StatusField("Groups"), "1001 1002");
    check.Equal("getuid", std::to_string(getuid()), "1000");
    mode_t old_mask = umask(0);
    check.Equal("umask", std::to_string(old_mask), std::to_string(027));
    rlimit nofile{};
    getrlimit(RLIMIT_NOFILE, &nofile);
    check.Equal("RLIMIT_NOFILE",
                std::to_string(nofile.rlim_cur) + "/" + std::to_string(nofile.rlim_max),
                "512/1024");
    std::ifstream oom("/proc/self/oom_score_adj");
    std::string oom_value;
    oom >> oom_value;
    check.Equal("oom_score_adj", oom_value, "500");
    return check.Report();
  });
  ASSERT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.status;
  EXPECT_EQ(result.report, "");
}

// The same checks for the default profile, run with and without the filter: the control
// run proves CAP_SYS_ADMIN alone would let mount succeed, so the EPERM comes from seccomp.
std::string ProbeDefaultProfile(bool with_seccomp, const std::string& mount_point) {
  spec::Process process;
  process.no_new_privileges = true;
  spec::Capabilities caps;
  caps.bounding = CapabilityNames(CallerBoundingSet());
  caps.effective = caps.permitted = caps.bounding;
  process.capabilities = caps;
  std::optional<spec::Seccomp> seccomp;
  if (with_seccomp) seccomp = DefaultSeccompProfile();
  ProcessSecurity security = PrepareProcessSecurity(process, seccomp);

  ChildResult result = RunInChild([&]() -> std::string {
    if (std::string err = EnterPrivateMountNamespace(); !err.empty()) return err;
    if (std::string err = Apply(security); !err.empty()) return err;
    Checks check;
    check.Equal(
        "CapEff has CAP_SYS_ADMIN",
        std::to_string((std::stoull(StatusField("CapEff"), nullptr, 16) >> CAP_SYS_ADMIN) & 1),
        "1");
    check.Equal("Seccomp mode", StatusField("Seccomp"), with_seccomp ? "2" : "0");
    SysResult mounted = Sys(mount("none", mount_point.c_str(), "tmpfs", 0, nullptr));
    if (with_seccomp) {
      check.Fails("mount tmpfs", mounted, EPERM);
      check.Fails("unshare(CLONE_NEWUSER)", Sys(unshare(CLONE_NEWUSER)), EPERM);
      check.Fails("keyctl",
                  Sys(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)),
                  EPERM);
      SysResult r = Sys(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
      if (r.rc == 0) _exit(0);  // only if the filter failed: the check below reports it
      if (r.rc > 0) waitpid(static_cast<pid_t>(r.rc), nullptr, 0);
      check.Fails("clone(CLONE_NEWUSER)", r, EPERM);
      clone_args args{};
      args.exit_signal = SIGCHLD;
      r = Sys(syscall(SYS_clone3, &args, sizeof(args)));
      if (r.rc == 0) _exit(0);
      if (r.rc > 0) waitpid(static_cast<pid_t>(r.rc), nullptr, 0);
      check.Fails("clone3", r, ENOSYS);
      check.Fails("personality(ADDR_NO_RANDOMIZE)",
                  Sys(syscall(SYS_personality, ADDR_NO_RANDOMIZE)), EPERM);
      check.Succeeds("personality(query)", Sys(syscall(SYS_personality, 0xffffffffUL)));
      check.Succeeds("personality(PER_LINUX)", Sys(syscall(SYS_personality, PER_LINUX)));
      check.Fails("bpf", Sys(syscall(SYS_bpf, 0, nullptr, 0)), EPERM);
      check.Fails("socket(AF_VSOCK)", Sys(socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)), EPERM);
      SysResult inet = Sys(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      check.Succeeds("socket(AF_INET)", inet);
      if (inet.rc >= 0) close(static_cast<int>(inet.rc));
    } else {
      check.Succeeds("mount tmpfs without seccomp", mounted);
      if (mounted.rc == 0) umount2(mount_point.c_str(), MNT_DETACH);
    }
    // Ordinary calls still work.
    check.Equal("getpid", std::to_string(getpid() > 0), "1");
    SysResult fd = Sys(open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    check.Succeeds("open", fd);
    char buf[64];
    if (fd.rc >= 0) {
      check.Succeeds("read", Sys(read(static_cast<int>(fd.rc), buf, sizeof(buf))));
      close(static_cast<int>(fd.rc));
    }
    SysResult child = Sys(fork());  // clone without CLONE_NEWUSER
    if (child.rc == 0) _exit(7);
    check.Succeeds("fork", child);
    int status = 0;
    if (child.rc > 0) waitpid(static_cast<pid_t>(child.rc), &status, 0);
    check.Equal("fork child exit", std::to_string(WEXITSTATUS(status)), "7");
    return check.Report();
  });
  if (!WIFEXITED(result.status) || WEXITSTATUS(result.status) != 0) {
    return "child died, status " + std::to_string(result.status) + ": " + result.report;
  }
  return result.report;
}

TEST_F(ProcessSecurityTest, DefaultSeccompDeniesWithCapSysAdminKept) {
  testing::TempDir dir;
  std::string mount_point = dir.Sub("x");
  ASSERT_EQ(mkdir(mount_point.c_str(), 0755), 0);
  EXPECT_EQ(ProbeDefaultProfile(/*with_seccomp=*/false, mount_point), "");
  EXPECT_EQ(ProbeDefaultProfile(/*with_seccomp=*/true, mount_point), "");
}

TEST_F(ProcessSecurityTest, WithoutNoNewPrivsTheFilterLoadsBeforeTheUidSwitch) {
  spec::Process process;
  process.user.uid = 1000;
  process.user.gid = 1000;
  process.no_new_privileges = false;
  process.capabilities = DefaultCapabilities();
  ProcessSecurity security = PrepareProcessSecurity(process, DefaultSeccompProfile());
  ChildResult result = RunInChild([&]() -> std::string {
    if (std::string err = Apply(security); !err.empty()) return err;
    Checks check;
    check.Equal("NoNewPrivs", StatusField("NoNewPrivs"), "0");
    check.Equal("Seccomp", StatusField("Seccomp"), "2");
    check.Equal("Uid", StatusField("Uid"), "1000\t1000\t1000\t1000");
    check.Equal("CapEff", StatusField("CapEff"),
                Hex16(ParseCapabilities(DefaultCapabilities()).effective));
    check.Fails("unshare(CLONE_NEWUSER)", Sys(unshare(CLONE_NEWUSER)), EPERM);
    return check.Report();
  });
  ASSERT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.status;
  EXPECT_EQ(result.report, "");
}

TEST_F(ProcessSecurityTest, CommonProgramsRunUnderTheDefaults) {
  if (access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no /bin/busybox";
  spec::Process process;  // root, Docker's default capabilities, no_new_privs off
  process.capabilities = DefaultCapabilities();
  ProcessSecurity security = PrepareProcessSecurity(process, DefaultSeccompProfile());
  ChildResult result = RunInChild([&]() -> std::string {
    if (std::string err = Apply(security); !err.empty()) return err;
    // ping needs CAP_NET_RAW (a default capability) for its raw socket; 127.0.0.1 only.
    const char* script =
        "ls / >/dev/null && ps >/dev/null && ping -c 1 -W 5 127.0.0.1 >/dev/null && "
        "cat /proc/self/status >/dev/null && [ \"$(id -u)\" = 0 ]";
    execl("/bin/busybox", "sh", "-c", script, static_cast<char*>(nullptr));
    return std::string("execl: ") + strerror(errno);
  });
  ASSERT_TRUE(WIFEXITED(result.status)) << result.status;
  EXPECT_EQ(WEXITSTATUS(result.status), 0) << result.report;
}

TEST_F(ProcessSecurityTest, ReportsTheFailedStep) {
  ProcessSecurity security;
  security.has_capabilities = true;
  security.caps.bounding = CallerBoundingSet();
  security.caps.effective = Bit(CAP_SYS_ADMIN);  // not in permitted: capset refuses
  security.caps.permitted = 0;
  ChildResult result = RunInChild([&]() -> std::string {
    const char* step = nullptr;
    int err = ApplyProcessSecurity(security, &step);
    return std::string(step ? step : "(none)") + ":" + ErrnoName(err);
  });
  ASSERT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.status;
  EXPECT_EQ(result.report, "capset:EPERM");
}

TEST_F(ProcessSecurityTest, SpecStyleProfileWithFlagsLoads) {
  spec::Seccomp profile;
  profile.default_action = "SCMP_ACT_ALLOW";
  profile.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_TSYNC"};
  spec::SeccompSyscall rule;
  rule.names = {"getppid"};
  rule.action = "SCMP_ACT_ERRNO";
  rule.errno_ret = ETXTBSY;
  rule.args = {{0, 42, 0, "SCMP_CMP_EQ"}};
  profile.syscalls.push_back(rule);
  spec::Process process;
  process.no_new_privileges = true;
  ProcessSecurity security = PrepareProcessSecurity(process, profile);
  ChildResult result = RunInChild([&]() -> std::string {
    if (std::string err = Apply(security); !err.empty()) return err;
    Checks check;
    check.Fails("getppid(42)", Sys(syscall(SYS_getppid, 42)), ETXTBSY);
    check.Succeeds("getppid(0)", Sys(syscall(SYS_getppid, 0)));
    return check.Report();
  });
  ASSERT_TRUE(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0) << result.status;
  EXPECT_EQ(result.report, "");
}

}  // namespace
}  // namespace berth::security
