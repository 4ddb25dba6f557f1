#include "runtime/monitor/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <rapidjson/document.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/monitor/protocol.h"

namespace berth::monitor {

std::string_view MonitorStateName(MonitorState state) {
  switch (state) {
    case MonitorState::kCreated:
      return "created";
    case MonitorState::kRunning:
      return "running";
    case MonitorState::kPaused:
      return "paused";
    case MonitorState::kStopped:
      return "stopped";
  }
  return "unknown";
}

std::optional<int> MonitorStatus::ShellExitCode() const {
  if (state != MonitorState::kStopped) return std::nullopt;
  if (exit_code) return exit_code;
  if (exit_signal) return 128 + *exit_signal;
  return std::nullopt;
}

namespace {

Error BadStatus(std::string_view why) {
  return Error(ErrorKind::kInvalidArgument, "monitor status: " + std::string(why));
}

std::optional<int> OptionalInt(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return std::nullopt;
  if (!it->value.IsInt()) throw BadStatus(std::string(key) + " is not an integer");
  return it->value.GetInt();
}

std::optional<std::string> OptionalString(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return std::nullopt;
  if (!it->value.IsString()) throw BadStatus(std::string(key) + " is not a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

const rapidjson::Value& Required(const rapidjson::Value& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) throw BadStatus(std::string("missing ") + key);
  return it->value;
}

MonitorState ParseState(const rapidjson::Value& v) {
  if (!v.IsString()) throw BadStatus("status is not a string");
  std::string_view s(v.GetString(), v.GetStringLength());
  for (MonitorState state : {MonitorState::kCreated, MonitorState::kRunning, MonitorState::kPaused,
                             MonitorState::kStopped}) {
    if (s == MonitorStateName(state)) return state;
  }
  throw BadStatus("unknown status \"" + std::string(s) + "\"");
}

}  // namespace

MonitorStatus ParseStatus(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) throw BadStatus("not valid JSON");
  if (!doc.IsObject()) throw BadStatus("not a JSON object");
  MonitorStatus st;
  st.state = ParseState(Required(doc, "status"));
  const auto& pid = Required(doc, "pid");
  if (!pid.IsInt() || pid.GetInt() <= 0) throw BadStatus("pid is not a positive integer");
  st.pid = pid.GetInt();
  st.started_at = OptionalString(doc, "started_at");
  st.finished_at = OptionalString(doc, "finished_at");
  st.exit_code = OptionalInt(doc, "exit_code");
  st.exit_signal = OptionalInt(doc, "exit_signal");
  st.exec_errno = OptionalInt(doc, "exec_errno");
  const auto& oom_killed = Required(doc, "oom_killed");
  if (!oom_killed.IsBool()) throw BadStatus("oom_killed is not a boolean");
  st.oom_killed = oom_killed.GetBool();
  const auto& oom_kills = Required(doc, "oom_kills");
  if (!oom_kills.IsUint64()) throw BadStatus("oom_kills is not a count");
  st.oom_kills = oom_kills.GetUint64();
  if (st.exit_code && st.exit_signal) throw BadStatus("both exit_code and exit_signal");
  if (st.state == MonitorState::kStopped && !st.exit_code && !st.exit_signal) {
    throw BadStatus("stopped without exit_code or exit_signal");
  }
  return st;
}

std::optional<MonitorStatus> ReadStatusFile(const std::string& state_dir) {
  const std::string path = JoinPath(state_dir, kStatusFile);
  auto text = ReadFileIfExists(path);
  if (!text) return std::nullopt;
  return WithContext(path, [&] { return ParseStatus(*text); });
}

std::string ParseReply(std::string_view request, std::string_view reply) {
  if (reply == "ok") return {};
  if (reply.starts_with("ok ")) return std::string(reply.substr(3));
  if (reply.starts_with("err ")) {
    std::string_view rest = reply.substr(4);
    int err = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), err);
    if (ec == std::errc() && err > 0) {
      std::string_view message = rest.substr(static_cast<size_t>(end - rest.data()));
      if (message.starts_with(' ')) message.remove_prefix(1);
      // The kind follows the errno, as for any failed system call.
      ErrorKind kind = Error::FromErrno("", "", err).kind();
      throw Error(kind,
                  "monitor " + std::string(request) + ": " + std::string(message) + " (" +
                      ErrnoName(err) + ")",
                  err);
    }
  }
  throw Error(ErrorKind::kInternal, "monitor " + std::string(request) + ": malformed reply \"" +
                                        std::string(reply) + "\"");
}

