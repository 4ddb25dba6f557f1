#include "runtime/linux/container.h"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "runtime/cgroup/cgroup.h"
#include "runtime/common/error.h"
#include "runtime/common/fd_io.h"
#include "runtime/common/file_util.h"
#include "runtime/common/phase_timer.h"
#include "runtime/common/scope_guard.h"
#include "runtime/common/unique_fd.h"
#include "runtime/linux/mount_plan.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/premade_mounts.h"
#include "runtime/linux/rootfs.h"
#include "runtime/linux/shell.h"
#include "runtime/linux/shell_internal.h"
#include "runtime/monitor/client.h"
#include "runtime/monitor/launch.h"
#include "runtime/security/security.h"
#include "runtime/spec/parser.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace berth::container {
namespace {

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// A process that opens its own stdout again (/dev/stdout, /proc/self/fd/1: nginx's
// access_log, images that link their log files there) goes through the pipe's inode
// permissions. The pipe is made by host root, mode 0600: the root of a user namespace (or
// any non-root user) gets EACCES. As runc does for stdio, the pipe is given to the user the
// process runs as, mapped to the host; the monitor's end is open already and stays usable.
void GiveConsoleToProcessUser(int fd, const spec::Spec& spec, bool new_user_namespace) {
  std::optional<uint32_t> uid = spec.process.user.uid;
  std::optional<uint32_t> gid = spec.process.user.gid;
  if (new_user_namespace) {
    uid = HostIdFor(spec.linux.uid_mappings, *uid);
    gid = HostIdFor(spec.linux.gid_mappings, *gid);
    if (!uid || !gid) return;  // unmapped: nobody inside could own it anyway
  }
  if (*uid == 0 && *gid == 0) return;
  if (::fchown(fd, *uid, *gid) != 0) ThrowErrno("fchown", "console pipe");
}

// Reads until EOF or `limit` bytes.
std::string ReadUpTo(int fd, size_t limit) {
  std::string out;
  char buf[512];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.find('\n') != std::string::npos) break;
  }
  return out;
}

// Reports a failure from a child process to its creator as one line, then exits.
[[noreturn]] void ChildFail(int fd, const std::string& message) {
  std::string line = "err " + message + "\n";
  WriteFully(fd, line.data(), line.size());
  ::_exit(1);
}

std::string EnvValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return {};
}

// A new process must not inherit its creator's signal state: a blocked SIGTERM in the
// caller (berth-runtime run forwards signals by blocking them; a daemon may block them in
// its threads) would otherwise stay blocked in the container's processes for ever.
void ResetSignals() {
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  }
}

std::vector<char*> CStrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string DefaultCgroupPath(const CreateOptions& options) {
  if (!options.cgroup_path.empty()) return options.cgroup_path;
  std::string p = options.spec.linux.cgroups_path;
  // systemd-style "slice:prefix:name" paths are not ours to interpret here.
  if (!p.empty() && p.find(':') == std::string::npos) {
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    if (p.find("..") != std::string::npos) {
      throw Error(ErrorKind::kInvalidArgument, "linux.cgroupsPath: must not contain \"..\"");
    }
    return p;
  }
  return "berth/" + options.id;
}

