#include "runtime/linux/shell_zygote.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/fd_io.h"

namespace berth::container {
namespace {

// Request: the shape (ShellShapeJson), no descriptors. Reply: the shell (Shell::SendTo), or
// "err <message>" without descriptors. Both framed by SendMessageWithFds on a stream socket.
constexpr size_t kMaxMessage = 64u << 10;

bool ExitedWithin(int pidfd, int timeout_ms) {
  struct pollfd p = {pidfd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, timeout_ms);
  } while (n < 0 && errno == EINTR);
  return n != 0;  // readable once exited (or an error: nothing left to wait for)
}

[[noreturn]] void ZygoteMain(int sock, pid_t parent) {
  // Dies with the spawner; the shells it made hang from the spawner, not from us.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::prctl(PR_SET_NAME, "berth-zygote");
  // Nothing of the spawner's but our socket and stdio: its control socket held here would
  // hide the spawner's death from the daemon. (M closes all but its own as well.)
  const unsigned kept = static_cast<unsigned>(sock);
  if (kept > 3) ::syscall(SYS_close_range, 3u, kept - 1, 0u);
  ::syscall(SYS_close_range, std::max(3u, kept + 1), ~0u, 0u);
  // Shells are made with what the creates leave of the CPU: we, and the M we make, at
  // nice 19. A claim puts M and its init back to the spawner's priority: raising it back
  // needs CAP_SYS_NICE, which the spawner (root) has over them.
  ::setpriority(PRIO_PROCESS, 0, 19);
  for (;;) {
    std::string request;
    std::vector<UniqueFd> unexpected;
    try {
      if (!ReceiveMessageWithFds(sock, &request, &unexpected, "shell zygote request",
                                 kMaxMessage)) {
        ::_exit(0);  // the spawner closed its end: it is exiting
      }
    } catch (const std::exception&) {
      ::_exit(1);  // the stream is out of step: the spawner sees us gone and goes cold
    }
    unexpected.clear();
    std::unique_ptr<Shell> shell;
    std::string error;
    try {
      shell = MakeShell(ParseShellShape(request), ShellParent::kCallersParent);
    } catch (const std::exception& e) {
      error = std::string("err ") + e.what();
    }
    try {
      if (shell) {
        shell->SendTo(sock, "shell zygote reply");
      } else {
        SendMessageWithFds(sock, error, {}, "shell zygote reply");
      }
    } catch (const std::exception&) {
      ::_exit(0);  // our copies close with us: an unsent shell ends (its sockets hang up)
    }
    // Our copies of the shell's descriptors close here; the spawner holds its own.
  }
}

}  // namespace

std::unique_ptr<ShellZygote> ShellZygote::Start() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    ThrowErrno("socketpair", "shell zygote");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork", "shell zygote");
  if (pid == 0) ZygoteMain(theirs.get(), parent);
  theirs.reset();
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) {
    const int saved = errno;
    ::kill(pid, SIGKILL);  // our unreaped child: the pid is still its
    ::waitpid(pid, nullptr, 0);
    ThrowErrnoValue(saved, "pidfd_open", "shell zygote");
  }
  return std::unique_ptr<ShellZygote>(new ShellZygote(pid, std::move(pidfd), std::move(ours)));
}

ShellZygote::ShellZygote(pid_t pid, UniqueFd pidfd, UniqueFd sock)
    : pid_(pid), pidfd_(std::move(pidfd)), sock_(std::move(sock)) {}

ShellZygote::~ShellZygote() { Stop(); }

bool ShellZygote::alive() const { return !broken_ && !ExitedWithin(pidfd_.get(), 0); }

void ShellZygote::Kill() {
  broken_ = true;
  ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void ShellZygote::Stop() {
  // shutdown, not close: another thread may be in Make on this socket.
  ::shutdown(sock_.get(), SHUT_RDWR);
  broken_ = true;
  // An idle zygote exits at once; one making a shell finishes it first. Nothing it holds
  // needs a clean end (a shell it could not hand over ends when its sockets close).
  if (!ExitedWithin(pidfd_.get(), 100)) Kill();
  siginfo_t info;
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 && errno == EINTR) {
  }  // ECHILD: the caller's reaper got it first
}

std::unique_ptr<Shell> ShellZygote::Make(const ShellShape& shape) {
  auto gone = [this](const std::string& why) {
    Kill();
    return Error(ErrorKind::kSystem,
                 "shell zygote (pid " + std::to_string(pid_) + ") is gone: " + why);
  };
  if (broken_) throw gone("stopped or failed before");
  std::string reply;
  std::vector<UniqueFd> fds;
  try {
    SendMessageWithFds(sock_.get(), ShellShapeJson(shape), {}, "shell zygote request");
    if (!ReceiveMessageWithFds(sock_.get(), &reply, &fds, "shell zygote reply", kMaxMessage)) {
      throw gone("no reply");
    }
  } catch (const Error& e) {
    if (broken_) throw;
    throw gone(e.message());
  }
  if (reply.rfind("err ", 0) == 0) throw Error(ErrorKind::kSystem, reply.substr(4));
  std::unique_ptr<Shell> shell = Shell::FromMessage(shape, reply, std::move(fds));
  if (!shell) throw gone("bad reply \"" + reply + "\"");
  return shell;
}

}  // namespace berth::container
