// Talking to a running berth-monitor (see protocol.h) and reading what it records.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::monitor {

enum class MonitorState { kCreated, kRunning, kPaused, kStopped };

std::string_view MonitorStateName(MonitorState state);

// status.json, and the payload of the "state" and "wait" replies.
struct MonitorStatus {
  MonitorState state = MonitorState::kCreated;
  int pid = 0;
  std::optional<std::string> started_at;   // RFC 3339, UTC
  std::optional<std::string> finished_at;  // RFC 3339, UTC
  std::optional<int> exit_code;            // the init exited
  std::optional<int> exit_signal;          // the init was killed by this signal
  std::optional<int> exec_errno;           // the init's execve failed with this errno
  bool oom_killed = false;
  std::uint64_t oom_kills = 0;

  // exit_code, or 128 + exit_signal as shells report it; nullopt while not stopped.
  std::optional<int> ShellExitCode() const;
};

// Validates the shape (kInvalidArgument on anything else) and returns the record.
MonitorStatus ParseStatus(std::string_view json);

// <state_dir>/status.json, or nullopt when it does not exist.
std::optional<MonitorStatus> ReadStatusFile(const std::string& state_dir);

// The payload of an "ok[ payload]" reply; an "err <errno> <message>" reply becomes a
// berth::Error whose kind follows the errno. `request` names the call in the message.
std::string ParseReply(std::string_view request, std::string_view reply);

class MonitorClient {
 public:
  static constexpr int kDefaultTimeoutMs = 10000;

  // One request, one reply; timeout_ms < 0 waits for ever. Throws berth::Error: kNotFound
  // "monitor not running" when nothing listens on the socket, the errno's kind for an
  // "err" reply, ETIMEDOUT when no reply comes in time.
  static std::string Request(const std::string& state_dir, std::string_view request,
                             int timeout_ms = kDefaultTimeoutMs);

  static MonitorStatus State(const std::string& state_dir, int timeout_ms = kDefaultTimeoutMs);
  // Returns once the container process has exec'd; throws when the exec failed.
  static void Start(const std::string& state_dir, int timeout_ms = kDefaultTimeoutMs);
  // `all`: every process of the container's cgroup, not only its init.
  static void Kill(const std::string& state_dir, int sig, bool all = false,
                   int timeout_ms = kDefaultTimeoutMs);
  static void Pause(const std::string& state_dir, int timeout_ms = kDefaultTimeoutMs);
  static void Resume(const std::string& state_dir, int timeout_ms = kDefaultTimeoutMs);
  // Blocks until the init has exited (or the timeout) and returns the final status; when
  // the monitor has already exited, the status it recorded in status.json.
  static MonitorStatus Wait(const std::string& state_dir, int timeout_ms = -1);
};

}  // namespace berth::monitor
