#include "runtime/monitor/launch.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "runtime/common/error.h"

extern char** environ;

namespace berth::monitor {

namespace {

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

void FormatInt(long long v, std::array<char, 24>& out) {
  char digits[24];
  int n = 0;
  unsigned long long u = v < 0 ? 0ull - static_cast<unsigned long long>(v) : v;
  do {
    digits[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  int pos = 0;
  if (v < 0) out[pos++] = '-';
  while (n > 0) out[pos++] = digits[--n];
  out[pos] = '\0';
}

void WriteString(int fd, const char* s) {
  if (fd >= 0 && s != nullptr) (void)!::write(fd, s, std::strlen(s));
}

}  // namespace

std::string FindMonitorBinary() {
  if (const char* env = std::getenv("BERTH_MONITOR"); env != nullptr && *env != '\0') {
    if (!IsExecutable(env)) {
      throw Error(ErrorKind::kNotFound, std::string("BERTH_MONITOR ") + env + " is not executable");
    }
    return env;
  }
  char self[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir.resize(dir.rfind('/') + 1);
    if (IsExecutable(dir + "berth-monitor")) return dir + "berth-monitor";
    // An installed tree: <prefix>/bin/berthd and <prefix>/libexec/berth/berth-monitor.
    if (IsExecutable(dir + "../libexec/berth/berth-monitor")) {
      return dir + "../libexec/berth/berth-monitor";
    }
  }
#ifdef BERTH_MONITOR_BUILD_PATH
  if (IsExecutable(BERTH_MONITOR_BUILD_PATH)) return BERTH_MONITOR_BUILD_PATH;
#endif
  throw Error(ErrorKind::kNotFound,
              "berth-monitor not found (set BERTH_MONITOR or install it beside the executable)");
}

MonitorCommand::MonitorCommand(const MonitorArgs& args, std::string binary)
    : binary_(std::move(binary)) {
  if (args.state_dir.empty()) throw Error(ErrorKind::kInvalidArgument, "monitor: no state dir");
  // Pointers into words_ are taken only once it is complete, so it never reallocates.
  std::vector<std::pair<std::string, std::string>> named = {
      {"--state-dir", args.state_dir},
      {"--console-max", std::to_string(args.console_max)},
  };
  if (!args.freezer.empty()) named.emplace_back("--freezer", args.freezer);
  if (!args.cgroup_procs.empty()) named.emplace_back("--cgroup-procs", args.cgroup_procs);
  if (!args.oom_file.empty()) named.emplace_back("--oom-file", args.oom_file);
  if (args.start_when_ready) named.emplace_back("--start-when-ready", "1");
  words_.push_back(binary_);
  for (auto& [flag, value] : named) {
    words_.push_back(flag);
    words_.push_back(value);
  }
  static constexpr const char* kSlotFlags[kSlotCount] = {
      "--init-pid", "--start-fd", "--exec-err-fd", "--ready-fd", "--init-sync-fd", "--console-fd"};
  for (const char* flag : kSlotFlags) words_.push_back(flag);

  const size_t fixed = words_.size() - kSlotCount;
  for (size_t i = 0; i < fixed; ++i) argv_.push_back(words_[i].data());
  for (int s = 0; s < kSlotCount; ++s) {
    if (s == kConsoleFd) console_flag_index_ = static_cast<int>(argv_.size());
    argv_.push_back(words_[fixed + s].data());
    argv_.push_back(slots_[s].data());
  }
  argv_.push_back(nullptr);
}

void MonitorCommand::Exec(const MonitorFds& fds) noexcept {
  FormatInt(fds.init_pid, slots_[kInitPid]);
  FormatInt(fds.start_fd, slots_[kStartFd]);
  FormatInt(fds.exec_err_fd, slots_[kExecErrFd]);
  FormatInt(fds.ready_fd, slots_[kReadyFd]);
  FormatInt(fds.init_sync_fd, slots_[kInitSyncFd]);
  FormatInt(fds.console_fd, slots_[kConsoleFd]);
  // --console-fd comes last, so no console means ending argv before it.
  if (fds.console_fd < 0) argv_[console_flag_index_] = nullptr;

  // Whatever the creator had open must not live on in the monitor for the container's life.
  ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
  for (int fd : {fds.start_fd, fds.exec_err_fd, fds.ready_fd, fds.console_fd, fds.init_sync_fd}) {
    if (fd >= 0) ::fcntl(fd, F_SETFD, 0);
  }
  ::execve(binary_.c_str(), argv_.data(), environ);
  const int err = errno;
  WriteString(fds.ready_fd, "err exec berth-monitor: ");
  WriteString(fds.ready_fd, strerrordesc_np(err));
  WriteString(fds.ready_fd, "\n");
  ::_exit(127);
}

std::string MonitorClaimWords(const MonitorArgs& args) {
  std::string out;
  auto add = [&out](const char* flag, const std::string& value) {
    if (value.empty()) return;
    out.append(flag).push_back('\0');
    out.append(value).push_back('\0');
  };
  add("--state-dir", args.state_dir);
  add("--console-max", std::to_string(args.console_max));
  add("--freezer", args.freezer);
  add("--cgroup-procs", args.cgroup_procs);
  add("--oom-file", args.oom_file);
  if (args.start_when_ready) add("--start-when-ready", "1");
  return out;
}

void ExecMonitor(const MonitorArgs& args, const MonitorFds& fds) {
  // Deliberately leaked: Exec either replaces the process or exits it.
  auto* command = new MonitorCommand(args);
  command->Exec(fds);
}

}  // namespace berth::monitor
