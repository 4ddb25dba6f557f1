#include "runtime/linux/shell.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/common/error.h"
#include "runtime/common/fd_io.h"
#include "runtime/linux/namespaces.h"
#include "runtime/linux/shell_internal.h"
#include "runtime/monitor/launch.h"

namespace berth::container {
namespace {

bool SameMappings(const std::vector<spec::IdMapping>& a, const std::vector<spec::IdMapping>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
    return x.container_id == y.container_id && x.host_id == y.host_id && x.size == y.size;
  });
}

void WriteMappings(rapidjson::Writer<rapidjson::StringBuffer>& w,
                   const std::vector<spec::IdMapping>& maps) {
  w.StartArray();
  for (const auto& m : maps) {
    w.StartArray();
    w.Uint(m.container_id);
    w.Uint(m.host_id);
    w.Uint(m.size);
    w.EndArray();
  }
  w.EndArray();
}

std::vector<spec::IdMapping> ReadMappings(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsArray()) {
    throw Error(ErrorKind::kInvalidArgument, std::string("shell shape: no ") + key);
  }
  std::vector<spec::IdMapping> out;
  for (const auto& m : it->value.GetArray()) {
    if (!m.IsArray() || m.Size() != 3 || !m[0].IsUint() || !m[1].IsUint() || !m[2].IsUint()) {
      throw Error(ErrorKind::kInvalidArgument, std::string("shell shape: bad ") + key);
    }
    out.push_back({m[0].GetUint(), m[1].GetUint(), m[2].GetUint()});
  }
  return out;
}

bool Exited(const UniqueFd& pidfd) {
  struct pollfd p = {pidfd.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;  // readable (exited) or an error: not usable either way
}

UniqueFd PidFd(pid_t pid) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd) ThrowErrno("pidfd_open", std::to_string(pid));
  return fd;
}

// Reports one line to the maker and exits: M before its claim.
[[noreturn]] void Report(int fd, const std::string& line, int code) {
  WriteFully(fd, line.data(), line.size());
  ::_exit(code);
}

// M of a shell, from fork until the exec of berth-monitor.
[[noreturn]] void RunShellMonitor(const ShellShape& shape, const cgroup::CgroupHost& host,
                                  const std::string& monitor_binary, int claim_fd,
                                  int init_claim_fd, int report_fd) {
  // Nothing of the maker's may live on here: another shell's sockets held by this one would
  // hide that shell's end from its init.
  int keep[] = {claim_fd, init_claim_fd, report_fd};
  std::sort(std::begin(keep), std::end(keep));
  unsigned first = 3;
  for (int fd : keep) {
    if (static_cast<unsigned>(fd) > first) ::syscall(SYS_close_range, first, fd - 1, 0);
    first = static_cast<unsigned>(fd) + 1;
  }
  ::syscall(SYS_close_range, first, ~0u, 0);

  int sync_pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync_pair) != 0) {
    Report(report_fd, "err socketpair: " + std::string(strerror(errno)) + "\n", 1);
  }
  internal::ShellInitContext context;
  context.sync_fd = sync_pair[1];
  context.claim_fd = init_claim_fd;
  context.namespaces.clone_flags = shape.clone_flags;
  context.namespaces.new_user = (shape.clone_flags & CLONE_NEWUSER) != 0;
  context.namespaces.new_network = (shape.clone_flags & CLONE_NEWNET) != 0;
  context.cgroup_host = host;
  pid_t init_pid = static_cast<pid_t>(
      ::syscall(SYS_clone, shape.clone_flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (init_pid < 0) Report(report_fd, "err clone: " + std::string(strerror(errno)) + "\n", 1);
  if (init_pid == 0) {
    ::close(sync_pair[0]);
    ::close(claim_fd);
    ::close(report_fd);
    internal::RunShellInit(context);
  }
  ::close(sync_pair[1]);
  ::close(init_claim_fd);
  const int sync_fd = sync_pair[0];
  auto kill_init = [init_pid] {
    ::kill(init_pid, SIGKILL);
    ::waitpid(init_pid, nullptr, 0);
  };
  try {
    internal::WriteIdMap(init_pid, "uid_map", shape.uid_mappings);
    internal::WriteIdMap(init_pid, "gid_map", shape.gid_mappings);
  } catch (const Error& e) {
    kill_init();
    Report(report_fd, std::string("err ") + e.what() + "\n", 1);
  }
  if (!WriteFully(sync_fd, "g", 1)) {
    kill_init();
    Report(report_fd, "err the shell's init is gone\n", 1);
  }
  // berth-monitor now, before the claim: its exec is the longest step of a create. It
  // waits on claim_fd for its arguments (monitor_main.cc, "shells") and keeps the
  // PR_SET_PDEATHSIG we were given until then.
  const std::string pid_text = std::to_string(init_pid), claim_text = std::to_string(claim_fd),
                    sync_text = std::to_string(sync_fd);
  // Empty words at the end: room for the monitor to show a cold monitor's command line
  // once claimed (monitor_main.cc, ShowClaimedCommandLine).
  constexpr size_t kCommandLineRoom = 1536;
  std::vector<const char*> argv = {monitor_binary.c_str(), "--shell-claim-fd", claim_text.c_str(),
                                   "--init-pid",           pid_text.c_str(),   "--init-sync-fd",
                                   sync_text.c_str()};
  argv.insert(argv.end(), kCommandLineRoom, "");
  argv.push_back(nullptr);
  ::fcntl(claim_fd, F_SETFD, 0);
  ::fcntl(sync_fd, F_SETFD, 0);
  std::string ok = "ok " + pid_text + "\n";
  WriteFully(report_fd, ok.data(), ok.size());  // close-on-exec: EOF once exec'd
  ::execve(argv[0], const_cast<char* const*>(argv.data()), environ);
  kill_init();  // a dead shell: the pool sees it (alive()) and never hands it out
  ::_exit(127);
}

}  // namespace

