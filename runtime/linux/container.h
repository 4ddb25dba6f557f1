// The container lifecycle on one host, as the OCI runtime commands name it: create,
// start, state, kill, delete, exec. berth-runtime's verbs call these one-to-one; berthd
// calls them for Nova's instance lifecycle.
//
// create: the caller prepares everything that can fail on bad input (spec, mount plan,
// security profile, cgroup with its limits) before any process exists, then a
// double fork leaves a process M in its own session; M clones the container init C into
// its namespaces, puts it in the cgroup, and execs berth-monitor, which stays C's parent
// for the container's life (see runtime/monitor/protocol.h). Any failure rolls back every
// step already made: no cgroup, process or state directory remains.
#pragma once

#include <sys/types.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/cgroup/cgroup.h"
#include "runtime/linux/shell.h"
#include "runtime/linux/state.h"
#include "runtime/spec/spec.h"

namespace berth::container {

struct CreateOptions {
  std::string id;
  std::string state_root = "/run/berth-runtime";
  std::string bundle;  // recorded in the state; the spec is already loaded
  spec::Spec spec;     // root.path absolute
  // Relative to the cgroup hierarchy roots; empty: the spec's cgroupsPath, else
  // "berth/<id>".
  std::string cgroup_path;
  // Foreground use (berth-runtime run): the container gets our stdin/stdout/stderr (our
  // terminal, if they are one, instead of a pty of its own).
  // Otherwise stdin is /dev/null and stdout+stderr go to the monitor's console log.
  bool inherit_stdio = false;
  unsigned long console_max = 1u << 20;
  // process.terminal: the init gets a pty (its stdio, controlling terminal and
  // /dev/console). The master goes to this unix socket (SCM_RIGHTS, as runc and crun
  // do) when given, else to the monitor, which logs it like any console output.
  std::string console_socket;
  // The caller waits for all its children (as the spawner does): the monitor is forked once,
  // as the caller's child, instead of twice to be re-parented away from it. A shell's
  // monitor is the child of whoever made the shell (the spawner, for a shell it handed
  // over), which must reap it: a shell is claimed only with this set.
  bool caller_reaps_monitor = false;
  // The caller made the cgroup's directories itself, ahead (berthd does, beside the rest of a
  // spawn): the create waits for this instead of making them, and owns them from then on (a
  // failed create removes them). Its limits are still the create's to write.
  std::shared_future<void> cgroup_made_ahead;

  // A create from a shell only (a cold create's init pid is known to its caller only once
  // it is ready, so its caller does these after the create):
  // What must be in place before the process may start, with the init's pid: called once
  // the init has its claim and before the monitor has its own (berthd attaches the network).
  std::function<void(pid_t init_pid)> before_monitor_claim;
  // Called once the container exists (its state record written) while the init finishes
  // its root (berthd publishes the instance's record).
  std::function<void()> once_created;
  // The monitor releases the init as soon as it is ready: the create returns a running
  // container, without a start's round trip.
  bool start_when_ready = false;
};

StateRecord CreateContainer(const CreateOptions& options);

// The same with the processes of a shell made ahead (shell.h), which must have the spec's
// shape; for a caller that reaps monitors, without inherit_stdio or a terminal. The
// options' before_monitor_claim, once_created and start_when_ready apply here only.
// `spec_json`: options.spec serialized, when the caller has it already.
StateRecord CreateContainer(const CreateOptions& options, std::unique_ptr<Shell> shell,
                            std::string_view spec_json = {});

// Releases a created container into its process; fails (kConflict) unless created.
void StartContainer(const std::string& state_root, const std::string& id);

enum class Status { kCreated, kRunning, kPaused, kStopped };
const char* StatusName(Status status);

struct ContainerInfo {
  StateRecord record;
  Status status = Status::kStopped;
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  bool oom_killed = false;
  std::string started_at;
  std::string finished_at;
};

ContainerInfo QueryContainer(const std::string& state_root, const std::string& id);
// The OCI state document ("ociVersion", "id", "status", "pid", "bundle", "annotations"),
// plus "created" and, once stopped, the exit details.
std::string OciStateJson(const ContainerInfo& info);

// Sends `signal` to the init, or with `all` to every process in the container's cgroup.
void KillContainer(const std::string& state_root, const std::string& id, int signal, bool all);

// Waits until the container's init exits; returns its info (stopped).
ContainerInfo WaitContainer(const std::string& state_root, const std::string& id);

void PauseContainer(const std::string& state_root, const std::string& id);
void ResumeContainer(const std::string& state_root, const std::string& id);

// Removes a created or stopped container (running or paused: kConflict unless force, which
// kills every process first). Leaves no process, cgroup or state behind.
void DeleteContainer(const std::string& state_root, const std::string& id, bool force);

std::vector<std::string> ListContainers(const std::string& state_root);

// Resource usage of the container's cgroup (cpu, memory, oom kills, pids, io).
cgroup::CgroupStats ContainerStats(const std::string& state_root, const std::string& id);
std::string StatsJson(const cgroup::CgroupStats& stats);

// Processes in the container's cgroup, as host pids.
std::vector<pid_t> ContainerPids(const std::string& state_root, const std::string& id);

struct ExecOptions {
  std::vector<std::string> args;
  std::vector<std::string> env;  // added to (and overriding) the container's env
  std::string cwd;               // empty: the container's cwd
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  int stdin_fd = 0;
  int stdout_fd = 1;
  int stderr_fd = 2;
};

// Runs a process inside a running container: its namespaces, its cgroup, its security
// profile (capabilities, no_new_privs, seccomp, user). Returns the wait status
// (as waitpid gives it).
int ExecInContainer(const std::string& state_root, const std::string& id,
                    const ExecOptions& options);

// PATH lookup as execvp does it, but with the container's PATH, from inside its root.
// Returns the absolute path or empty.
std::string FindExecutable(const std::string& name, const std::vector<std::string>& env);

}  // namespace berth::container
