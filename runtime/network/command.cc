#include "runtime/network/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

extern char** environ;

namespace berth::net {
namespace {

int64_t NowMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void MakePipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  read_end.reset(fds[0]);
  write_end.reset(fds[1]);
}

// Owns a spawned child until it is reaped: on any early exit it is killed and waited for.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return status;
  }
  void Kill() { ::kill(pid_, SIGKILL); }

 private:
  pid_t pid_;
};

}  // namespace

std::string FormatArgv(const std::vector<std::string>& argv) {
  std::string text;
  for (const auto& arg : argv) {
    if (!text.empty()) text += ' ';
    text += arg;
  }
  return text;
}

CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms) {
  if (argv.empty()) throw Error(ErrorKind::kInvalidArgument, "run: empty command");
  UniqueFd out_r, out_w, err_r, err_w;
  MakePipe(out_r, out_w);
  MakePipe(err_r, err_w);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    Error e = Error::FromErrno("posix_spawn", argv[0], rc);
    if (rc == ENOENT) throw Error(ErrorKind::kNotFound, e.message(), rc);
    throw e;
  }
  Child child(pid);
  out_w.reset();
  err_w.reset();

  CommandResult result;
  const int64_t deadline = NowMs() + timeout_ms;
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      child.Kill();
      child.Wait();
      throw Error(ErrorKind::kSystem,
                  "run " + FormatArgv(argv) + ": no answer within " + std::to_string(timeout_ms) +
                      " ms, killed",
                  ETIMEDOUT);
    }
    pollfd fds[2] = {{out_open ? out_r.get() : -1, POLLIN, 0},
                     {err_open ? err_r.get() : -1, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left)) < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("poll", argv[0]);
    }
    for (int i = 0; i < 2; ++i) {
      if (!fds[i].revents) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? result.out : result.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        (i == 0 ? out_open : err_open) = false;
      }
    }
  }
  int status = child.Wait();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace berth::net