// clone3's arguments (linux/sched.h, not included: it clashes with <sched.h>).
struct Clone3Args {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// Moving a process into a cgroup by pid (cgroup.procs) takes cgroup_threadgroup_rwsem for
// writing, which waits for an RCU grace period: ms per spawn, more on a busy host. These
// let the init join without it: cgroup2 at clone (CLONE_INTO_CGROUP) and each v1 hierarchy
// by the init writing "0" to its "tasks". Opened by the creator (as host root).
struct JoinedCgroups {
  UniqueFd v2_dir;  // -1: no cgroup2 hierarchy
  std::vector<UniqueFd> v1_tasks;
};

JoinedCgroups OpenCgroupsToJoin(const cgroup::CgroupHost& host, const std::string& path) {
  JoinedCgroups j;
  if (!host.unified_mount.empty()) {
    std::string dir = JoinPath(host.unified_mount, path);
    j.v2_dir.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!j.v2_dir) ThrowErrno("open", dir);
  }
  std::vector<std::string> seen;
  for (const auto& [controller, mount] : host.v1_mounts) {
    if (std::find(seen.begin(), seen.end(), mount) != seen.end()) continue;
    seen.push_back(mount);
    std::string tasks = JoinPath(JoinPath(mount, path), "tasks");
    UniqueFd fd(::open(tasks.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) ThrowErrno("open", tasks);
    j.v1_tasks.push_back(std::move(fd));
  }
  return j;
}

// A shell's init joins its cgroups by writing "0" to each.
void SendCgroupsToShell(Shell& shell, const cgroup::CgroupHost& host, const std::string& path,
                        const JoinedCgroups& joined) {
  std::vector<int> cgroup_fds;
  for (const auto& fd : joined.v1_tasks) cgroup_fds.push_back(fd.get());
  UniqueFd v2_procs;
  if (joined.v2_dir) {
    v2_procs.reset(::openat(joined.v2_dir.get(), "cgroup.procs", O_WRONLY | O_CLOEXEC));
    if (!v2_procs) ThrowErrno("open", JoinPath(host.unified_mount, path) + "/cgroup.procs");
    cgroup_fds.push_back(v2_procs.get());
  }
  shell.SendCgroupsToInit(cgroup_fds);
}

// Everything the container's init needs, prepared before clone.
struct InitPlan {
  const spec::Spec* spec;
  RootfsPlan rootfs;
  security::ProcessSecurity security;
  NamespacePlan namespaces;
  int sync_fd;      // socket to M: "go" arrives, "ready"/"err ..." leaves
  int start_fd;     // read end: one byte = exec now
  int exec_err_fd;  // write end: errno of a failed execve
  int stdin_fd;     // -1: keep
  int stdout_fd;    // -1: keep
  int stderr_fd;
  bool terminal = false;  // stdin is a pty slave: make it the controlling terminal
  // "tasks" of each v1 hierarchy, which the init joins itself (JoinedCgroups); empty when
  // M moves it by pid instead.
  std::vector<int> v1_tasks_fds;
  // A claimed shell's init: its namespaces are entered and loopback is up already.
  bool shell = false;
  // A shell's init: its cgroups arrive here (shell_internal.h) while it builds its root,
  // and it joins them (and makes its cgroup namespace) just before the cgroup mounts.
  int cgroups_fd = -1;
  // The creator's and monitor's ends, which the init must not hold: a start pipe it holds
  // itself would never report the monitor's death as EOF.
  std::vector<int> close_fds;
};

// The init's plan from the spec: the same in the creator (which checks it before any
// process exists) and in a claimed shell's init (which was made before the spec).
InitPlan PlanInit(const spec::Spec& spec, const NamespacePlan& namespaces,
                  const cgroup::CgroupHost& host, const std::string& cgroup_path) {
  RootfsHostInfo host_info;
  host_info.new_user_namespace = namespaces.new_user;
  host_info.new_cgroup_namespace = namespaces.new_cgroup;
  host_info.new_network_namespace =
      namespaces.new_network || spec.FindNamespace(spec::NamespaceType::kNetwork) != nullptr;
  host_info.cgroup_host = host;
  for (const auto& [controller, mount] : host.v1_mounts) {
    std::string name = mount.substr(mount.rfind('/') + 1);
    host_info.cgroup_dirs[name] = JoinPath(mount, cgroup_path);
  }
  if (!host.unified_mount.empty())
    host_info.unified_dir = JoinPath(host.unified_mount, cgroup_path);

  InitPlan init;
  init.spec = &spec;
  init.rootfs = BuildRootfsPlan(spec, host_info);
  init.security = security::PrepareProcessSecurity(spec.process, spec.linux.seccomp);
  init.namespaces = namespaces;
  return init;
}

// The container's init, from clone until execve. Single-threaded, so allocation is safe;
// failures are reported as one line on the sync socket.
[[noreturn]] void RunInit(const InitPlan& p) {
  try {
    for (int fd : p.close_fds) {
      if (fd >= 0) ::close(fd);
    }
    ResetSignals();
    PhaseTimer timer("  init");
    if (!p.shell) {
      char go = 0;
      if (::read(p.sync_fd, &go, 1) != 1) ::_exit(1);  // M gave up
      timer.Mark("wait go");
    }
    auto join_cgroups = [&p] {
      std::vector<UniqueFd> arrived;
      if (p.cgroups_fd >= 0) {
        std::string body;
        if (!ReceiveMessageWithFds(p.cgroups_fd, &body, &arrived, "shell claim (cgroups)", 64)) {
          ::_exit(1);  // the creator gave up: the shell ends
        }
        if (body != internal::kClaimCgroupsBody)
          throw Error(ErrorKind::kInternal, "shell claim: malformed");
        ::close(p.cgroups_fd);
      }
      // "0" moves the writer alone: through a v1 "tasks" file that takes no global lock (a
      // single-threaded process); cgroup2 has no such path, and its cgroup.procs takes the
      // threadgroup lock.
      for (int fd : p.v1_tasks_fds) {
        if (::write(fd, "0", 1) != 1) ThrowErrno("write", "cgroup tasks (join own cgroup)");
      }
      for (const UniqueFd& fd : arrived) {
        if (::write(fd.get(), "0", 1) != 1) ThrowErrno("write", "cgroup (join own cgroup)");
      }
    };
    auto unshare_cgroup_namespace = [&p] {
      if (p.namespaces.new_cgroup && ::unshare(CLONE_NEWCGROUP) != 0) {
        ThrowErrno("unshare", "cgroup namespace");
      }
    };
    const bool cgroups_later = p.cgroups_fd >= 0;
    if (!cgroups_later) {
      join_cgroups();
      timer.Mark("join cgroups");
    }
    if (p.stdin_fd >= 0 && ::dup2(p.stdin_fd, 0) < 0) ThrowErrno("dup2 stdin");
    if (p.stdout_fd >= 0 && ::dup2(p.stdout_fd, 1) < 0) ThrowErrno("dup2 stdout");
    if (p.stderr_fd >= 0 && ::dup2(p.stderr_fd, 2) < 0) ThrowErrno("dup2 stderr");
    if (!p.shell) JoinNamespacesInChild(p.namespaces);
    if (p.namespaces.new_user) {
      if (::setresgid(0, 0, 0) != 0) ThrowErrno("setresgid", "0");
      if (::setresuid(0, 0, 0) != 0) ThrowErrno("setresuid", "0");
    }
    if (p.namespaces.new_network && !p.shell) BringUpLoopback();
    if (!cgroups_later) unshare_cgroup_namespace();
    if (!p.rootfs.hostname.empty() &&
        ::sethostname(p.rootfs.hostname.data(), p.rootfs.hostname.size()) != 0) {
      ThrowErrno("sethostname", p.rootfs.hostname);
    }
    timer.Mark("namespaces");
    if (cgroups_later) {
      // The namespace follows the join: its root is the group joined.
      SetupRootfs(p.rootfs, [&] {
        join_cgroups();
        unshare_cgroup_namespace();
      });
    } else {
      SetupRootfs(p.rootfs);
    }
    timer.Mark("rootfs");
    const auto& proc = p.spec->process;
    if (::chdir(proc.cwd.c_str()) != 0) {
      ThrowErrno("chdir", "process.cwd " + proc.cwd);
    }
    std::string exe = FindExecutable(proc.args[0], proc.env);
    if (exe.empty()) {
      throw Error(ErrorKind::kNotFound,
                  "process.args[0]: executable file not found in $PATH: \"" + proc.args[0] + "\"");
    }
    std::vector<std::string> args = proc.args;
    std::vector<std::string> env = proc.env;
    auto argv = CStrings(args);
    auto envp = CStrings(env);
    // A session of its own: signals for the creator's terminal must not reach it.
    ::setsid();
    if (p.terminal && ::ioctl(0, TIOCSCTTY, 0) != 0) ThrowErrno("TIOCSCTTY", "/dev/console");
    const char* step = nullptr;
    if (int err = security::ApplyProcessSecurity(p.security, &step); err != 0) {
      ThrowErrnoValue(err, step ? step : "apply security profile");
    }
    timer.Mark("security");
    WriteFully(p.sync_fd, "ready\n", 6);
    ::close(p.sync_fd);
    char start = 0;
    ssize_t n;
    do {
      n = ::read(p.start_fd, &start, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(0);  // deleted before it was started
    ::execve(exe.c_str(), argv.data(), envp.data());
    int err = errno;
    // "start" has been answered: the container's own stderr is where its user looks, as
    // with runc ("exec /app: exec format error"); the status gets exec_errno.
    std::string why = "berth: exec " + exe + ": " + std::strerror(err) + "\n";
    (void)!::write(STDERR_FILENO, why.data(), why.size());
    WriteFully(p.exec_err_fd, &err, sizeof err);
    ::_exit(err == ENOENT ? 127 : 126);  // the shell's codes, as Docker uses them
  } catch (const Error& e) {
    ChildFail(p.sync_fd, e.what());
  } catch (const std::exception& e) {
    ChildFail(p.sync_fd, e.what());
  }
}

// "berth/<id>" leaves "berth" behind in every hierarchy once the last container is gone;
// remove such parents when empty (rmdir refuses a group that still has children).
void RemoveEmptyCgroupParents(const cgroup::CgroupHost& host, std::string path) {
  std::vector<std::string> roots;
  for (const auto& [controller, mount] : host.v1_mounts) roots.push_back(mount);
  if (!host.unified_mount.empty()) roots.push_back(host.unified_mount);
  std::sort(roots.begin(), roots.end());
  roots.erase(std::unique(roots.begin(), roots.end()), roots.end());
  for (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0;
       slash = path.rfind('/')) {
    path.resize(slash);
    for (const auto& root : roots) ::rmdir(JoinPath(root, path).c_str());
  }
}

struct Pty {
  UniqueFd master;
  UniqueFd slave;
  std::string slave_path;
};

Pty OpenPty() {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) ThrowErrno("posix_openpt");
  if (::grantpt(master.get()) != 0) ThrowErrno("grantpt");
  if (::unlockpt(master.get()) != 0) ThrowErrno("unlockpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) ThrowErrno("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) ThrowErrno("open", name);
  return {std::move(master), std::move(slave), name};
}

UniqueFd ConnectUnix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) ThrowErrno("socket", path);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) ThrowErrnoValue(ENAMETOOLONG, "connect", path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ThrowErrno("connect console socket", path);
  }
  return fd;
}

}  // namespace

