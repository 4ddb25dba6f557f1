// berth-monitor: the per-container supervisor described in protocol.h.
//
// It is paid for once per running container, so it is written in a C-like subset of C++
// (no heap, no exceptions, no stdio; see mini.h) and linked statically: one thread, one
// poll() loop over the listening socket, the clients, the console pipe, the exec-error
// pipe and a signalfd for SIGCHLD.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>  // renameat only; no stdio streams are used
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <initializer_list>

#include "runtime/monitor/console_rotation.h"
#include "runtime/monitor/freezer.h"
#include "runtime/monitor/mini.h"
#include "runtime/monitor/protocol.h"

namespace berth::monitor {
namespace {

using mini::FixedText;
using mini::Text;

constexpr int kMaxClients = 32;
constexpr long kFreezeTimeoutMs = 2000;
// How long the console is drained after the init is gone: a daemonised grandchild may
// hold the pipe open for ever.
constexpr long kDrainMs = 200;
constexpr size_t kIoBufferSize = 8192;
constexpr size_t kReplySize = 1024;

struct Args {
  const char* state_dir = nullptr;
  pid_t init_pid = -1;
  int start_fd = -1;
  int exec_err_fd = -1;
  int ready_fd = -1;
  int console_fd = -1;
  int init_sync_fd = -1;
  unsigned long long console_max = kDefaultConsoleMax;
  const char* freezer = nullptr;
  const char* cgroup_procs = nullptr;
  const char* oom_file = nullptr;
  // Release the init as soon as it reports ready, before the creator hears "ok": a create
  // and a start in one, without the start's round trip (berthd's spawns from a shell).
  bool start_when_ready = false;
};

enum class Status { kCreated, kRunning, kPaused, kStopped };

const char* StatusName(Status s) {
  switch (s) {
    case Status::kCreated:
      return "created";
    case Status::kRunning:
      return "running";
    case Status::kPaused:
      return "paused";
    case Status::kStopped:
      return "stopped";
  }
  return "unknown";
}

struct Client {
  int fd = -1;
  bool waiting = false;  // a "wait" is answered when the init has exited
};

struct Monitor {
  Args args;
  FreezerKind freezer_kind = FreezerKind::kNone;
  int dir_fd = -1;
  int listen_fd = -1;
  int signal_fd = -1;
  int log_fd = -1;
  unsigned long long log_size = 0;

  Status status = Status::kCreated;
  bool starting = false;  // start byte sent, the exec's outcome not known yet
  unsigned char exec_err_bytes[4] = {};
  int exec_err_len = 0;
  int exec_errno = 0;
  bool has_started_at = false;
  struct timespec started_at = {};

  bool init_exited = false;
  int wait_status = 0;
  struct timespec finished_at = {};
  long long oom_kills = -1;  // -1: no --oom-file or unreadable
  bool oom_killed = false;
  long long drain_deadline_ms = 0;

