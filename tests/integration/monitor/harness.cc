#include "tests/integration/monitor/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::monitor::testing {

void ProcessGuard::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  // Only reaps our own children; for others waitpid fails at once with ECHILD.
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

void BecomeSubreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) ThrowErrno("prctl(PR_SET_CHILD_SUBREAPER)");
}

void ReapStrays(int settle_ms) {
  for (int waited = 0;; waited += 10) {
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    if (waited >= settle_ms) return;
    ::usleep(10000);
  }
}

std::string ReadFileOr(const std::string& path, const std::string& fallback) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fallback;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

long long FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

pid_t ParentOf(pid_t pid) {
  std::string status = ReadFileOr("/proc/" + std::to_string(pid) + "/status");
  auto pos = status.find("\nPPid:");
  if (pos == std::string::npos) return -1;
  return static_cast<pid_t>(std::stol(status.substr(pos + 6)));
}

namespace {

struct Pipe {
  int r = -1;
  int w = -1;
};

// In the forked children below only async-signal-safe calls are made.
[[noreturn]] void RunInit(const Pipe& start, const Pipe& exec_err, const Pipe& console,
                          int ready_fd, char* const* argv) {
  // The ready pipe must see EOF when the monitor closes it, not when the init execs.
  ::close(ready_fd);
  ::close(start.w);
  ::close(exec_err.r);
  if (console.w >= 0) {
    ::dup2(console.w, 1);
    ::dup2(console.w, 2);
    ::close(console.r);
  }
  char go;
  ssize_t n;
  do {
    n = ::read(start.r, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(1);  // EOF: the monitor is gone, abort
  ::execvp(argv[0], argv);
  int err = errno;
  static const char kWhy[] = "exec failed\n";  // as the real init, its console says so
  (void)!::write(2, kWhy, sizeof kWhy - 1);
  (void)!::write(exec_err.w, &err, sizeof err);
  ::_exit(err == ENOENT ? 127 : 126);
}

[[noreturn]] void RunMonitorProcess(MonitorCommand& command, int ready_fd, bool console,
                                    char* const* argv) {
  ::setsid();
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  Pipe start, exec_err, con;
  if (::pipe2(&start.r, O_CLOEXEC) != 0 || ::pipe2(&exec_err.r, O_CLOEXEC) != 0 ||
      (console && ::pipe2(&con.r, O_CLOEXEC) != 0)) {
    ::_exit(125);
  }
  pid_t init = ::fork();
  if (init < 0) ::_exit(125);
  if (init == 0) RunInit(start, exec_err, con, ready_fd, argv);
  ::close(start.r);
  ::close(exec_err.w);
  if (con.w >= 0) ::close(con.w);
  command.Exec(MonitorFds{init, start.w, exec_err.r, ready_fd, con.r});
}

std::string ReadAll(int fd, int timeout_ms) {
  std::string out;
  char buf[256];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.ends_with('\n')) break;  // one line: "ok" or "err <text>"
  }
  return out;
}

}  // namespace

TestContainer::TestContainer(const std::string& state_dir, ContainerOptions options)
    : state_dir_(state_dir) {
  BecomeSubreaper();
  options.monitor.state_dir = state_dir;
  MonitorCommand command(options.monitor);
  std::vector<char*> argv;
  for (auto& a : options.argv) argv.push_back(a.data());
  argv.push_back(nullptr);

  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  UniqueFd ready_r(ready[0]), ready_w(ready[1]);

  pid_t child = ::fork();
  if (child < 0) ThrowErrno("fork");
  if (child == 0) {
    ready_r.release();
    if (!options.creator_exits) {
      RunMonitorProcess(command, ready_w.get(), options.console, argv.data());
    }
    pid_t m = ::fork();
    if (m == 0) RunMonitorProcess(command, ready_w.get(), options.console, argv.data());
    ::_exit(m < 0 ? 1 : 0);
  }
  ProcessGuard first(child);
  ready_w.reset();
  if (options.creator_exits) {
    int st = 0;
    ::waitpid(child, &st, 0);
    first.Release();
  }
  std::string line = ReadAll(ready_r.get(), 5000);
  // The init and the monitor are known through the init's status and its parent.
  auto status = ReadFileOr(state_dir + "/status.json");
  auto pid_pos = status.find("\"pid\":");
  if (pid_pos != std::string::npos) {
    pid_t init = static_cast<pid_t>(std::stol(status.substr(pid_pos + 6)));
    init_.Reset(init);
    pid_t parent = ParentOf(init);
    if (parent > 0) {
      monitor_.Reset(parent);
      if (!options.creator_exits) first.Release();
    }
  }
  if (line != "ok\n") {
    throw std::runtime_error("monitor did not get ready: \"" + line + "\"");
  }
  if (monitor_.pid() <= 0) throw std::runtime_error("could not find the monitor process");
}

TestContainer::~TestContainer() {
  // The init first: the monitor must not be killed while it holds an unreaped init.
  init_.Kill();
  if (monitor_reaped_) monitor_.Release();
  monitor_.Kill();
  ReapStrays(50);
}

std::optional<int> TestContainer::WaitMonitorExit(int timeout_ms) {
  if (monitor_reaped_) return std::nullopt;
  for (int waited = 0;; waited += 10) {
    int st = 0;
    pid_t r = ::waitpid(monitor_.pid(), &st, WNOHANG);
    if (r == monitor_.pid()) {
      monitor_reaped_ = true;
      // A monitor that finished normally has reaped the init: its pid may be reused.
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) init_.Release();
      return st;
    }
    if (waited >= timeout_ms) return std::nullopt;
    ::usleep(10000);
  }
}

bool TestContainer::MonitorAlive() const {
  if (monitor_reaped_) return false;
  std::string stat = ReadFileOr("/proc/" + std::to_string(monitor_.pid()) + "/stat");
  auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && stat.size() > close_paren + 2 &&
         stat[close_paren + 2] != 'Z';
}

}  // namespace berth::monitor::testing