namespace internal {
namespace {

// The first touch of each page the claim's work uses (a copy-on-write fault, or a fresh
// one for new heap and stack) traps to the hypervisor on a paravirtualized guest: ~1.5 ms
// of a claim here. A shell touches them while it waits; malloc keeps the heap it freed.
void WarmMemory() {
  constexpr size_t kHeap = 2u << 20, kStack = 256u << 10;
  ::mallopt(M_TRIM_THRESHOLD, 64 << 20);
  ::mallopt(M_MMAP_THRESHOLD, 16 << 20);
  if (void* heap = std::malloc(kHeap)) {
    std::memset(heap, 0, kHeap);
    std::free(heap);
  }
  [[maybe_unused]] volatile char stack[kStack];
  for (size_t i = 0; i < kStack; i += 4096) stack[i] = 0;
}

// The claim's own work (parse a spec, plan it, compile its seccomp filter) once, on the
// default spec with Berth's default seccomp profile (berthd's instances have it), while the
// shell waits: the code and tables it runs are file pages, each faulted in on its first
// touch in this process, which traps to the hypervisor here, and libseccomp's lazily built
// state. Without the profile the claim's plan took 3.7-4.8 ms instead of ~0.4 in a shell
// made by the zygote, which has never compiled a filter (a spawner-forked shell inherited
// the spawner's).
void WarmCode(const ShellInitContext& context) {
  try {
    spec::Spec s = spec::ParseSpec(spec::SerializeSpec(spec::DefaultSpec()));
    s.root.path = "/";
    s.linux.seccomp = security::DefaultSeccompProfile();
    PlanInit(s, PlanNamespaces(s), context.cgroup_host, "berth/warm");
  } catch (const std::exception&) {
    // Only a head start: the claim does the same work for real.
  }
}

// /dev, /sys and /proc of the shape's default spec (berthd's instances have its mounts and
// masks), made while the shell waits (~1.5 ms of a claim otherwise). Files made in a user
// namespace's tmpfs need an owner mapped there, so the init becomes its namespace's root
// first, as a claimed init does anyway; that clears PR_SET_PDEATHSIG, which is armed again.
// Returns false when M is gone meanwhile.
bool PremakeShellMounts(const ShellInitContext& context, PremadeMounts* premade) {
  if (!(context.namespaces.clone_flags & CLONE_NEWNS)) return true;
  if (context.namespaces.new_user) {
    if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
      premade->dev.unmade = premade->sys.unmade = premade->proc.unmade =
          "setresuid 0: " + std::string(strerror(errno));
      return true;
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct pollfd p = {context.sync_fd, POLLRDHUP, 0};
    if (::poll(&p, 1, 0) != 0) return false;  // M died before the signal was armed again
  }
  try {
    RootfsHostInfo host;
    host.new_user_namespace = context.namespaces.new_user;
    host.new_cgroup_namespace = context.namespaces.new_cgroup;
    host.new_network_namespace = context.namespaces.new_network;
    host.cgroup_host = context.cgroup_host;
    *premade = PremakeMounts(BuildRootfsPlan(spec::DefaultSpec(), host));
  } catch (const Error& e) {
    premade->dev.unmade = premade->sys.unmade = premade->proc.unmade = e.what();
  }
  return true;
}

}  // namespace

void WriteIdMap(pid_t pid, const char* file, const std::vector<spec::IdMapping>& maps) {
  if (maps.empty()) return;
  std::string text;
  for (const auto& m : maps) {
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  }
  std::string path = "/proc/" + std::to_string(pid) + "/" + file;
  WithContext(std::string("linux.") + (file[0] == 'u' ? "uidMappings" : "gidMappings"),
              [&] { WriteToFile(path, text); });
}

[[noreturn]] void RunShellInit(const ShellInitContext& context) {
  try {
    ResetSignals();
    // Until claimed, the shell dies with M; once claimed, the init outlives the monitor as
    // a cold create's does.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    char go = 0;
    if (::read(context.sync_fd, &go, 1) != 1) ::_exit(1);  // M gave up
    if (context.namespaces.new_network) BringUpLoopback();
    PremadeMounts premade;
    if (!PremakeShellMounts(context, &premade)) ::_exit(1);
    WarmMemory();
    WarmCode(context);
    std::string body;
    std::vector<UniqueFd> fds;
    if (!ReceiveMessageWithFds(context.claim_fd, &body, &fds, "shell claim")) ::_exit(0);
    ::prctl(PR_SET_PDEATHSIG, 0);
    PhaseTimer timer("  shell init");
    // The header, a newline, the spec as it is: one parse of the spec, not two (escaped in
    // a JSON string, it would be parsed and unescaped once more).
    const size_t newline = body.find('\n');
    if (newline == std::string::npos) throw Error(ErrorKind::kInternal, "shell claim: malformed");
    rapidjson::Document doc;
    doc.Parse(body.data(), newline);
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("cgroup_path") ||
        !doc["cgroup_path"].IsString()) {
      throw Error(ErrorKind::kInternal, "shell claim: malformed");
    }
    if (fds.size() != kClaimInitFixedFds) {
      throw Error(ErrorKind::kInternal, "shell claim: wrong number of descriptors");
    }
    const spec::Spec spec = spec::ParseSpec(std::string_view(body).substr(newline + 1));
    const std::string cgroup_path(doc["cgroup_path"].GetString(),
                                  doc["cgroup_path"].GetStringLength());
    const NamespacePlan namespaces = PlanNamespaces(spec);
    if (namespaces.clone_flags != context.namespaces.clone_flags || !namespaces.joins.empty() ||
        !namespaces.pid_join_path.empty()) {
      throw Error(ErrorKind::kInternal, "shell claim: the spec's namespaces are not the shell's");
    }
    timer.Mark("parse claim");
    InitPlan init = PlanInit(spec, namespaces, context.cgroup_host, cgroup_path);
    timer.Mark("plan");
    init.shell = true;
    init.sync_fd = context.sync_fd;
    init.rootfs.rootfs_tree_fd = fds[kClaimRootTree].get();
    const std::vector<std::string> premade_used = UsePremadeMounts(init.rootfs, premade);
    if (std::getenv("BERTH_TIMING")) {
      std::string used;
      for (const auto& path : premade_used) used += " " + path;
      std::fprintf(stderr, "  shell init: premade used:%s\n", used.c_str());
      for (const auto* tree : {&premade.dev, &premade.sys, &premade.proc}) {
        if (!tree->unmade.empty())
          std::fprintf(stderr, "  shell init: not premade: %s\n", tree->unmade.c_str());
      }
    }
    timer.Mark("premade mounts");
    init.start_fd = fds[kClaimStartRead].get();
    init.exec_err_fd = fds[kClaimExecErrWrite].get();
    init.stdin_fd = fds[kClaimStdin].get();
    init.stdout_fd = init.stderr_fd = fds[kClaimStdout].get();
    init.cgroups_fd = context.claim_fd;
    RunInit(init);
  } catch (const Error& e) {
    ChildFail(context.sync_fd, e.what());
  } catch (const std::exception& e) {
    ChildFail(context.sync_fd, e.what());
  }
}

}  // namespace internal