  Client clients[kMaxClients];
};

// Static so that the buffers cost nothing until touched and never sit on a deep stack.
Monitor g_monitor;
char g_io_buffer[kIoBufferSize];

// ---- arguments -------------------------------------------------------------------------

bool ParseFd(const char* s, int* out) {
  unsigned long long v;
  if (!mini::ParseUnsigned(s, INT_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

// nullptr on success, else what was wrong.
const char* ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const char* key = argv[i];
    if (i + 1 >= argc) return "missing value after an option";
    const char* value = argv[++i];
    unsigned long long v;
    if (mini::StrEq(key, "--state-dir")) {
      a->state_dir = value;
    } else if (mini::StrEq(key, "--init-pid")) {
      if (!mini::ParseUnsigned(value, INT_MAX, &v) || v == 0) return "bad --init-pid";
      a->init_pid = static_cast<pid_t>(v);
    } else if (mini::StrEq(key, "--start-fd")) {
      if (!ParseFd(value, &a->start_fd)) return "bad --start-fd";
    } else if (mini::StrEq(key, "--exec-err-fd")) {
      if (!ParseFd(value, &a->exec_err_fd)) return "bad --exec-err-fd";
    } else if (mini::StrEq(key, "--ready-fd")) {
      if (!ParseFd(value, &a->ready_fd)) return "bad --ready-fd";
    } else if (mini::StrEq(key, "--init-sync-fd")) {
      // -1: the creator waited for the init itself.
      if (!mini::StrEq(value, "-1") && !ParseFd(value, &a->init_sync_fd)) {
        return "bad --init-sync-fd";
      }
    } else if (mini::StrEq(key, "--console-fd")) {
      if (!ParseFd(value, &a->console_fd)) return "bad --console-fd";
    } else if (mini::StrEq(key, "--console-max")) {
      if (!mini::ParseUnsigned(value, ~0ull, &v) || v < 2) return "bad --console-max";
      a->console_max = v;
    } else if (mini::StrEq(key, "--freezer")) {
      a->freezer = value;
    } else if (mini::StrEq(key, "--cgroup-procs")) {
      a->cgroup_procs = value;
    } else if (mini::StrEq(key, "--oom-file")) {
      a->oom_file = value;
    } else if (mini::StrEq(key, "--start-when-ready")) {
      if (!mini::StrEq(value, "1") && !mini::StrEq(value, "0")) return "bad --start-when-ready";
      a->start_when_ready = mini::StrEq(value, "1");
    } else {
      return "unknown option";
    }
  }
  if (a->state_dir == nullptr) return "--state-dir is required";
  if (a->init_pid <= 0) return "--init-pid is required";
  if (a->start_fd < 0 || a->exec_err_fd < 0) return "--start-fd and --exec-err-fd are required";
  // The monitor works inside --state-dir (chdir), so other paths must not be relative.
  for (const char* p : {a->freezer, a->cgroup_procs, a->oom_file}) {
    if (p != nullptr && p[0] != '/') return "cgroup file paths must be absolute";
  }
  if (a->freezer != nullptr && FreezerKindFor(a->freezer) == FreezerKind::kNone) {
    return "--freezer must name freezer.state or cgroup.freeze";
  }
  return nullptr;
}

// ---- status.json -----------------------------------------------------------------------

void BuildStatus(const Monitor& m, Text& out) {
  out.Add("{\"status\":\"").Add(StatusName(m.status)).Add("\",\"pid\":");
  out.AddSigned(m.args.init_pid);
  if (m.has_started_at) out.Add(",\"started_at\":\"").AddTime(m.started_at).AddChar('"');
  if (m.init_exited) {
    out.Add(",\"finished_at\":\"").AddTime(m.finished_at).AddChar('"');
    if (WIFSIGNALED(m.wait_status)) {
      out.Add(",\"exit_signal\":").AddSigned(WTERMSIG(m.wait_status));
    } else {
      out.Add(",\"exit_code\":").AddSigned(WEXITSTATUS(m.wait_status));
    }
  }
  if (m.exec_errno != 0) out.Add(",\"exec_errno\":").AddSigned(m.exec_errno);
  out.Add(",\"oom_killed\":").Add(m.oom_killed ? "true" : "false");
  out.Add(",\"oom_kills\":").AddSigned(m.oom_kills < 0 ? 0 : m.oom_kills).AddChar('}');
}

// 0 or an errno.
int SaveStatus(const Monitor& m) {
  FixedText<kReplySize> json;
  BuildStatus(m, json);
  json.AddChar('\n');
  if (json.overflow()) return EOVERFLOW;
  return mini::WriteFileAtomic(m.dir_fd, kStatusFile, json.c_str(), json.size());
}

// ---- replies ---------------------------------------------------------------------------

void SendReply(Client& c, const Text& reply) {
  // One datagram per reply; a client that went away is noticed by poll() later.
  ssize_t n;
  do {
    n = ::send(c.fd, reply.c_str(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
}

void ReplyOk(Client& c) {
  FixedText<4> ok;
  ok.Add("ok");
  SendReply(c, ok);
}

void ReplyErr(Client& c, int err, const char* message) {
  FixedText<kReplySize> reply;
  reply.Add("err ").AddSigned(err).AddChar(' ').Add(message);
  if (err != 0) reply.Add(": ").Add(strerrordesc_np(err) ? strerrordesc_np(err) : "error");
  SendReply(c, reply);
}

void ReplyStatus(Client& c, const Monitor& m) {
  FixedText<kReplySize> reply;
  reply.Add("ok ");
  BuildStatus(m, reply);
  SendReply(c, reply);
}

void CloseClient(Client& c) {
  ::close(c.fd);
  c = Client{};
}

// ---- console ---------------------------------------------------------------------------

int OpenLog(Monitor& m) {
  m.log_fd = ::openat(m.dir_fd, kConsoleLog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (m.log_fd < 0) return errno;
  struct stat st;
  m.log_size = ::fstat(m.log_fd, &st) == 0 ? static_cast<unsigned long long>(st.st_size) : 0;
  return 0;
}

void Rotate(Monitor& m) {
  ::close(m.log_fd);
  FixedText<64> old_name;
  old_name.Add(kConsoleLog).Add(".1");
  ::renameat(m.dir_fd, kConsoleLog, m.dir_fd, old_name.c_str());
  m.log_fd =
      ::openat(m.dir_fd, kConsoleLog, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  m.log_size = 0;
}

void AppendConsole(Monitor& m, const char* data, size_t len) {
  while (len > 0) {
    ConsoleStep step = PlanConsoleWrite(m.log_size, len, m.args.console_max);
    if (step.rotate_first) Rotate(m);
    // Output that cannot be written (disk full, log gone) is dropped: the container must
    // never block on its console.
    if (m.log_fd >= 0) mini::WriteAll(m.log_fd, data, step.write_len);
    m.log_size += step.write_len;
    data += step.write_len;
    len -= step.write_len;
  }
}

// Reads what the pipe holds now; closes it at EOF.
void DrainConsole(Monitor& m) {
  for (int rounds = 0; rounds < 16; ++rounds) {
    ssize_t n = ::read(m.args.console_fd, g_io_buffer, sizeof g_io_buffer);
    if (n > 0) {
      AppendConsole(m, g_io_buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR)) continue;
    if (n < 0 && errno == EAGAIN) return;
    ::close(m.args.console_fd);
    m.args.console_fd = -1;
    return;
  }
}

// ---- the init's life -------------------------------------------------------------------

void ReadOomKills(Monitor& m) {
  if (m.args.oom_file == nullptr) return;
  char buf[1024];
  if (mini::ReadSmallFile(m.args.oom_file, buf, sizeof buf) < 0) return;
  m.oom_kills = mini::FindKeyedValue(buf, "oom_kill");
}

// The exec-error pipe has something: 4 bytes of errno, or EOF when the exec happened.
void OnExecErr(Monitor& m) {
  for (;;) {
    ssize_t n = ::read(m.args.exec_err_fd, m.exec_err_bytes + m.exec_err_len,
                       sizeof m.exec_err_bytes - static_cast<size_t>(m.exec_err_len));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n > 0) {
      m.exec_err_len += static_cast<int>(n);
      if (m.exec_err_len < 4) continue;
    }
    break;
  }
  ::close(m.args.exec_err_fd);
  m.args.exec_err_fd = -1;
  m.starting = false;
  if (m.exec_err_len != 4) return;  // EOF: the exec happened
  int err;
  memcpy(&err, m.exec_err_bytes, sizeof err);
  m.exec_errno = err > 0 ? err : EIO;
  SaveStatus(m);
}

void OnInitExit(Monitor& m, int wait_status) {
  m.init_exited = true;
  m.wait_status = wait_status;
  m.status = Status::kStopped;
  ::clock_gettime(CLOCK_REALTIME, &m.finished_at);
  ReadOomKills(m);
  m.oom_killed = m.oom_kills > 0 && WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL;
  m.drain_deadline_ms = mini::MonotonicMs() + kDrainMs;
  SaveStatus(m);
}

// Reaps every child: the init, and any process re-parented to this subreaper.
void ReapChildren(Monitor& m) {
  for (;;) {
    int st;
    pid_t pid = ::waitpid(-1, &st, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    if (pid == m.args.init_pid && !m.init_exited) OnInitExit(m, st);
  }
}

void OnSignal(Monitor& m) {
  struct signalfd_siginfo info[4];
  while (::read(m.signal_fd, info, sizeof info) > 0) {
  }
  ReapChildren(m);
}

// ---- requests --------------------------------------------------------------------------

int SignalCgroup(const char* procs_path, int sig) {
  int fd = ::open(procs_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  long long pid = -1;
  for (;;) {
    ssize_t n = ::read(fd, g_io_buffer, sizeof g_io_buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return err;
    }
    // A pid can straddle two reads, so the number being parsed lives across iterations.
    for (ssize_t i = 0; i < n; ++i) {
      char ch = g_io_buffer[i];
      if (ch >= '0' && ch <= '9') {
        pid = (pid < 0 ? 0 : pid * 10) + (ch - '0');
      } else {
        if (pid > 0) ::kill(static_cast<pid_t>(pid), sig);
        pid = -1;
      }
    }
    if (n == 0) break;
  }
  if (pid > 0) ::kill(static_cast<pid_t>(pid), sig);
  ::close(fd);
  return 0;
}

// The start byte: the init execs the container's process. 0 when sent, else the errno.
// Released, it is running for whoever asks, as runc and crun answer a start: waiting for
// the exec's outcome would cost the teardown of the init's address space (~2.5 ms here).
// Everything that can be checked ahead (the executable found, the process's security
// applied) was checked before "ready"; an exec that still fails (ENOEXEC, a missing
// interpreter) shows as the container exiting 126/127 with the error in its console and
// exec_errno in its status.
int ReleaseInit(Monitor& m) {
  char go = 1;
  bool sent = mini::WriteAll(m.args.start_fd, &go, 1);
  int err = sent ? 0 : errno;
  ::close(m.args.start_fd);
  m.args.start_fd = -1;
  if (!sent) return err;
  m.starting = true;
  ::clock_gettime(CLOCK_REALTIME, &m.started_at);
  m.has_started_at = true;
  if (!m.init_exited) m.status = Status::kRunning;
  return 0;
}

void HandleStart(Monitor& m, Client& c) {
  if (m.status != Status::kCreated || m.starting || m.args.start_fd < 0) {
    ReplyErr(c, EBUSY, "the container is not in state created");
    return;
  }
  if (int err = ReleaseInit(m); err != 0) {
    ReplyErr(c, err, "release the container process");
    return;
  }
  // The answer first: the process is released whatever the write gives, and status.json
  // is read only once this monitor is gone (pause and resume save it the same way).
  ReplyOk(c);
  SaveStatus(m);
}

void HandleKill(Monitor& m, Client& c, char* sig_text, char* mode) {
  unsigned long long sig;
  if (sig_text == nullptr || !mini::ParseUnsigned(sig_text, 64, &sig)) {
    ReplyErr(c, EINVAL, "kill wants a signal number from 0 to 64");
    return;
  }
  const bool all = mode != nullptr && mini::StrEq(mode, "all");
  if (mode != nullptr && !all) {
    ReplyErr(c, EINVAL, "kill takes <sig> [all]");
    return;
  }
  if (m.init_exited) {
    ReplyErr(c, ESRCH, "the container has exited");
    return;
  }
  int err = 0;
  if (all) {
    err = m.args.cgroup_procs == nullptr ? EOPNOTSUPP
                                         : SignalCgroup(m.args.cgroup_procs, static_cast<int>(sig));
  } else if (::kill(m.args.init_pid, static_cast<int>(sig)) != 0) {
    err = errno;
  }
  if (err != 0) {
    ReplyErr(c, err, all ? "signal the cgroup's processes" : "signal the container process");
    return;
  }
  // Frozen tasks take a SIGKILL only once thawed.
  if (sig == SIGKILL && m.status == Status::kPaused) {
    SetFrozen(m.freezer_kind, m.args.freezer, false, kFreezeTimeoutMs);
    m.status = Status::kRunning;
    SaveStatus(m);
  }
  ReplyOk(c);
}

void HandleFreeze(Monitor& m, Client& c, bool freeze) {
  if (m.freezer_kind == FreezerKind::kNone) {
    ReplyErr(c, EOPNOTSUPP, "the monitor was started without --freezer");
    return;
  }
  const Status from = freeze ? Status::kRunning : Status::kPaused;
  if (m.status != from) {
    ReplyErr(c, EBUSY, freeze ? "the container is not running" : "the container is not paused");
    return;
  }
  int err = SetFrozen(m.freezer_kind, m.args.freezer, freeze, kFreezeTimeoutMs);
  if (err != 0) {
    ReplyErr(c, err, freeze ? "freeze the cgroup" : "thaw the cgroup");
    return;
  }
  m.status = freeze ? Status::kPaused : Status::kRunning;
  SaveStatus(m);
  ReplyOk(c);
}

void HandleRequest(Monitor& m, Client& c, char* req) {
  // Split into at most three words.
  char* words[3] = {nullptr, nullptr, nullptr};
  int count = 0;
  for (char* p = req; *p != '\0';) {
    while (*p == ' ' || *p == '\n') *p++ = '\0';
    if (*p == '\0') break;
    if (count == 3) {
      ReplyErr(c, EINVAL, "too many words in the request");
      return;
    }
    words[count++] = p;
    while (*p != '\0' && *p != ' ' && *p != '\n') ++p;
  }
  const char* verb = words[0] != nullptr ? words[0] : "";
  const bool one_word = count == 1;
  if (mini::StrEq(verb, "state") && one_word) {
    ReplyStatus(c, m);
  } else if (mini::StrEq(verb, "start") && one_word) {
    HandleStart(m, c);
  } else if (mini::StrEq(verb, "kill") && count >= 2) {
    HandleKill(m, c, words[1], words[2]);
  } else if (mini::StrEq(verb, "pause") && one_word) {
    HandleFreeze(m, c, true);
  } else if (mini::StrEq(verb, "resume") && one_word) {
    HandleFreeze(m, c, false);
  } else if (mini::StrEq(verb, "wait") && one_word) {
    c.waiting = true;  // answered in Finish()
  } else {
    ReplyErr(c, EINVAL, "unknown request");
  }
}

void OnClientReadable(Monitor& m, Client& c) {
  char req[256];
  ssize_t n;
  do {
    n = ::recv(c.fd, req, sizeof req - 1, MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) return;
  if (n <= 0) {
    CloseClient(c);
    return;
  }
  req[n] = '\0';
  HandleRequest(m, c, req);
}

void OnListenReadable(Monitor& m) {
  for (;;) {
    int fd = ::accept4(m.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    Client* slot = nullptr;
    for (Client& c : m.clients) {
      if (c.fd < 0) {
        slot = &c;
        break;
      }
    }
    if (slot == nullptr) {
      Client overflow;
      overflow.fd = fd;
      ReplyErr(overflow, EMFILE, "too many monitor clients");
      ::close(fd);
      continue;
    }
    slot->fd = fd;
  }
}

// ---- setup and the loop ----------------------------------------------------------------

// nullptr on success, else the step that failed (errno says why).
const char* Setup(Monitor& m) {
  // The monitor must outlive whoever sends it a stray SIGTERM or SIGINT (the container
  // stops only through "kill"), and a client that hangs up must not end it with SIGPIPE.
  ::signal(SIGTERM, SIG_IGN);
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGCHLD, SIG_DFL);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  if (::sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) return "sigprocmask";
  m.signal_fd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (m.signal_fd < 0) return "signalfd";
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return "prctl(PR_SET_CHILD_SUBREAPER)";
  // Only a parent can reap; a monitor that is not the init's parent would wait for ever.
  siginfo_t info;
  if (::waitid(P_PID, static_cast<id_t>(m.args.init_pid), &info, WEXITED | WNOHANG | WNOWAIT) !=
      0) {
    return "waitid on the init (it must be the monitor's child)";
  }

  // The creator's stdio (a journal pipe, a terminal) must not be held for the container's
  // whole life; the monitor never writes to it.
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return "open /dev/null";
  for (int std_fd = 0; std_fd <= 2; ++std_fd) {
    const Args& a = m.args;
    bool ours = std_fd == a.start_fd || std_fd == a.exec_err_fd || std_fd == a.ready_fd ||
                std_fd == a.console_fd || std_fd == a.init_sync_fd || std_fd == null_fd;
    if (!ours) ::dup2(null_fd, std_fd);
  }
  if (null_fd > 2) ::close(null_fd);

  if (::chdir(m.args.state_dir) != 0) return "chdir to the state dir";
  m.dir_fd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (m.dir_fd < 0) return "open the state dir";

  for (int fd : {m.args.start_fd, m.args.exec_err_fd, m.args.ready_fd, m.args.console_fd,
                 m.args.init_sync_fd}) {
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::fcntl(m.args.exec_err_fd, F_SETFL, O_NONBLOCK);
  if (m.args.console_fd >= 0) {
    ::fcntl(m.args.console_fd, F_SETFL, O_NONBLOCK);
    if (OpenLog(m) != 0) return "open console.log";
  }

  // Bound relative to the state dir, so its length does not count against sun_path.
  m.listen_fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (m.listen_fd < 0) return "socket";
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, kSocketName, mini::StrLen(kSocketName) + 1);
  ::unlink(kSocketName);
  mode_t old_mask = ::umask(0177);
  int rc = ::bind(m.listen_fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  ::umask(old_mask);
  if (rc != 0) return "bind monitor.sock";
  if (::chmod(kSocketName, 0600) != 0) return "chmod monitor.sock";
  if (::listen(m.listen_fd, 16) != 0) return "listen";

  // The init may have died before the signalfd existed; its SIGCHLD would be lost.
  ReapChildren(m);
  errno = SaveStatus(m);
  if (errno != 0) return "write status.json";
  return nullptr;
}

void Finish(Monitor& m) {
  if (m.args.console_fd >= 0) DrainConsole(m);
  // An init that died before its exec result was read: the pipe has the answer now.
  if (m.starting && m.args.exec_err_fd >= 0) OnExecErr(m);
  SaveStatus(m);
  // No new client can find the socket once it is gone; those already queued or connected
  // still get their answer (a "wait" the final status, a "kill" ESRCH).
  ::unlink(kSocketName);
  OnListenReadable(m);
  for (Client& c : m.clients) {
    if (c.fd >= 0 && !c.waiting) OnClientReadable(m, c);
  }
  for (Client& c : m.clients) {
    if (c.fd < 0) continue;
    if (c.waiting) ReplyStatus(c, m);
  }
  for (Client& c : m.clients) {
    if (c.fd >= 0) CloseClient(c);
  }
}

void Loop(Monitor& m) {
  enum Source { kListen, kSignal, kConsole, kExecErr, kClient };
  struct pollfd fds[4 + kMaxClients];
  Source source[4 + kMaxClients];
  Client* owner[4 + kMaxClients];
  for (;;) {
    nfds_t n = 0;
    auto add = [&](int fd, short events, Source s, Client* c) {
      fds[n] = {fd, events, 0};
      source[n] = s;
      owner[n] = c;
      ++n;
    };
    add(m.listen_fd, POLLIN, kListen, nullptr);
    add(m.signal_fd, POLLIN, kSignal, nullptr);
    if (m.args.console_fd >= 0) add(m.args.console_fd, POLLIN, kConsole, nullptr);
    if (m.starting) add(m.args.exec_err_fd, POLLIN, kExecErr, nullptr);
    for (Client& c : m.clients) {
      // A client with an answer pending is only watched for hanging up.
      if (c.fd >= 0) add(c.fd, c.waiting ? 0 : POLLIN, kClient, &c);
    }
    int timeout = -1;
    if (m.init_exited) {
      long long left = m.drain_deadline_ms - mini::MonotonicMs();
      if (m.args.console_fd < 0 || left <= 0) return;
      timeout = static_cast<int>(left);
    }
    int ready = ::poll(fds, n, timeout);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid fds; finishing beats spinning
    }
    // Exec results before exits, so a failed exec is known when the init's exit is seen.
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (source[i] == kExecErr && m.starting) OnExecErr(m);
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      switch (source[i]) {
        case kSignal:
          OnSignal(m);
          break;
        case kConsole:
          if (m.args.console_fd >= 0) DrainConsole(m);
          break;
        case kListen:
          OnListenReadable(m);
          break;
        case kClient:
          if (owner[i]->fd < 0) break;
          // A request sent just before hanging up is still served (its reply is lost).
          if (fds[i].revents & POLLIN) {
            OnClientReadable(m, *owner[i]);
          } else {
            CloseClient(*owner[i]);
          }
          break;
        case kExecErr:
          break;
      }
    }
  }
}

// The init sets up its root while this monitor starts (they overlap: the exec of the
// monitor costs as much as the init's mounts). Its one line says how that went:
// "ready\n", or "err <message>\n" which becomes the create's error. nullptr when ready;
// else the message (in `line`), or a step name for a lost init.
const char* AwaitInit(int sync_fd, FixedText<1024>& line) {
  char c;
  for (;;) {
    ssize_t n = ::read(sync_fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    line.AddChar(c);
  }
  ::close(sync_fd);
  if (mini::StrEq(line.c_str(), "ready")) return nullptr;
  const char* text = line.c_str();
  if (text[0] == 'e' && text[1] == 'r' && text[2] == 'r' && text[3] == ' ') return text + 4;
  errno = 0;
  return "the container init exited during setup";
}

void Report(int ready_fd, const char* what, int err) {
  if (ready_fd < 0) return;
  FixedText<512> line;
  line.Add("err ").Add(what);
  if (err != 0) line.Add(": ").Add(strerrordesc_np(err) ? strerrordesc_np(err) : "error");
  line.AddChar('\n');
  mini::WriteAll(ready_fd, line.c_str(), line.size());
  ::close(ready_fd);
}

// ---- shells ----------------------------------------------------------------------------
// A shell's monitor (runtime/linux/shell.h) is exec'd before its container exists, as
//   berth-monitor --shell-claim-fd N --init-pid P --init-sync-fd S
// and waits on N for its claim: one message whose data is the rest of its arguments
// (NUL-separated words, as argv), with the descriptors start, exec-err, ready and, when
// there is a console, console (SCM_RIGHTS, in that order; shell_internal.h). EOF first: the
// shell is discarded.

constexpr int kMaxClaimWords = 32;
char g_claim_text[8192];
char* g_claim_argv[kMaxClaimWords + 16];
char g_fd_text[4][16];
int g_claim_fds[4] = {-1, -1, -1, -1};

int ClaimedReadyFd() { return g_claim_fds[2]; }

void FormatFd(int fd, char* out) {
  char rev[16];
  int n = 0;
  do {
    rev[n++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0 && n < 15);
  for (int i = 0; i < n; ++i) out[i] = rev[n - 1 - i];
  out[n] = '\0';
}

// A claimed shell's monitor shows the command line a cold create's would have (ps,
// pgrep --state-dir, leak checks), not the one it was exec'd with before its container
// existed. Written over its own argv, which M padded with empty words for the room
// (PR_SET_MM would need CAP_SYS_RESOURCE); left as it is when it does not fit.
void ShowClaimedCommandLine(char* area, size_t room, int argc, char** argv) {
  size_t len = 0;
  for (int i = 0; i < argc; ++i) len += mini::StrLen(argv[i]) + 1;
  if (area == nullptr || len > room) return;
  char* out = area;
  for (int i = 0; i < argc; ++i) {
    size_t n = mini::StrLen(argv[i]) + 1;
    memmove(out, argv[i], n);
    out += n;
  }
  memset(out, 0, room - len);
}

// Not a shell: nullptr, argv untouched. A claimed shell: nullptr, *argc/*argv replaced by
// the shell's own arguments plus the claim's. Else what went wrong ("discarded": EOF).
const char* AwaitClaim(int* argc, char*** argv, int* claim_fd, pid_t* init_pid) {
  if (*argc < 3 || !mini::StrEq((*argv)[1], "--shell-claim-fd")) return nullptr;
  unsigned long long v;
  if (!mini::ParseUnsigned((*argv)[2], INT_MAX, &v)) return "bad --shell-claim-fd";
  *claim_fd = static_cast<int>(v);
  for (int i = 3; i + 1 < *argc; i += 2) {
    if (mini::StrEq((*argv)[i], "--init-pid") && mini::ParseUnsigned((*argv)[i + 1], INT_MAX, &v)) {
      *init_pid = static_cast<pid_t>(v);
    }
  }
  if (*init_pid <= 0) return "--shell-claim-fd needs --init-pid";

  // Touched now, while waiting: a first touch is a fault, which traps to the hypervisor on
  // a paravirtualized guest, and the claimed monitor's work is on its container's spawn.
  for (size_t i = 0; i < sizeof g_io_buffer; i += 4096) g_io_buffer[i] = 0;
  {
    volatile char* bytes = reinterpret_cast<volatile char*>(&g_monitor);
    for (size_t i = 0; i < sizeof g_monitor; i += 4096) bytes[i] = bytes[i];
  }
  unsigned long long len = 0;
  struct iovec iov = {&len, sizeof len};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(*claim_fd, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return "discarded";
  int nfds = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    nfds = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    if (nfds > 4) nfds = 4;
    memcpy(g_claim_fds, CMSG_DATA(c), sizeof(int) * static_cast<size_t>(nfds));
  }
  if (n != sizeof len || (msg.msg_flags & MSG_CTRUNC) != 0 || nfds < 3) return "bad shell claim";
  // Claimed: from here the monitor lives for its container, whatever becomes of its maker.
  ::prctl(PR_SET_PDEATHSIG, 0);
  if (len >= sizeof g_claim_text) return "shell claim too long";
  size_t got = 0;
  while (got < len) {
    ssize_t r = ::read(*claim_fd, g_claim_text + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return "truncated shell claim";
    got += static_cast<size_t>(r);
  }
  g_claim_text[len] = '\0';
  ::close(*claim_fd);

  // The exec'd command line's bytes, rewritten below once the words are copied out of it.
  char* area = (*argv)[0];
  char* last = (*argv)[*argc - 1];
  const size_t room = static_cast<size_t>(last + mini::StrLen(last) + 1 - area);
  // argv: our own words but --shell-claim-fd and the padding, the claim's words, then the
  // descriptors. Ours are copied: their bytes are about to be overwritten.
  static char own_words[512];
  size_t own_len = 0;
  int out = 0;
  for (int i = 0; i < *argc && out < kMaxClaimWords; ++i) {
    if ((i == 1 || i == 2) || (*argv)[i][0] == '\0') continue;
    size_t n = mini::StrLen((*argv)[i]) + 1;
    if (own_len + n > sizeof own_words) return "shell arguments too long";
    memcpy(own_words + own_len, (*argv)[i], n);
    g_claim_argv[out++] = own_words + own_len;
    own_len += n;
  }
  for (size_t i = 0; i < len && out < kMaxClaimWords; i += mini::StrLen(g_claim_text + i) + 1) {
    g_claim_argv[out++] = g_claim_text + i;
  }
  static const char* const kFdFlags[4] = {"--start-fd", "--exec-err-fd", "--ready-fd",
                                          "--console-fd"};
  for (int i = 0; i < nfds; ++i) {
    FormatFd(g_claim_fds[i], g_fd_text[i]);
    g_claim_argv[out++] = const_cast<char*>(kFdFlags[i]);
    g_claim_argv[out++] = g_fd_text[i];
  }
  g_claim_argv[out] = nullptr;
  *argc = out;
  *argv = g_claim_argv;
  ShowClaimedCommandLine(area, room, out, g_claim_argv);
  return nullptr;
}

}  // namespace
}  // namespace berth::monitor

int main(int argc, char** argv) {
  using namespace berth::monitor;
  Monitor& m = g_monitor;
  int claim_fd = -1;
  pid_t shell_init = 0;
  if (const char* bad = AwaitClaim(&argc, &argv, &claim_fd, &shell_init)) {
    // Unclaimed (the maker hung up) or a claim that cannot be read: the shell ends.
    if (mini::StrEq(bad, "discarded")) {
      ::kill(shell_init, SIGKILL);
      ::waitpid(shell_init, nullptr, 0);
      return 0;
    }
    Report(claim_fd >= 0 ? ClaimedReadyFd() : -1, bad, 0);
    ::kill(shell_init, SIGKILL);
    ::waitpid(shell_init, nullptr, 0);
    return 2;
  }
  if (const char* bad = ParseArgs(argc, argv, &m.args)) {
    Report(m.args.ready_fd, bad, 0);
    // Nothing else can reap or release the init this monitor was given.
    if (m.args.init_pid > 0) {
      ::kill(m.args.init_pid, SIGKILL);
      ::waitpid(m.args.init_pid, nullptr, 0);
    }
    return 2;
  }
  if (m.args.freezer != nullptr) m.freezer_kind = FreezerKindFor(m.args.freezer);
  if (const char* failed = Setup(m)) {
    Report(m.args.ready_fd, failed, errno);
    ::kill(m.args.init_pid, SIGKILL);
    ::waitpid(m.args.init_pid, nullptr, 0);
    ::unlink(kSocketName);
    return 1;
  }
  if (m.args.init_sync_fd >= 0) {
    FixedText<1024> line;
    if (const char* failed = AwaitInit(m.args.init_sync_fd, line)) {
      Report(m.args.ready_fd, failed, 0);
      ::kill(m.args.init_pid, SIGKILL);
      ::waitpid(m.args.init_pid, nullptr, 0);
      ::unlink(kSocketName);
      return 1;
    }
    m.args.init_sync_fd = -1;
  }
  const bool started = m.args.start_when_ready;
  if (started) {
    if (int err = ReleaseInit(m); err != 0) {
      Report(m.args.ready_fd, "release the container process", err);
      ::kill(m.args.init_pid, SIGKILL);
      ::waitpid(m.args.init_pid, nullptr, 0);
      ::unlink(kSocketName);
      return 1;
    }
  }
  if (m.args.ready_fd >= 0) {
    mini::WriteAll(m.args.ready_fd, "ok\n", 3);
    ::close(m.args.ready_fd);
    m.args.ready_fd = -1;
  }
  if (started) SaveStatus(m);
  Loop(m);
  Finish(m);
  return 0;
}
