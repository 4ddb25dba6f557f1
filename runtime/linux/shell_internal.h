// Between shell.cc, which makes a shell's processes, and container.cc, which owns the
// init's plan and the create that claims a shell.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/cgroup/cgroup.h"
#include "runtime/linux/namespaces.h"
#include "runtime/spec/spec.h"

namespace berth::container::internal {

// The init's part of a claim, in two messages. First these descriptors, with a body of a
// JSON header {"cgroup_path"}, a newline, and the spec's JSON. Then, once the creator has
// made them, its cgroups: body kClaimCgroupsBody, with one descriptor for each group the
// init joins by writing "0" to it (each v1 hierarchy's "tasks", cgroup2's cgroup.procs).
inline constexpr char kClaimCgroupsBody[] = "cgroups";
enum ClaimInitFd : size_t {
  kClaimRootTree,
  kClaimStartRead,
  kClaimExecErrWrite,
  kClaimStdin,
  kClaimStdout,
  kClaimInitFixedFds
};
// The monitor's part is berth-monitor's claim (monitor_main.cc, "shells"): the words of
// monitor::MonitorClaimWords with the descriptors start (write end), exec-err (read end),
// ready (write end) and the console's read end when there is a console.

// What a shell's init knows from the start; the rest comes with the claim.
struct ShellInitContext {
  int sync_fd = -1;   // to M: "go" once the maps are written; later "ready"/"err" to the monitor
  int claim_fd = -1;  // the claim arrives here; EOF: the shell is discarded
  NamespacePlan namespaces;
  cgroup::CgroupHost cgroup_host;
};

// The init of a shell: waits for its maps and its claim, then builds its plan and runs as
// a cold create's init does. Never returns.
[[noreturn]] void RunShellInit(const ShellInitContext& context);

void WriteIdMap(pid_t pid, const char* file, const std::vector<spec::IdMapping>& maps);

}  // namespace berth::container::internal