const char* StatusName(Status status) {
  switch (status) {
    case Status::kCreated:
      return "created";
    case Status::kRunning:
      return "running";
    case Status::kPaused:
      return "paused";
    case Status::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::string FindExecutable(const std::string& name, const std::vector<std::string>& env) {
  auto usable = [](const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0;
  };
  if (name.find('/') != std::string::npos) return usable(name) ? name : std::string();
  std::string path = EnvValue(env, "PATH");
  if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    if (usable(candidate)) return candidate;
    start = end + 1;
  }
  return {};
}

StateRecord CreateContainer(const CreateOptions& options) {
  return CreateContainer(options, nullptr);
}

StateRecord CreateContainer(const CreateOptions& options, std::unique_ptr<Shell> shell,
                            std::string_view spec_json) {
  PhaseTimer timer("create");
  ValidateContainerId(options.id);
  const spec::Spec& spec = options.spec;
  spec::ValidateSpec(spec);
  const std::string state_dir = StateDir(options.state_root, options.id);
  MakeDirs(options.state_root, 0700);
  if (::mkdir(state_dir.c_str(), 0700) != 0) {
    if (errno == EEXIST) {
      throw Error(ErrorKind::kAlreadyExists, "container \"" + options.id + "\" already exists");
    }
    ThrowErrno("mkdir", state_dir);
  }
  Rollback rollback;
  rollback.Add([state_dir] { RemoveTree(state_dir); });

  // Everything that can fail on bad input, before any process exists.
  NamespacePlan namespaces = PlanNamespaces(spec);
  timer.Mark("validate");
  cgroup::CgroupHost host = cgroup::CachedCgroupHost();
  timer.Mark("detect cgroups");
  const std::string cgroup_path = DefaultCgroupPath(options);

  // The pipes between creator, monitor and init.
  int sync_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pair) != 0) {
    ThrowErrno("socketpair");
  }
  UniqueFd sync_parent(sync_pair[0]), sync_child(sync_pair[1]);
  Pipe start = MakePipe();
  Pipe exec_err = MakePipe();
  Pipe ready = MakePipe();
  Pipe console;
  UniqueFd dev_null;
  UniqueFd pty_slave;
  std::string pty_slave_path;
  // In the foreground the container shares the caller's stdio, terminal or not.
  const bool terminal = spec.process.terminal && !options.inherit_stdio;
  if (terminal) {
    // console.read is the pty master: the monitor reads it like a pipe.
    auto [master, slave, slave_path] = OpenPty();
    console.read = std::move(master);
    pty_slave = std::move(slave);
    pty_slave_path = slave_path;
  } else if (!options.inherit_stdio) {
    console = MakePipe();
    GiveConsoleToProcessUser(console.write.get(), spec, namespaces.new_user);
    dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null) ThrowErrno("open", "/dev/null");
  }

  StateRecord record;
  record.oci_version = spec.oci_version.empty() ? "1.0.2" : spec.oci_version;
  record.id = options.id;
  record.bundle = options.bundle;
  record.rootfs = spec.root.path;
  record.cgroup_path = cgroup_path;
  record.created = NowRfc3339();
  record.user_namespace = namespaces.new_user;
  record.annotations = spec.annotations;

  if (shell) {
    if (options.inherit_stdio || terminal || !options.caller_reaps_monitor) {
      throw Error(ErrorKind::kInternal, "a shell serves detached containers without a terminal");
    }
    if (auto shape = ShellShapeOf(spec); !shape || !(*shape == shell->shape())) {
      throw Error(ErrorKind::kInternal, "the shell was made for another shape");
    }
    if (!shell->alive()) throw Error(ErrorKind::kSystem, "the shell has died");
    // Shells are made at a low priority (the spawner's maker); the container runs at ours,
    // from here on: its init goes to work with the claim below.
    const int our_nice = ::getpriority(PRIO_PROCESS, 0);
    for (pid_t pid : {shell->init_pid(), shell->monitor_pid()}) {
      if (::setpriority(PRIO_PROCESS, static_cast<id_t>(pid), our_nice) != 0) {
        ThrowErrno("setpriority", "shell process " + std::to_string(pid));
      }
    }
    // The init's part, first: its root (made after its mount namespace, as a detached tree),
    // its stdio and its spec. It parses, plans and builds its root up to its cgroups' mounts
    // while we make the cgroups (then it gets them below).
    UniqueFd root_tree(
        static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, spec.root.path.c_str(),
                                   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
    if (!root_tree) ThrowErrno("open_tree", spec.root.path);
    // A clone of a shared mount (the host's "/" is shared under systemd) joins its peer
    // group: what the init mounts under its root would show up under the host's copy.
    struct mount_attr private_attr = {};
    private_attr.propagation = MS_PRIVATE;
    if (::syscall(SYS_mount_setattr, root_tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE,
                  &private_attr, sizeof private_attr) != 0) {
      ThrowErrno("mount_setattr MS_PRIVATE", spec.root.path);
    }
    const std::string own_spec_json = spec_json.empty() ? spec::SerializeSpec(spec) : "";
    const std::string_view spec_text = spec_json.empty() ? own_spec_json : spec_json;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("cgroup_path");
    w.String(cgroup_path.c_str(), static_cast<rapidjson::SizeType>(cgroup_path.size()));
    w.EndObject();
    std::string claim(buf.GetString(), buf.GetSize());
    claim += '\n';
    claim += spec_text;
    shell->SendToInit(claim, {root_tree.get(), start.read.get(), exec_err.write.get(),
                              dev_null.get(), console.write.get()});
    timer.Mark("claim init");
  }

  std::shared_ptr<cgroup::Cgroup> cg = cgroup::OpenCgroup(host, cgroup_path);
  try {
    if (options.cgroup_made_ahead.valid()) {
      options.cgroup_made_ahead.get();
    } else {
      cg->Create();
    }
  } catch (const Error&) {
    cgroup::ForgetCachedCgroupHost();  // in case the layout changed in a way not fingerprinted
    throw;
  }
  timer.Mark("cgroup create");
  rollback.Add([cg] {
    cg->KillAll();
    cg->Destroy();
  });
  spec::Resources resources = spec.linux.resources.value_or(spec::Resources{});
  resources.devices = EffectiveDeviceRules(spec);
  // A shell's init, waiting for its groups, gets them before their limits (it builds its
  // root meanwhile): they are written right after, long before the process it will run
  // starts. A cold init is cloned into them after both.
  JoinedCgroups joined = OpenCgroupsToJoin(host, cgroup_path);
  if (shell) {
    SendCgroupsToShell(*shell, host, cgroup_path, joined);
    timer.Mark("cgroups sent");
  }
  cg->Apply(resources);
  timer.Mark("cgroup apply");
  InitPlan init = shell ? InitPlan{} : PlanInit(spec, namespaces, host, cgroup_path);
  timer.Mark("plan");

  if (terminal) init.rootfs.console = pty_slave_path;
  init.sync_fd = sync_child.get();
  init.start_fd = start.read.get();
  init.exec_err_fd = exec_err.write.get();
  init.terminal = terminal;
  if (terminal) {
    init.stdin_fd = init.stdout_fd = init.stderr_fd = pty_slave.get();
  } else {
    init.stdin_fd = options.inherit_stdio ? -1 : dev_null.get();
    init.stdout_fd = options.inherit_stdio ? -1 : console.write.get();
    init.stderr_fd = init.stdout_fd;
  }
  UniqueFd console_socket;
  if (terminal && !options.console_socket.empty()) {
    console_socket = ConnectUnix(options.console_socket);
    SendFd(console_socket.get(), console.read.get(), "console socket");
    console.read.reset();  // the caller owns the terminal now
  }

  init.close_fds = {sync_parent.get(), start.write.get(), exec_err.read.get(),
                    ready.read.get(),  ready.write.get(), console.read.get()};

  monitor::MonitorArgs margs;
  margs.state_dir = state_dir;
  margs.console_max = options.console_max;
  if (host.version == cgroup::CgroupVersion::kV2) {
    std::string dir = cg->DirectoryFor("");
    margs.freezer = dir + "/cgroup.freeze";
    margs.cgroup_procs = dir + "/cgroup.procs";
    margs.oom_file = dir + "/memory.events";
  } else {
    if (auto d = cg->DirectoryFor("freezer"); !d.empty()) margs.freezer = d + "/freezer.state";
    if (auto d = cg->DirectoryFor("pids"); !d.empty()) margs.cgroup_procs = d + "/cgroup.procs";
    if (auto d = cg->DirectoryFor("memory"); !d.empty()) margs.oom_file = d + "/memory.oom_control";
  }
  // Built before the fork: M must not allocate on its way to the monitor.
  // A shell's monitor is exec'd already: it gets margs with its claim.
  std::optional<monitor::MonitorCommand> monitor_command;
  if (!shell) monitor_command.emplace(margs);
  monitor::MonitorFds mfds;
  mfds.start_fd = start.write.get();
  mfds.exec_err_fd = exec_err.read.get();
  mfds.ready_fd = ready.write.get();
  mfds.console_fd = console.read ? console.read.get() : -1;

  timer.Mark("pipes+command");
  if (shell) {
    if (options.before_monitor_claim) options.before_monitor_claim(shell->init_pid());
    margs.start_when_ready = options.start_when_ready;
    // The monitor's part: its arguments, as a cold create's M would exec it with.
    std::vector<int> monitor_fds = {start.write.get(), exec_err.read.get(), ready.write.get()};
    if (console.read) monitor_fds.push_back(console.read.get());
    shell->SendToMonitor(monitor::MonitorClaimWords(margs), monitor_fds);
    // While the init finishes its root: before we return, as the caller may read the state
    // at once (the monitor never reads it).
    record.init_pid = shell->init_pid();
    record.init_start_time = ProcessStartTime(record.init_pid);
    record.monitor_pid = shell->monitor_pid();
    WriteStateRecord(state_dir, record);
    timer.Mark("claim");
    if (options.once_created) options.once_created();
  }
  // Double fork: M ends up in its own session, re-parented away from us, so a long-lived
  // caller (berthd) never collects its zombie and the monitor outlives the caller.
  const bool double_fork = !options.caller_reaps_monitor && !shell;
  pid_t intermediate = shell ? -1 : ::fork();
  if (!shell && intermediate < 0) ThrowErrno("fork");
  if (intermediate == 0) {
    ::setsid();
    if (double_fork) {
      pid_t m = ::fork();
      if (m < 0) ChildFail(ready.write.get(), "fork monitor: " + std::string(strerror(errno)));
      if (m > 0) ::_exit(0);
    }
    // M.
    try {
      PhaseTimer mtimer("  M");
      ::prctl(PR_SET_CHILD_SUBREAPER, 1);
      JoinPidNamespaceBeforeClone(namespaces);
      pid_t init_pid = -1;
      bool joins_itself = false;
      if (joined.v2_dir || !joined.v1_tasks.empty()) {
        for (const auto& fd : joined.v1_tasks) init.v1_tasks_fds.push_back(fd.get());
        Clone3Args args = {};
        args.flags = namespaces.clone_flags | (joined.v2_dir ? kCloneIntoCgroup : 0);
        args.exit_signal = SIGCHLD;
        args.cgroup = joined.v2_dir ? static_cast<uint64_t>(joined.v2_dir.get()) : 0;
        init_pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
        if (init_pid == 0) {
          sync_parent.reset();
          RunInit(init);
        }
        joins_itself = init_pid > 0;
        if (!joins_itself) init.v1_tasks_fds.clear();  // the fallback's init is moved by pid
      }
      if (init_pid < 0) {  // no clone3 (ENOSYS) or no CLONE_INTO_CGROUP (EINVAL): by pid
        init_pid = static_cast<pid_t>(::syscall(SYS_clone, namespaces.clone_flags | SIGCHLD,
                                                nullptr, nullptr, nullptr, nullptr));
      }
      if (init_pid < 0) ThrowErrno("clone", "container init");
      if (init_pid == 0) {
        sync_parent.reset();
        RunInit(init);
      }
      mtimer.Mark("clone");
      sync_child.reset();
      start.read.reset();
      exec_err.write.reset();
      console.write.reset();
      dev_null.reset();
      pty_slave.reset();
      auto kill_init = [init_pid] {
        ::kill(init_pid, SIGKILL);
        ::waitpid(init_pid, nullptr, 0);
      };
      try {
        if (namespaces.new_user) {
          internal::WriteIdMap(init_pid, "uid_map", spec.linux.uid_mappings);
          internal::WriteIdMap(init_pid, "gid_map", spec.linux.gid_mappings);
        }
        if (!joins_itself) cg->AddProcess(init_pid);
      } catch (const Error& e) {
        kill_init();
        ChildFail(ready.write.get(), e.what());
      }
      mtimer.Mark("maps+cgroup");
      WriteFully(sync_parent.get(), "g", 1);
      // The monitor takes over from here: it starts while the init builds its root, and
      // waits for the init's "ready" (or its error) before it answers the creator.
      record.init_pid = init_pid;
      record.init_start_time = ProcessStartTime(init_pid);
      record.monitor_pid = ::getpid();
      WriteStateRecord(state_dir, record);
      mfds.init_pid = init_pid;
      mfds.init_sync_fd = sync_parent.get();
      mtimer.Mark("state written");
      monitor_command->Exec(mfds);
    } catch (const Error& e) {
      ChildFail(ready.write.get(), e.what());
    } catch (const std::exception& e) {
      ChildFail(ready.write.get(), e.what());
    }
  }
  // The creator.
  ready.write.reset();
  sync_child.reset();
  sync_parent.reset();
  start.read.reset();
  start.write.reset();
  exec_err.read.reset();
  exec_err.write.reset();
  console.read.reset();
  console.write.reset();
  pty_slave.reset();
  int wstatus = 0;
  while (double_fork && ::waitpid(intermediate, &wstatus, 0) < 0 && errno == EINTR) {
  }
  timer.Mark("fork");
  std::string reply = ReadUpTo(ready.read.get(), 8192);
  timer.Mark("monitor ready");
  if (reply != "ok\n") {
    std::string msg = reply.rfind("err ", 0) == 0 ? reply.substr(4) : "monitor failed to start";
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    ErrorKind kind = ErrorKind::kSystem;
    if (msg.find("not found") != std::string::npos || msg.find("ENOENT") != std::string::npos) {
      kind = ErrorKind::kNotFound;
    } else if (msg.find("EINVAL") != std::string::npos) {
      kind = ErrorKind::kInvalidArgument;
    }
    throw Error(kind, "create container \"" + options.id + "\": " + msg);
  }
  // A cold create's M wrote the record (the init's pid is M's to know); a shell's is ours.
  if (!shell) record = ReadStateRecord(options.state_root, options.id);
  rollback.Commit();
  timer.Mark("done");
  return record;
}