bool ShellShape::operator==(const ShellShape& other) const {
  return clone_flags == other.clone_flags && SameMappings(uid_mappings, other.uid_mappings) &&
         SameMappings(gid_mappings, other.gid_mappings);
}

std::optional<ShellShape> ShellShapeOf(const spec::Spec& spec) {
  NamespacePlan plan;
  try {
    plan = PlanNamespaces(spec);
  } catch (const Error&) {
    return std::nullopt;  // the create reports it
  }
  if (!plan.joins.empty() || !plan.pid_join_path.empty() || !plan.new_user ||
      spec.process.terminal) {
    return std::nullopt;
  }
  return ShellShape{plan.clone_flags, spec.linux.uid_mappings, spec.linux.gid_mappings};
}

std::string ShellShapeJson(const ShellShape& shape) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("clone_flags");
  w.Uint64(shape.clone_flags);
  w.Key("uid_mappings");
  WriteMappings(w, shape.uid_mappings);
  w.Key("gid_mappings");
  WriteMappings(w, shape.gid_mappings);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

ShellShape ParseShellShape(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(ErrorKind::kInvalidArgument, "shell shape: not a JSON object");
  }
  auto flags = doc.FindMember("clone_flags");
  if (flags == doc.MemberEnd() || !flags->value.IsUint64()) {
    throw Error(ErrorKind::kInvalidArgument, "shell shape: no clone_flags");
  }
  ShellShape shape;
  shape.clone_flags = flags->value.GetUint64();
  shape.uid_mappings = ReadMappings(doc, "uid_mappings");
  shape.gid_mappings = ReadMappings(doc, "gid_mappings");
  return shape;
}

// Shutting the claim sockets down is the discard: M then kills and reaps its init, and
// exits. shutdown, not only close: a process forked meanwhile by another of the caller's
// threads (a cold create's init, until it execs) may hold a copy of our ends, which would
// keep the shell waiting. A SIGKILL would leave the init to whoever adopts it.
Shell::~Shell() {
  for (const UniqueFd* fd : {&to_m_, &to_init_}) {
    if (*fd) ::shutdown(fd->get(), SHUT_RDWR);
  }
}

bool Shell::alive() const { return !Exited(m_pidfd_) && !Exited(init_pidfd_); }

void Shell::SendToInit(std::string_view body, const std::vector<int>& fds) {
  SendMessageWithFds(to_init_.get(), body, fds, "shell claim (init)");
}

void Shell::SendCgroupsToInit(const std::vector<int>& fds) {
  SendMessageWithFds(to_init_.get(), internal::kClaimCgroupsBody, fds,
                     "shell claim (init's cgroups)");
  to_init_.reset();
}

void Shell::SendToMonitor(std::string_view body, const std::vector<int>& fds) {
  SendMessageWithFds(to_m_.get(), body, fds, "shell claim (monitor)");
  to_m_.reset();
}

