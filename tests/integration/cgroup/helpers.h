// Children and cleanup owners for the cgroup integration tests. Every group is named
// "berth-test-<pid>/..." and removed (killed, then rmdir'ed) even when a test fails.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/cgroup/cgroup.h"

namespace berth::cgroup::testing {

inline std::string TestGroupParent() { return "berth-test-" + std::to_string(::getpid()); }

// Owns groups made by a test: KillAll + Destroy for each (children first), then the
// shared "berth-test-<pid>" parent.
class GroupCleaner {
 public:
  explicit GroupCleaner(CgroupHost host) : host_(std::move(host)) {}
  ~GroupCleaner() {
    for (auto it = groups_.rbegin(); it != groups_.rend(); ++it) {
      try {
        (*it)->Thaw();
      } catch (...) {
      }
      try {
        (*it)->KillAll();
      } catch (...) {
      }
      try {
        (*it)->Destroy();
      } catch (...) {
      }
    }
    try {
      Open(TestGroupParent())->Destroy();
    } catch (...) {
    }
  }
  // Opens (does not create) TestGroupParent()/<name>, to be cleaned up at scope end.
  Cgroup& Make(const std::string& name) {
    groups_.push_back(Open(TestGroupParent() + "/" + name));
    return *groups_.back();
  }

 private:
  std::unique_ptr<Cgroup> Open(const std::string& path) {
    return host_.version == CgroupVersion::kV2 ? OpenCgroupV2(host_, path)
                                               : OpenCgroupV1(host_, path);
  }
  CgroupHost host_;
  std::vector<std::unique_ptr<Cgroup>> groups_;
};

// A forked child, killed and reaped when the owner goes away. The body runs in the child
// and must only use async-signal-safe calls; it never returns.
class Child {
 public:
  template <typename Body>
  explicit Child(Body body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
      body();
      ::_exit(0);
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      Wait();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  // The wait status.
  int Wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

struct Pipe {
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read_fd = fds[0];
      write_fd = fds[1];
    }
  }
  ~Pipe() {
    if (read_fd >= 0) ::close(read_fd);
    if (write_fd >= 0) ::close(write_fd);
  }
  int read_fd = -1;
  int write_fd = -1;
};

// A child that writes one byte to the pipe every 5 ms: its progress is visible.
inline void TickForever(int fd) {
  for (;;) {
    if (::write(fd, "x", 1) < 0) ::_exit(1);
    ::usleep(5000);
  }
}

// Bytes readable now, without blocking.
inline int Drain(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  char buf[4096];
  int total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    total += static_cast<int>(n);
  }
  return total;
}

// Waits (bounded) until the child ticks again.
inline bool TicksWithin(int fd, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Drain(fd) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A child moved into the group that then forks a grandchild there (born inside the group,
// never moved, as a container's later processes are); both pause until killed.
class TreeInGroup {
 public:
  explicit TreeInGroup(Cgroup& cg)
      : child_([this] {
          char c;
          if (::read(go_.read_fd, &c, 1) != 1) ::_exit(1);
          pid_t gc = ::fork();
          if (gc == 0) {
            for (;;) ::pause();
          }
          if (::write(grandchild_pid_.write_fd, &gc, sizeof gc) != sizeof gc) ::_exit(2);
          for (;;) ::pause();
        }) {
    cg.AddProcess(child_.pid());
    if (::write(go_.write_fd, "g", 1) != 1 ||
        ::read(grandchild_pid_.read_fd, &grandchild_, sizeof grandchild_) !=
            static_cast<ssize_t>(sizeof grandchild_)) {
      throw std::runtime_error("the child did not fork its grandchild");
    }
  }
  Child& child() { return child_; }
  pid_t grandchild() const { return grandchild_; }

 private:
  Pipe go_, grandchild_pid_;  // made before the child forks
  Child child_;
  pid_t grandchild_ = -1;
};

}  // namespace berth::cgroup::testing