void StartContainer(const std::string& state_root, const std::string& id) {
  ValidateContainerId(id);
  try {
    monitor::MonitorClient::Request(StateDir(state_root, id), "start", 10000);
  } catch (const Error& e) {
    // No monitor to ask: a container that does not exist says so (the record is read only
    // then, not on a start's way).
    if (e.kind() == ErrorKind::kNotFound) ReadStateRecord(state_root, id);
    throw;
  }
}

namespace {

ContainerInfo InfoFrom(StateRecord record, const monitor::MonitorStatus& st) {
  ContainerInfo info;
  info.record = std::move(record);
  switch (st.state) {
    case monitor::MonitorState::kCreated:
      info.status = Status::kCreated;
      break;
    case monitor::MonitorState::kRunning:
      info.status = Status::kRunning;
      break;
    case monitor::MonitorState::kPaused:
      info.status = Status::kPaused;
      break;
    case monitor::MonitorState::kStopped:
      info.status = Status::kStopped;
      break;
  }
  info.exit_code = st.exit_code;
  info.exit_signal = st.exit_signal;
  info.oom_killed = st.oom_killed;
  info.started_at = st.started_at.value_or("");
  info.finished_at = st.finished_at.value_or("");
  return info;
}

}  // namespace

ContainerInfo QueryContainer(const std::string& state_root, const std::string& id) {
  StateRecord record = ReadStateRecord(state_root, id);
  const std::string dir = StateDir(state_root, id);
  try {
    std::string payload = monitor::MonitorClient::Request(dir, "state", 5000);
    return InfoFrom(std::move(record), monitor::ParseStatus(payload));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) throw;
  }
  // No monitor. Normally the container has ended and its last status is on disk; if the
  // monitor was killed, the init may live on unsupervised: report it as running so that
  // delete needs --force and kills it.
  const bool init_alive =
      record.init_start_time != 0 && ProcessStartTime(record.init_pid) == record.init_start_time;
  ContainerInfo info;
  if (auto st = monitor::ReadStatusFile(dir)) {
    info = InfoFrom(std::move(record), *st);
  } else {
    info.record = std::move(record);
  }
  if (init_alive) {
    if (info.status == Status::kStopped) info.status = Status::kRunning;
  } else {
    info.status = Status::kStopped;
  }
  return info;
}

