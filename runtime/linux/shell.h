// A shell: the processes of a container made before the container is asked for.
//
// A create spends most of its time making processes: the fork of M, the clone of the
// init into six new namespaces, its id maps (see protocol.h for M and the init). None of
// that depends on the container but for the clone flags and the id maps, so a caller that
// can guess them (berthd knows which user-namespace slot its next instance gets) makes a
// shell ahead: M forked and waiting, the init cloned into its namespaces with its maps
// written and loopback up, waiting too. CreateContainer(options, shell) then only hands
// them their parts: M the monitor's arguments and descriptors (it execs berth-monitor as
// in a cold create), the init the spec, its cgroups, its stdio and the root as a detached
// mount tree (open_tree), which it moves into its own mount namespace, made before that
// root was mounted.
//
// An unclaimed shell holds no cgroup, no state directory and no file: its processes are
// all there is. They end when the Shell is destroyed, when the thread that is M's parent
// exits (PR_SET_PDEATHSIG), or when its sockets close.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cgroup/cgroup.h"
#include "runtime/common/unique_fd.h"
#include "runtime/spec/spec.h"

namespace berth::container {

// What a shell is made for. Two specs with the same shape can use the same shell.
struct ShellShape {
  unsigned long clone_flags = 0;  // CLONE_NEW* of the init
  std::vector<spec::IdMapping> uid_mappings;
  std::vector<spec::IdMapping> gid_mappings;

  bool operator==(const ShellShape& other) const;
};

// nullopt when `spec` cannot use a shell: it joins namespaces by path, wants a terminal,
// or makes no user namespace (then nothing slow is left to make ahead).
std::optional<ShellShape> ShellShapeOf(const spec::Spec& spec);

std::string ShellShapeJson(const ShellShape& shape);
// kInvalidArgument on a malformed document.
ShellShape ParseShellShape(std::string_view json);

// Whose child a shell's M is. That parent reaps it, and until claimed M ends when the
// parent's thread it hangs from exits (PR_SET_PDEATHSIG).
enum class ShellParent {
  // fork: the caller's, hanging from the calling thread (make shells on a thread that lives
  // as long as they may).
  kCaller,
  // clone(CLONE_PARENT): the caller's parent's, as if it had forked M itself, hanging from
  // the thread that forked the caller. For a process that makes shells for its parent
  // (shell_zygote.h). Single-threaded callers only: a raw clone does not reset the locks
  // another thread may hold.
  kCallersParent,
};

class Shell {
 public:
  Shell(const Shell&) = delete;
  Shell& operator=(const Shell&) = delete;
  // An unclaimed shell ends: M sees its claim socket close, kills and reaps its init, and
  // exits. M's parent (ShellParent) reaps it.
  ~Shell();

  const ShellShape& shape() const { return shape_; }
  pid_t monitor_pid() const { return m_pid_; }
  pid_t init_pid() const { return init_pid_; }
  // False once M or the init has gone (killed meanwhile): such a shell cannot be claimed.
  bool alive() const;

  // The parts of a claim, sent by CreateContainer (shell_internal.h has their layout): the
  // init's first, so that it builds its root while the creator makes its cgroups; then its
  // cgroups; the monitor's last. Throws when the shell's process is gone.
  void SendToInit(std::string_view body, const std::vector<int>& fds);
  void SendCgroupsToInit(const std::vector<int>& fds);
  void SendToMonitor(std::string_view body, const std::vector<int>& fds);

  // A shell made in another process (shell_zygote.h), or handed on to the daemon
  // (Spawner::Expect), travels as one message on a stream socket (SendMessageWithFds):
  // "ok <M pid> <init pid>" with its descriptors to M, to the init, M's pidfd and the init's
  // pidfd. The sender words any other answer itself ("err <why>", "none"), without
  // descriptors. SendTo leaves this Shell empty (its destruction then ends nothing); it
  // throws as SendMessageWithFds does.
  void SendTo(int sock, std::string_view what);
  // The shell a received message carries; null for any other answer, or an "ok" without
  // its pids and four descriptors.
  static std::unique_ptr<Shell> FromMessage(const ShellShape& shape, const std::string& body,
                                            std::vector<UniqueFd> fds);

 private:
  friend std::unique_ptr<Shell> MakeShell(const ShellShape& shape, ShellParent parent);
  friend struct ShellClaim;
  Shell() = default;

  ShellShape shape_;
  pid_t m_pid_ = -1;
  pid_t init_pid_ = -1;
  UniqueFd m_pidfd_;
  UniqueFd init_pidfd_;
  UniqueFd to_m_;     // the monitor's part of a claim goes here
  UniqueFd to_init_;  // the init's part
};

// Makes M, which clones the init and writes its maps; returns when both wait. Throws when a
// step fails.
std::unique_ptr<Shell> MakeShell(const ShellShape& shape,
                                 ShellParent parent = ShellParent::kCaller);

}  // namespace berth::container