namespace {

UniqueFd Connect(const std::string& state_dir) {
  const std::string path = JoinPath(state_dir, kSocketName);
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) ThrowErrno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // A state dir too deep for sun_path is reached through a descriptor of it.
  UniqueFd dir;
  std::string target = path;
  if (target.size() >= sizeof addr.sun_path) {
    dir.reset(::open(state_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
      throw Error(ErrorKind::kNotFound, "monitor not running: no state dir " + state_dir, errno);
    }
    target = "/proc/self/fd/" + std::to_string(dir.get()) + "/" + kSocketName;
  }
  std::memcpy(addr.sun_path, target.c_str(), target.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTDIR) {
      throw Error(ErrorKind::kNotFound, "monitor not running: connect " + path, err);
    }
    ThrowErrnoValue(err, "connect", path);
  }
  return fd;
}

long long NowMs() {
  timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

std::string MonitorClient::Request(const std::string& state_dir, std::string_view request,
                                   int timeout_ms) {
  UniqueFd fd = Connect(state_dir);
  const std::string sock = JoinPath(state_dir, kSocketName);
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) < 0) {
    int err = errno;
    if (err == EPIPE || err == ECONNRESET) {
      throw Error(ErrorKind::kNotFound, "monitor not running: send to " + sock, err);
    }
    ThrowErrnoValue(err, "send", sock);
  }
  const long long deadline = timeout_ms < 0 ? -1 : NowMs() + timeout_ms;
  for (;;) {
    int wait_ms = -1;
    if (deadline >= 0) wait_ms = static_cast<int>(std::max(0LL, deadline - NowMs()));
    pollfd pfd{fd.get(), POLLIN, 0};
    int ready = ::poll(&pfd, 1, wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("poll", sock);
    }
    if (ready == 0) {
      throw Error::FromErrno("monitor " + std::string(request), sock, ETIMEDOUT);
    }
    break;
  }
  char buf[8192];
  ssize_t n;
  do {
    n = ::recv(fd.get(), buf, sizeof buf, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ECONNRESET) {
    // The monitor exited with this request still queued.
    throw Error(ErrorKind::kNotFound, "monitor not running: it exited before answering", errno);
  }
  if (n < 0) ThrowErrno("recv", sock);
  if (n == 0) {
    throw Error(ErrorKind::kSystem,
                "monitor " + std::string(request) + ": the monitor closed the connection");
  }
  return ParseReply(request, std::string_view(buf, static_cast<size_t>(n)));
}

MonitorStatus MonitorClient::State(const std::string& state_dir, int timeout_ms) {
  return ParseStatus(Request(state_dir, "state", timeout_ms));
}

void MonitorClient::Start(const std::string& state_dir, int timeout_ms) {
  Request(state_dir, "start", timeout_ms);
}

void MonitorClient::Kill(const std::string& state_dir, int sig, bool all, int timeout_ms) {
  std::string req = "kill " + std::to_string(sig);
  if (all) req += " all";
  Request(state_dir, req, timeout_ms);
}

void MonitorClient::Pause(const std::string& state_dir, int timeout_ms) {
  Request(state_dir, "pause", timeout_ms);
}

void MonitorClient::Resume(const std::string& state_dir, int timeout_ms) {
  Request(state_dir, "resume", timeout_ms);
}

MonitorStatus MonitorClient::Wait(const std::string& state_dir, int timeout_ms) {
  try {
    return ParseStatus(Request(state_dir, "wait", timeout_ms));
  } catch (const Error& e) {
    // A monitor that is gone has recorded the exit before it left.
    if (e.kind() != ErrorKind::kNotFound) throw;
    auto st = ReadStatusFile(state_dir);
    if (!st || st->state != MonitorState::kStopped) throw;
    return *st;
  }
}

}  // namespace berth::monitor