std::string OciStateJson(const ContainerInfo& info) {
  auto q = [](const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  };
  std::string out =
      "{\n  \"ociVersion\": " + q(info.record.oci_version) + ",\n  \"id\": " + q(info.record.id) +
      ",\n  \"status\": " + q(StatusName(info.status)) + ",\n  \"pid\": " +
      std::to_string(info.status == Status::kStopped ? 0 : info.record.init_pid) +
      ",\n  \"bundle\": " + q(info.record.bundle) + ",\n  \"rootfs\": " + q(info.record.rootfs) +
      ",\n  \"created\": " + q(info.record.created);
  if (info.exit_code) out += ",\n  \"exitCode\": " + std::to_string(*info.exit_code);
  if (info.exit_signal) out += ",\n  \"exitSignal\": " + std::to_string(*info.exit_signal);
  if (info.status == Status::kStopped) {
    out += std::string(",\n  \"oomKilled\": ") + (info.oom_killed ? "true" : "false");
  }
  out += ",\n  \"annotations\": {";
  bool first = true;
  for (const auto& [k, v] : info.record.annotations) {
    out += (first ? "\n    " : ",\n    ") + q(k) + ": " + q(v);
    first = false;
  }
  out += first ? "}\n}\n" : "\n  }\n}\n";
  return out;
}

