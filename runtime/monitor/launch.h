// Turning process M into berth-monitor (step 3 of protocol.h).
//
// M runs between fork and exec of a possibly multi-threaded creator, where it must not
// allocate or throw. So the command line is built before the fork (MonitorCommand's
// constructor), and Exec() only formats the numbers known after it into reserved slots,
// fixes the descriptors and calls execve.
#pragma once

#include <sys/types.h>

#include <array>
#include <string>
#include <vector>

#include "runtime/monitor/protocol.h"

namespace berth::monitor {

struct MonitorArgs {
  std::string state_dir;
  unsigned long long console_max = kDefaultConsoleMax;
  std::string freezer;            // freezer.state (v1) or cgroup.freeze (v2); empty: none
  std::string cgroup_procs;       // for "kill <sig> all"; empty: none
  std::string oom_file;           // memory.oom_control (v1) or memory.events (v2); empty: none
  bool start_when_ready = false;  // the init is released once ready: create and start in one
};

// Known only in M, after the fork.
struct MonitorFds {
  pid_t init_pid = -1;
  int start_fd = -1;
  int exec_err_fd = -1;
  int ready_fd = -1;
  int console_fd = -1;  // -1: no console
  // The creator's end of the init's setup socket: the monitor waits for the init's
  // "ready\n" (or forwards its "err ...\n") before it reports "ok". -1: none.
  int init_sync_fd = -1;
};

// The berth-monitor binary: $BERTH_MONITOR, else beside the running executable or in
// <prefix>/libexec/berth/ next to its bin/ or sbin/, else in
// the build tree this library was built in. Throws kNotFound when none is executable.
std::string FindMonitorBinary();

class MonitorCommand {
 public:
  explicit MonitorCommand(const MonitorArgs& args, std::string binary = FindMonitorBinary());
  MonitorCommand(const MonitorCommand&) = delete;
  MonitorCommand& operator=(const MonitorCommand&) = delete;

  const std::string& binary() const { return binary_; }

  // Async-signal-safe. Every descriptor but stdio and `fds` is closed on exec. If execve
  // fails, "err exec berth-monitor: <reason>\n" goes to ready_fd and M exits 127.
  [[noreturn]] void Exec(const MonitorFds& fds) noexcept;

 private:
  using Slot = std::array<char, 24>;
  enum SlotIndex { kInitPid, kStartFd, kExecErrFd, kReadyFd, kInitSyncFd, kConsoleFd, kSlotCount };

  std::string binary_;
  std::vector<std::string> words_;  // the fixed words; argv points into them and slots_
  std::array<Slot, kSlotCount> slots_{};
  std::vector<char*> argv_;
  int console_flag_index_ = -1;  // argv index of "--console-fd", cut off when no console
};

// A shell's monitor (shell.h) gets its arguments with its claim: `args` as the words of an
// argv (each ended by a NUL), without the descriptors, which travel as SCM_RIGHTS.
std::string MonitorClaimWords(const MonitorArgs& args);

// For single-threaded callers (tests, tools): builds the command and execs it.
[[noreturn]] void ExecMonitor(const MonitorArgs& args, const MonitorFds& fds);

}  // namespace berth::monitor
