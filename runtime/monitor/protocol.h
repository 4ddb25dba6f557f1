// The contract between the process that creates a container and berth-monitor, the small
// per-container supervisor that runs for the container's whole life.
//
// How a container comes to be (runtime/linux/container.cc does steps 1-4):
//  1. The creator forks M, which calls setsid() and prctl(PR_SET_CHILD_SUBREAPER).
//  2. M clones the container init C into its namespaces. C prepares its root, then blocks
//     reading `start_fd` (one byte means "exec now"; EOF means the monitor is gone: C must
//     _exit without exec'ing); when its execve fails it writes the errno as 4 bytes
//     (native int) to `exec_err_fd` (close-on-exec, so EOF means the exec happened). C
//     closes every end it does not own — the write end of start_fd, the read ends of
//     exec_err_fd and the console, and the ready fd — so that EOFs mean what they say.
//  3. M joins C to its cgroup, writes state.json (the static record, see StateRecord in
//     runtime/linux/state.h), and then execve()s berth-monitor with the arguments below
//     (MonitorCommand in launch.h builds argv before the fork and execs without allocating).
//     C stays M's child across the execve, so the monitor reaps it; the monitor refuses to
//     run (waitid check) when C is not its child.
//  4. berth-monitor binds <state_dir>/monitor.sock, writes status.json ("created"), writes
//     "ok\n" to `ready_fd` and closes it; the creator returns once it reads that line (or an
//     error line "err <text>\n"; then the monitor has already SIGKILLed and reaped C and
//     exited non-zero). Read one line, not to EOF: an init that kept a copy of the ready fd
//     would delay EOF until it execs.
//
// A shell's monitor (runtime/linux/shell.h) is exec'd by M before its container exists:
//   berth-monitor --shell-claim-fd N --init-pid P --init-sync-fd S
// It waits on N (a stream socket) for its claim: an 8-byte length with the descriptors
// start, exec-err, ready and (with a console) console as SCM_RIGHTS, then that many bytes:
// the other arguments below as NUL-ended words (monitor::MonitorClaimWords). EOF instead:
// the shell is discarded, and the monitor kills and reaps P and exits 0. Until claimed it
// keeps the PR_SET_PDEATHSIG M was given, so it ends with the spawner's thread that made it.
// Empty words after those arguments are room: once claimed, the monitor writes over its
// command line the one a cold create's monitor has (ps and pgrep see --state-dir).
//
// Arguments (all required unless marked):
//   --state-dir DIR       where monitor.sock, status.json, console.log live
//   --init-pid PID        C
//   --start-fd N          write end: one byte releases C into execve
//   --exec-err-fd N       read end: EOF = exec ok, 4 bytes = errno of the failed execve
//   --ready-fd N          write end: "ok\n" once the socket listens
//   --init-sync-fd N      (optional; -1: none) the creator's end of C's setup socket
//   --console-fd N        (optional) read end of C's stdout+stderr pipe
//   --console-max BYTES   (optional, default 1 MiB) bound on the console log
//   --freezer PATH        (optional) freezer.state (v1) or cgroup.freeze (v2) of the group
//   --cgroup-procs PATH   (optional) cgroup.procs, for "kill <sig> all"
//   --oom-file PATH       (optional) memory.oom_control (v1) or memory.events (v2);
//                         its "oom_kill N" line says whether the OOM killer struck
//   --start-when-ready 1  (optional, default 0) release C as soon as it reports ready, as a
//                         "start" would, before writing "ok": the creator gets a running
//                         container (berthd's spawns from a shell, whose network is
//                         attached before the monitor is claimed)
// The monitor chdir()s into --state-dir (so the socket path is short whatever the dir), so
// the three cgroup paths must be absolute. The fds are made close-on-exec by the monitor;
// its own stdin/stdout/stderr are replaced by /dev/null. It ignores SIGTERM, SIGINT, SIGHUP
// and SIGPIPE: the container stops only through "kill". It is a child subreaper and reaps
// every process re-parented to it; only C's status is recorded.
//
// Files the monitor writes in --state-dir, each atomically (temp file, rename; no fsync:
// runtime state describes live processes, which a power loss ends anyway):
//   status.json   {"status":"created|running|paused|stopped","pid":N,
//                  "started_at":"RFC3339"?, "finished_at":"RFC3339"?,
//                  "exit_code":N?, "exit_signal":N?, "exec_errno":N?,
//                  "oom_killed":bool, "oom_kills":N}
//                 Times are UTC with nanoseconds ("2026-11-28T02:51:38.123456789Z").
//                 exit_code and exit_signal exclude each other. exec_errno is set when C's
//                 execve failed after "start" (C then exits 127 for ENOENT, else 126).
//                 oom_killed: oom_kill > 0 and C died of SIGKILL. Parse it with
//                 ParseStatus (client.h).
//   console.log   the container's stdout+stderr; when it reaches half of --console-max it
//                 is renamed to console.log.1 (replacing the older one), so the two files
//                 together never exceed --console-max.
//
// Requests on monitor.sock (SOCK_SEQPACKET, one request and one reply per datagram, text):
//   "state"            -> "ok <status.json content>"
//   "start"            -> "ok" once C is told to exec (status "running"), as runc and crun
//                         answer; "err <errno> <message>" if the state is not "created"
//                         or C is gone. An exec that fails after that is C's exit.
//   "kill <sig> [all]" -> signal C (or every pid in cgroup.procs with "all")
//   "pause" / "resume" -> freeze / thaw through --freezer; reply when done
//   "wait"             -> reply only when C has exited: "ok <status.json content>"
// Errors are "err <errno> <message>" with these errnos: EINVAL a malformed request or
// signal (0..64); EBUSY the state forbids it (start when not created, pause when not
// running, resume when not paused); EOPNOTSUPP no --freezer / --cgroup-procs; ESRCH C has
// exited; EBUSY also when a freeze did not complete within 2 s (it is undone); otherwise
// the failed call's errno (start: the errno of C's execve). A SIGKILL sent while paused
// thaws the cgroup so that it lands. "pause"/"resume" block the monitor for up to 2 s.
//
// When C exits the monitor records the status at once (status.json "stopped"), drains
// the console until EOF or at most 200 ms (a daemonised grandchild may hold the pipe),
// unlinks monitor.sock, answers pending "wait"s and requests already queued, and exits 0:
// no process of a stopped container remains but those that escaped its init (use
// "kill 9 all" first). A client that finds no monitor reads status.json instead
// (MonitorClient::Wait does).
#pragma once

namespace berth::monitor {

inline constexpr const char* kSocketName = "monitor.sock";
inline constexpr const char* kStatusFile = "status.json";
inline constexpr const char* kConsoleLog = "console.log";
inline constexpr unsigned long kDefaultConsoleMax = 1u << 20;

}  // namespace berth::monitor