namespace {

// A request that needs a live container: no monitor means the container has stopped.
void RequestRunning(const std::string& state_root, const std::string& id,
                    const std::string& request, int timeout_ms) {
  ReadStateRecord(state_root, id);
  try {
    monitor::MonitorClient::Request(StateDir(state_root, id), request, timeout_ms);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) {
      throw Error(ErrorKind::kConflict, "container \"" + id + "\" is not running");
    }
    throw;
  }
}

}  // namespace

void KillContainer(const std::string& state_root, const std::string& id, int signal, bool all) {
  if (signal <= 0 || signal >= 65) {
    throw Error(ErrorKind::kInvalidArgument, "invalid signal " + std::to_string(signal));
  }
  RequestRunning(state_root, id, "kill " + std::to_string(signal) + (all ? " all" : ""), 5000);
}

ContainerInfo WaitContainer(const std::string& state_root, const std::string& id) {
  StateRecord record = ReadStateRecord(state_root, id);
  const std::string dir = StateDir(state_root, id);
  try {
    auto info = InfoFrom(std::move(record), monitor::MonitorClient::Wait(dir));
    info.status = Status::kStopped;
    return info;
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) throw;
  }
  return QueryContainer(state_root, id);
}

void PauseContainer(const std::string& state_root, const std::string& id) {
  RequestRunning(state_root, id, "pause", 10000);
}

void ResumeContainer(const std::string& state_root, const std::string& id) {
  RequestRunning(state_root, id, "resume", 10000);
}

void DeleteContainer(const std::string& state_root, const std::string& id, bool force) {
  ContainerInfo info = QueryContainer(state_root, id);
  const StateRecord& record = info.record;
  if ((info.status == Status::kRunning || info.status == Status::kPaused) && !force) {
    throw Error(ErrorKind::kConflict, "container \"" + id + "\" is " + StatusName(info.status) +
                                          "; stop it first or use --force");
  }
  cgroup::CgroupHost host = cgroup::DetectCgroupHost();
  auto cg = cgroup::OpenCgroup(host, record.cgroup_path);
  const std::string dir = StateDir(state_root, id);
  // The monitor is a process of another session: hold a pidfd so that waiting for it
  // cannot be fooled by pid reuse.
  UniqueFd monitor_fd;
  if (record.monitor_pid > 0) {
    monitor_fd.reset(static_cast<int>(::syscall(SYS_pidfd_open, record.monitor_pid, 0)));
  }
  if (info.status != Status::kStopped) {
    cg->KillAll();
    // A created init waits on the start pipe; a frozen one must thaw to die.
    try {
      WaitContainer(state_root, id);
    } catch (const Error&) {
    }
  }
  if (monitor_fd) {
    // The monitor exits right after recording the exit; a pidfd turns readable when its
    // process has ended (a zombie counts: the monitor's parent is not ours to wait for).
    struct pollfd pfd = {monitor_fd.get(), POLLIN, 0};
    while (::poll(&pfd, 1, 2000) < 0 && errno == EINTR) {
    }
  }
  cg->KillAll();
  cg->Destroy();
  RemoveEmptyCgroupParents(host, record.cgroup_path);
  RemoveTree(dir);
}

std::vector<std::string> ListContainers(const std::string& state_root) {
  std::vector<std::string> out;
  for (const auto& name : ListDirectory(state_root)) {
    if (PathExists(JoinPath(JoinPath(state_root, name), "state.json"))) out.push_back(name);
  }
  return out;
}