void Shell::SendTo(int sock, std::string_view what) {
  const std::string body = "ok " + std::to_string(m_pid_) + " " + std::to_string(init_pid_);
  SendMessageWithFds(sock, body, {to_m_.get(), to_init_.get(), m_pidfd_.get(), init_pidfd_.get()},
                     what);
  // The receiver's copies are the shell now: ours close without ending it.
  to_m_.reset();
  to_init_.reset();
  m_pidfd_.reset();
  init_pidfd_.reset();
}

std::unique_ptr<Shell> Shell::FromMessage(const ShellShape& shape, const std::string& body,
                                          std::vector<UniqueFd> fds) {
  int monitor_pid = 0, init_pid = 0;
  if (std::sscanf(body.c_str(), "ok %d %d", &monitor_pid, &init_pid) != 2 || monitor_pid <= 0 ||
      init_pid <= 0 || fds.size() != 4 ||
      !std::all_of(fds.begin(), fds.end(), [](const UniqueFd& fd) { return fd.get() >= 0; })) {
    return nullptr;
  }
  auto shell = std::unique_ptr<Shell>(new Shell());
  shell->shape_ = shape;
  shell->m_pid_ = monitor_pid;
  shell->init_pid_ = init_pid;
  shell->to_m_ = std::move(fds[0]);
  shell->to_init_ = std::move(fds[1]);
  shell->m_pidfd_ = std::move(fds[2]);
  shell->init_pidfd_ = std::move(fds[3]);
  return shell;
}

std::unique_ptr<Shell> MakeShell(const ShellShape& shape, ShellParent parent) {
  const cgroup::CgroupHost host = cgroup::CachedCgroupHost();
  const std::string monitor_binary = monitor::FindMonitorBinary();
  int m_pair[2], init_pair[2], report[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, m_pair) != 0) {
    ThrowErrno("socketpair", "shell");
  }
  UniqueFd to_m(m_pair[0]), m_end(m_pair[1]);
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, init_pair) != 0) {
    ThrowErrno("socketpair", "shell");
  }
  UniqueFd to_init(init_pair[0]), init_end(init_pair[1]);
  if (::pipe2(report, O_CLOEXEC) != 0) ThrowErrno("pipe2", "shell");
  UniqueFd report_read(report[0]), report_write(report[1]);

  pid_t m;
  pid_t m_parent;
  UniqueFd m_pidfd;
  if (parent == ShellParent::kCaller) {
    m_parent = ::getpid();
    m = ::fork();
  } else {
    // CLONE_PIDFD: M is not ours to reap, so its pid alone could be reused before we open it.
    m_parent = ::getppid();
    int pidfd = -1;
    m = static_cast<pid_t>(::syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD, nullptr,
                                     &pidfd, nullptr, nullptr));
    if (m > 0) m_pidfd.reset(pidfd);
  }
  if (m < 0) ThrowErrno(parent == ShellParent::kCaller ? "fork" : "clone", "shell");
  if (m == 0) {
    ::setsid();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the parent's thread, until claimed
    if (::getppid() != m_parent) ::_exit(0);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    RunShellMonitor(shape, host, monitor_binary, m_end.get(), init_end.get(), report_write.get());
  }
  m_end.reset();
  init_end.reset();
  report_write.reset();
  auto shell = std::unique_ptr<Shell>(new Shell());
  shell->shape_ = shape;
  shell->m_pid_ = m;
  shell->m_pidfd_ = m_pidfd ? std::move(m_pidfd) : PidFd(m);
  shell->to_m_ = std::move(to_m);
  shell->to_init_ = std::move(to_init);
  // "ok <init pid>", then EOF once M has exec'd berth-monitor (the pipe is close-on-exec):
  // a shell is handed out only when both its processes are in place.
  std::string line;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(report_read.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  if (line.rfind("ok ", 0) != 0) {
    while (!line.empty() && line.back() == '\n') line.pop_back();
    throw Error(ErrorKind::kSystem,
                "make shell: " + (line.rfind("err ", 0) == 0 ? line.substr(4) : "M is gone"));
  }
  shell->init_pid_ = static_cast<pid_t>(std::stol(line.substr(3)));
  shell->init_pidfd_ = PidFd(shell->init_pid_);
  return shell;
}

}  // namespace berth::container
