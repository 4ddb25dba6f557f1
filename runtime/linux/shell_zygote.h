// Shells (shell.h) made by a small process of their own, for the process that started it.
//
// Making a shell forks M, and a fork write-protects every private page of the process that
// forks: made by the spawner itself (threads, a heap that every create grows), each shell
// would cost the spawner's next create a copy-on-write fault on each heap page it writes
// (its request's decode: 0.1 ms in a warm process, ~1.75 ms after a fork here). The zygote
// is forked from the spawner at its start, while the spawner is small and single-threaded;
// it stays single-threaded, makes each shell on request, and hands back the shell's pids
// and descriptors (SCM_RIGHTS).
//
// M is made with CLONE_PARENT (ShellParent::kCallersParent): it is the spawner's child, as
// if the spawner had forked it, so the spawner reaps it and, until claimed, it dies with
// the spawner's thread that started the zygote (PR_SET_PDEATHSIG). The zygote has no
// children. It ends when its socket closes and dies with the spawner (PR_SET_PDEATHSIG);
// the shells it made outlive it, so a zygote that dies costs only the shells not yet made.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>

#include "runtime/common/unique_fd.h"
#include "runtime/linux/shell.h"

namespace berth::container {

class ShellZygote {
 public:
  // Forks the zygote. Call while the caller is single-threaded (the zygote must not inherit
  // a lock another thread holds), from the thread that lives as long as the shells it will
  // be given: their M hang from it. Throws on failure (socketpair, fork, pidfd_open).
  static std::unique_ptr<ShellZygote> Start();

  ShellZygote(const ShellZygote&) = delete;
  ShellZygote& operator=(const ShellZygote&) = delete;
  ~ShellZygote();  // Stop()

  // A shell made in the zygote; its M is the caller's child. One call at a time. Throws
  // kSystem with the step's error when a shell could not be made, and when the zygote is
  // gone or answers nonsense (then alive() is false, and a zygote still there is killed).
  std::unique_ptr<Shell> Make(const ShellShape& shape);

  // Ends the zygote: its socket shut down (a Make in progress on another thread fails), a
  // short wait, then SIGKILL; reaped here unless the caller's reaper did it first.
  void Stop();

  pid_t pid() const { return pid_; }
  bool alive() const;

 private:
  ShellZygote(pid_t pid, UniqueFd pidfd, UniqueFd sock);
  void Kill();

  const pid_t pid_;
  const UniqueFd pidfd_;
  const UniqueFd sock_;
  std::atomic<bool> broken_{false};
};

}  // namespace berth::container
