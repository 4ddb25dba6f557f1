// Runs the real berth-monitor the way the container creator does (protocol.h), without
// namespaces: the test forks M, M forks the "init" C (which waits on the start pipe, then
// execs a command with stdout/stderr on the console pipe), and M execs berth-monitor.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/monitor/launch.h"

namespace berth::monitor::testing {

struct ContainerOptions {
  std::vector<std::string> argv;  // the init's command
  MonitorArgs monitor;            // state_dir is filled in by TestContainer
  bool console = true;
  // A creator process forks M and exits at once, so the monitor loses its parent.
  bool creator_exits = false;
};

// Kills (SIGKILL) and reaps a process at scope exit; reaping is skipped when it is not
// our child (the monitor reaps the init).
class ProcessGuard {
 public:
  explicit ProcessGuard(pid_t pid = -1) : pid_(pid) {}
  ProcessGuard(const ProcessGuard&) = delete;
  ProcessGuard& operator=(const ProcessGuard&) = delete;
  ~ProcessGuard() { Kill(); }
  void Reset(pid_t pid) {
    Kill();
    pid_ = pid;
  }
  pid_t pid() const { return pid_; }
  void Release() { pid_ = -1; }
  void Kill();

 private:
  pid_t pid_;
};

// A monitored "container". The constructor returns once the monitor said "ok" on its
// ready fd and throws otherwise (with the monitor's "err" line).
class TestContainer {
 public:
  TestContainer(const std::string& state_dir, ContainerOptions options);
  ~TestContainer();

  const std::string& state_dir() const { return state_dir_; }
  pid_t monitor_pid() const { return monitor_.pid(); }
  pid_t init_pid() const { return init_.pid(); }

  // The monitor's exit status once it has exited, or nullopt after timeout_ms.
  std::optional<int> WaitMonitorExit(int timeout_ms);
  bool MonitorAlive() const;

 private:
  std::string state_dir_;
  ProcessGuard init_;
  ProcessGuard monitor_;
  bool monitor_reaped_ = false;
};

// Every test process becomes a subreaper, so processes orphaned by a dying monitor come
// back to the test, which reaps them.
void BecomeSubreaper();
// Reaps every child that exits within settle_ms: processes of a killed container that
// were re-parented to this test.
void ReapStrays(int settle_ms);

// The kind of the berth::Error that fn(args...) throws; a test failure when none is thrown.
template <typename Fn, typename... Args>
ErrorKind KindOf(Fn&& fn, Args&&... args);

std::string ReadFileOr(const std::string& path, const std::string& fallback = "");
long long FileSize(const std::string& path);  // -1 when missing
pid_t ParentOf(pid_t pid);
// Polls `pred` every 10 ms for up to timeout_ms.
template <typename Pred>
bool Eventually(Pred pred, int timeout_ms);

}  // namespace berth::monitor::testing

#include <gtest/gtest.h>
#include <unistd.h>

template <typename Fn, typename... Args>
berth::ErrorKind berth::monitor::testing::KindOf(Fn&& fn, Args&&... args) {
  try {
    fn(std::forward<Args>(args)...);
  } catch (const Error& e) {
    return e.kind();
  }
  ADD_FAILURE() << "no berth::Error thrown";
  return ErrorKind::kInternal;
}

template <typename Pred>
bool berth::monitor::testing::Eventually(Pred pred, int timeout_ms) {
  for (int waited = 0;; waited += 10) {
    if (pred()) return true;
    if (waited >= timeout_ms) return false;
    ::usleep(10000);
  }
}
