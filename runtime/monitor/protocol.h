// The contract between the process that creates a container and berth-monitor, the small
// per-container supervisor that runs for the container's whole life.
//
// How a container comes to be (runtime/linux/container.cc does steps 1-4):
//  1. The creator forks M, which calls setsid() and prctl(PR_SET_CHILD_SUBREAPER).
//  2. M clones the container init C into its namespaces. C prepares its root, then blocks
//     reading `start_fd` (one byte means "exec now"); when its execve fails it writes the
//     errno as 4 bytes to `exec_err_fd` (close-on-exec, so EOF means the exec happened).
//  3. M joins C to its cgroup, writes state.json (the static record, see StateRecord in
//     runtime/linux/state.h), and then execve()s berth-monitor with the arguments below.
//     C stays M's child across the execve, so the monitor reaps it.
//  4. berth-monitor binds <state_dir>/monitor.sock, writes "ok\n" to `ready_fd` and closes
//     it; the creator returns once it reads that (or an error line "err <text>\n").
//
// Arguments (all required unless marked):
//   --state-dir DIR       where monitor.sock, status.json, console.log live
//   --init-pid PID        C
//   --start-fd N          write end: one byte releases C into execve
//   --exec-err-fd N       read end: EOF = exec ok, 4 bytes = errno of the failed execve
//   --ready-fd N          write end: "ok\n" once the socket listens
//   --console-fd N        (optional) read end of C's stdout+stderr pipe
//   --console-max BYTES   (optional, default 1 MiB) bound on the console log
//   --freezer PATH        (optional) freezer.state (v1) or cgroup.freeze (v2) of the group
//   --cgroup-procs PATH   (optional) cgroup.procs, for "kill <sig> all"
//   --oom-file PATH       (optional) memory.oom_control (v1) or memory.events (v2);
//                         its "oom_kill N" line says whether the OOM killer struck
//
// Files the monitor writes in --state-dir, each atomically (temp, fsync, rename):
//   status.json   {"status":"created|running|paused|stopped","pid":N,
//                  "started_at":"RFC3339"?, "finished_at":"RFC3339"?,
//                  "exit_code":N?, "exit_signal":N?, "oom_killed":bool, "oom_kills":N}
//   console.log   the container's stdout+stderr; when it reaches half of --console-max it
//                 is renamed to console.log.1 (replacing the older one), so the two files
//                 together never exceed --console-max.
//
// Requests on monitor.sock (SOCK_SEQPACKET, one request and one reply per datagram, text):
//   "state"            -> "ok <status.json content>"
//   "start"            -> "ok" once C has exec'd; "err <errno> <message>" if exec failed
//                         or the state is not "created"
//   "kill <sig> [all]" -> signal C (or every pid in cgroup.procs with "all")
//   "pause" / "resume" -> freeze / thaw through --freezer; reply when done
//   "wait"             -> reply only when C has exited: "ok <status.json content>"
// Errors are "err <errno> <message>". When C has exited and its status is recorded and
// the console drained, the monitor answers pending "wait"s, unlinks monitor.sock and
// exits 0: no process of a stopped container remains.
#pragma once

namespace berth::monitor {

inline constexpr const char* kSocketName = "monitor.sock";
inline constexpr const char* kStatusFile = "status.json";
inline constexpr const char* kConsoleLog = "console.log";
inline constexpr unsigned long kDefaultConsoleMax = 1u << 20;

}  // namespace berth::monitor