cgroup::CgroupStats ContainerStats(const std::string& state_root, const std::string& id) {
  StateRecord record = ReadStateRecord(state_root, id);
  return cgroup::OpenCgroup(cgroup::DetectCgroupHost(), record.cgroup_path)->Stats();
}

std::string StatsJson(const cgroup::CgroupStats& s) {
  auto opt = [](const std::optional<uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("null");
  };
  return "{\"cpu\": {\"usage_ns\": " + std::to_string(s.cpu_usage_ns) +
         ", \"user_ns\": " + std::to_string(s.cpu_user_ns) +
         ", \"system_ns\": " + std::to_string(s.cpu_system_ns) +
         ", \"throttled_periods\": " + std::to_string(s.cpu_throttled_periods) +
         "}, \"memory\": {\"usage_bytes\": " + std::to_string(s.memory_usage_bytes) +
         ", \"max_usage_bytes\": " + std::to_string(s.memory_max_usage_bytes) +
         ", \"limit_bytes\": " + opt(s.memory_limit_bytes) +
         ", \"cache_bytes\": " + std::to_string(s.memory_cache_bytes) +
         ", \"oom_kills\": " + std::to_string(s.oom_kills) +
         "}, \"pids\": {\"current\": " + std::to_string(s.pids_current) +
         ", \"limit\": " + opt(s.pids_limit) +
         "}, \"io\": {\"read_bytes\": " + std::to_string(s.io_read_bytes) +
         ", \"write_bytes\": " + std::to_string(s.io_write_bytes) + "}}\n";
}

std::vector<pid_t> ContainerPids(const std::string& state_root, const std::string& id) {
  StateRecord record = ReadStateRecord(state_root, id);
  auto cg = cgroup::OpenCgroup(cgroup::DetectCgroupHost(), record.cgroup_path);
  return cg->Pids();
}

int ExecInContainer(const std::string& state_root, const std::string& id,
                    const ExecOptions& options) {
  ContainerInfo info = QueryContainer(state_root, id);
  if (info.status != Status::kRunning) {
    throw Error(ErrorKind::kConflict, "container \"" + id + "\" is " + StatusName(info.status) +
                                          "; exec needs a running container");
  }
  if (options.args.empty()) throw Error(ErrorKind::kInvalidArgument, "exec: no command given");
  spec::Spec spec = spec::LoadBundle(info.record.bundle);
  spec::Process process = spec.process;
  process.args = options.args;
  for (const auto& e : options.env) {
    auto eq = e.find('=');
    std::string key = e.substr(0, eq);
    std::erase_if(process.env, [&](const std::string& x) { return x.rfind(key + "=", 0) == 0; });
    process.env.push_back(e);
  }
  if (!options.cwd.empty()) process.cwd = options.cwd;
  if (options.uid) process.user.uid = *options.uid;
  if (options.gid) process.user.gid = *options.gid;
  security::ProcessSecurity sec = security::PrepareProcessSecurity(process, spec.linux.seccomp);
  NamespaceFds ns = OpenContainerNamespaces(info.record.init_pid);
  auto cg = cgroup::OpenCgroup(cgroup::DetectCgroupHost(), info.record.cgroup_path);

  int sync_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pair) != 0)
    ThrowErrno("socketpair");
  UniqueFd sync_parent(sync_pair[0]), sync_child(sync_pair[1]);
  Pipe exec_err = MakePipe();

  pid_t joiner = ::fork();
  if (joiner < 0) ThrowErrno("fork");
  if (joiner == 0) {
    sync_parent.reset();
    exec_err.read.reset();
    try {
      char go;
      if (::read(sync_child.get(), &go, 1) != 1) ::_exit(126);
      EnterNamespaces(ns);
      pid_t child = ::fork();
      if (child < 0) ThrowErrno("fork");
      if (child == 0) {
        ResetSignals();
        if (options.stdin_fd != 0) ::dup2(options.stdin_fd, 0);
        if (options.stdout_fd != 1) ::dup2(options.stdout_fd, 1);
        if (options.stderr_fd != 2) ::dup2(options.stderr_fd, 2);
        int err = 0;
        if (::chdir(process.cwd.c_str()) != 0) err = errno;
        std::string exe = err ? std::string() : FindExecutable(process.args[0], process.env);
        if (!err && exe.empty()) err = ENOENT;
        std::vector<std::string> args = process.args, env = process.env;
        auto argv = CStrings(args);
        auto envp = CStrings(env);
        const char* step = nullptr;
        if (!err) err = security::ApplyProcessSecurity(sec, &step);
        if (!err) {
          ::execve(exe.c_str(), argv.data(), envp.data());
          err = errno;
        }
        WriteFully(exec_err.write.get(), &err, sizeof err);
        ::_exit(127);
      }
      exec_err.write.reset();
      int st = 0;
      while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
      }
      if (WIFSIGNALED(st)) {
        // Report the signal to our parent the same way, without a core dump.
        ::signal(WTERMSIG(st), SIG_DFL);
        ::prctl(PR_SET_DUMPABLE, 0);
        ::kill(::getpid(), WTERMSIG(st));
      }
      ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 126);
    } catch (const Error& e) {
      ChildFail(sync_child.get(), e.what());
    }
  }
  sync_child.reset();
  exec_err.write.reset();
  auto reap = [joiner] {
    int st = 0;
    while (::waitpid(joiner, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
  };
  try {
    cg->AddProcess(joiner);
  } catch (...) {
    ::kill(joiner, SIGKILL);
    reap();
    throw;
  }
  WriteFully(sync_parent.get(), "g", 1);
  std::string err_line = ReadUpTo(sync_parent.get(), 8192);
  int exec_errno = 0;
  ssize_t n = ::read(exec_err.read.get(), &exec_errno, sizeof exec_errno);
  int st = reap();
  if (err_line.rfind("err ", 0) == 0) {
    throw Error(ErrorKind::kSystem,
                "exec in \"" + id + "\": " + err_line.substr(4, err_line.size() - 5));
  }
  if (n == sizeof exec_errno) {
    if (exec_errno == ENOENT) {
      throw Error(ErrorKind::kNotFound, "exec in \"" + id +
                                            "\": executable file not found in $PATH: \"" +
                                            options.args[0] + "\"");
    }
    ThrowErrnoValue(exec_errno, "exec", options.args[0]);
  }
  return st;
}

}  // namespace berth::container
