#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"

namespace berth::cgroup::internal {

namespace {

std::string ErrnoText(int err) {
  std::string out = ErrnoName(err);
  if (const char* desc = strerrordesc_np(err)) {
    out += " (";
    out += desc;
    out += ')';
  }
  return out;
}

ErrorKind KindForWriteErrno(int err) {
  switch (err) {
    case EINVAL:
    case EBUSY:
    case ERANGE:
    case EOVERFLOW:
      return ErrorKind::kInvalidArgument;
    case ENOENT:
      return ErrorKind::kUnsupported;
    default:
      return Error::FromErrno("", "", err).kind();
  }
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  return s;
}

}  // namespace

void WriteCgroupFile(const std::string& dir, const std::string& file, std::string_view value,
                     std::string_view field) {
  std::string path = JoinPath(dir, file);
  auto fail = [&](std::string_view syscall, int err) {
    std::string msg(field);
    msg += ": ";
    msg += syscall;
    if (syscall == "write") {
      msg += ' ';
      msg += value;
      msg += " to";
    }
    msg += ' ';
    msg += path;
    msg += ": ";
    msg += ErrnoText(err);
    ErrorKind kind = KindForWriteErrno(err);
    // A missing file in an existing group is an absent controller; a missing group is not.
    if (err == ENOENT && !PathExists(dir)) kind = ErrorKind::kNotFound;
    throw Error(kind, std::move(msg), err);
  };
  // O_TRUNC is ignored by cgroupfs and keeps seeded test files exact.
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd) fail("open", errno);
  for (;;) {
    ssize_t n = ::write(fd.get(), value.data(), value.size());
    if (n >= 0) {
      // Kernel cgroup files take the value in one write or fail it.
      if (static_cast<size_t>(n) != value.size()) fail("write", EIO);
      return;
    }
    if (errno != EINTR) fail("write", errno);
  }
}

std::optional<std::string> ReadTrimmed(const std::string& path) {
  auto content = ReadFileIfExists(path);
  if (!content) return std::nullopt;
  return std::string(Trim(*content));
}

std::optional<uint64_t> ParseUint(std::string_view text) {
  text = Trim(text);
  uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::map<std::string, uint64_t> ParseKeyValues(std::string_view text) {
  std::map<std::string, uint64_t> out;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    if (auto value = ParseUint(line.substr(space + 1))) {
      out[std::string(line.substr(0, space))] = *value;
    }
  }
  return out;
}

std::map<std::string, uint64_t> ReadKeyValues(const std::string& path) {
  auto content = ReadFileIfExists(path);
  if (!content) return {};
  return ParseKeyValues(*content);
}

std::optional<uint64_t> ReadUint(const std::string& path) {
  auto content = ReadTrimmed(path);
  if (!content) return std::nullopt;
  return ParseUint(*content);
}

std::vector<pid_t> ReadPids(const std::string& path) {
  std::vector<pid_t> pids;
  auto content = ReadFileIfExists(path);
  if (!content) return pids;
  std::string_view text = *content;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    if (auto pid = ParseUint(text.substr(0, eol))) pids.push_back(static_cast<pid_t>(*pid));
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  }
  return pids;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::chrono::microseconds pause{100};
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

void RemoveCgroupDir(const std::string& dir) {
  int err = 0;
  WaitUntil(
      [&] {
        err = ::rmdir(dir.c_str()) == 0 ? 0 : errno;
        if (err == ENOENT) err = 0;
        return err != EBUSY;  // only EBUSY is worth waiting out
      },
      kRmdirTimeout);
  if (err != 0) ThrowErrnoValue(err, "rmdir", dir);
}

void KillPids(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    if (pid <= 0) continue;
    if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) ThrowErrno("kill", std::to_string(pid));
  }
}

std::string NormalizeCgroupPath(const std::string& path) {
  std::string out;
  std::string_view rest = path;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty()) continue;  // leading, trailing or doubled slash
    if (part == "." || part == "..") {
      throw Error(ErrorKind::kInvalidArgument,
                  "linux.cgroupsPath: \"" + path + "\" must not contain '.' or '..'");
    }
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "linux.cgroupsPath: \"" + path + "\" names no group");
  }
  return out;
}

std::string DeviceRuleLine(const spec::DeviceRule& rule, size_t index) {
  std::string field = "linux.resources.devices[" + std::to_string(index) + "]";
  const std::string& type = rule.type.empty() ? std::string("a") : rule.type;
  if (type != "a" && type != "b" && type != "c") {
    throw Error(ErrorKind::kInvalidArgument,
                field + ".type: \"" + rule.type + "\" is not one of a, b, c");
  }
  std::string access = rule.access.empty() ? "rwm" : rule.access;
  if (access.find_first_not_of("rwm") != std::string::npos) {
    throw Error(ErrorKind::kInvalidArgument,
                field + ".access: \"" + rule.access + "\" may hold only r, w and m");
  }
  auto number = [&](const std::optional<int64_t>& n, const char* name) -> std::string {
    if (!n || *n == -1) return "*";
    if (*n < 0 || *n > 0xffffffffLL) {
      throw Error(ErrorKind::kInvalidArgument,
                  field + "." + name + ": " + std::to_string(*n) + " is out of range");
    }
    return std::to_string(*n);
  };
  return type + " " + number(rule.major, "major") + ":" + number(rule.minor, "minor") + " " +
         access;
}

std::vector<FileWrite> PlanV1DeviceWrites(const std::vector<spec::DeviceRule>& rules) {
  // The v1 list is edited in order: "a" to devices.deny clears every exception and denies
  // by default, "a" to devices.allow the reverse; a specific line adds or removes an
  // exception. Applying the spec's rules one by one therefore leaves the last match winning.
  std::vector<FileWrite> writes;
  for (size_t i = 0; i < rules.size(); ++i) {
    writes.push_back(
        {rules[i].allow ? "devices.allow" : "devices.deny", DeviceRuleLine(rules[i], i)});
  }
  return writes;
}

namespace {

// -1 means unlimited; other negative values are errors.
void CheckLimit(int64_t value, const char* field) {
  if (value < -1) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string(field) + ": " + std::to_string(value) + " is negative (-1: unlimited)");
  }
}

Error SwapUnsupported(const char* file) {
  return Error(
      ErrorKind::kUnsupported,
      std::string("linux.resources.memory.swap: swap accounting is off on this host (no ") + file +
          "); only -1 (unlimited) can be honoured");
}

}  // namespace

std::vector<FileWrite> PlanV1MemoryWrites(const spec::MemoryResources& memory,
                                          uint64_t current_limit, bool memsw_available) {
  std::vector<FileWrite> writes;
  std::optional<int64_t> limit = memory.limit;
  std::optional<int64_t> swap = memory.swap;
  if (limit) CheckLimit(*limit, "linux.resources.memory.limit");
  if (swap) CheckLimit(*swap, "linux.resources.memory.swap");
  if (memory.reservation) CheckLimit(*memory.reservation, "linux.resources.memory.reservation");
  if (memory.swappiness && *memory.swappiness > 100) {
    throw Error(ErrorKind::kInvalidArgument,
                "linux.resources.memory.swappiness: " + std::to_string(*memory.swappiness) +
                    " is above 100");
  }
  if (swap && !memsw_available) {
    if (*swap != -1) throw SwapUnsupported("memory.memsw.limit_in_bytes");
    swap.reset();
  }
  if (limit && swap && *limit != -1 && (*swap == -1 ? false : *swap < *limit)) {
    throw Error(ErrorKind::kInvalidArgument,
                "linux.resources.memory.swap: " + std::to_string(*swap) +
                    " is below linux.resources.memory.limit " + std::to_string(*limit) +
                    " (swap counts memory+swap)");
  }
  // Lifting the memory limit to unlimited must lift memory+swap too, or the kernel refuses.
  if (limit && *limit == -1 && !swap && memsw_available) swap = -1;

  auto limit_write = [&] {
    writes.push_back({"memory.limit_in_bytes", std::to_string(limit.value_or(-1))});
  };
  auto swap_write = [&] {
    writes.push_back({"memory.memsw.limit_in_bytes", std::to_string(swap.value_or(-1))});
  };
  if (limit && swap) {
    // memsw first when it rises to the current limit or above, else limit first: either
    // way limit <= memsw holds after each write.
    int64_t new_swap = swap.value_or(-1);
    if (new_swap == -1 || static_cast<uint64_t>(new_swap) >= current_limit) {
      swap_write();
      limit_write();
    } else {
      limit_write();
      swap_write();
    }
  } else if (limit) {
    limit_write();
  } else if (swap) {
    swap_write();
  }
  if (memory.reservation) {
    writes.push_back({"memory.soft_limit_in_bytes", std::to_string(*memory.reservation)});
  }
  if (memory.swappiness) {
    writes.push_back({"memory.swappiness", std::to_string(*memory.swappiness)});
  }
  if (memory.disable_oom_killer) {
    writes.push_back({"memory.oom_control", *memory.disable_oom_killer ? "1" : "0"});
  }
  return writes;
}

std::vector<FileWrite> PlanV2MemoryWrites(const spec::MemoryResources& memory,
                                          bool swap_available) {
  std::vector<FileWrite> writes;
  auto value = [](int64_t v) { return v == -1 ? std::string("max") : std::to_string(v); };
  if (memory.limit) CheckLimit(*memory.limit, "linux.resources.memory.limit");
  if (memory.swap) CheckLimit(*memory.swap, "linux.resources.memory.swap");
  if (memory.reservation) CheckLimit(*memory.reservation, "linux.resources.memory.reservation");
  if (memory.limit) writes.push_back({"memory.max", value(*memory.limit)});
  if (memory.reservation) writes.push_back({"memory.low", value(*memory.reservation)});
  if (memory.swap) {
    int64_t swap = *memory.swap;
    if (!swap_available) {
      if (swap != -1) throw SwapUnsupported("memory.swap.max");
    } else if (swap == -1) {
      writes.push_back({"memory.swap.max", "max"});
    } else {
      if (!memory.limit || *memory.limit == -1) {
        throw Error(ErrorKind::kInvalidArgument,
                    "linux.resources.memory.swap: " + std::to_string(swap) +
                        " needs a finite linux.resources.memory.limit in the same request on "
                        "cgroup v2 (swap counts memory+swap)");
      }
      if (swap < *memory.limit) {
        throw Error(ErrorKind::kInvalidArgument,
                    "linux.resources.memory.swap: " + std::to_string(swap) +
                        " is below linux.resources.memory.limit " + std::to_string(*memory.limit) +
                        " (swap counts memory+swap)");
      }
      writes.push_back({"memory.swap.max", std::to_string(swap - *memory.limit)});
    }
  }
  return writes;
}

std::optional<std::string> PlanV2CpuMax(const spec::CpuResources& cpu,
                                        const std::string& current_cpu_max) {
  if (!cpu.quota && !cpu.period) return std::nullopt;
  std::string quota;
  if (cpu.quota) {
    if (*cpu.quota < -1) {
      throw Error(ErrorKind::kInvalidArgument,
                  "linux.resources.cpu.quota: " + std::to_string(*cpu.quota) +
                      " is negative (-1: unlimited)");
    }
    quota = *cpu.quota == -1 ? "max" : std::to_string(*cpu.quota);
  } else {
    // The kernel wants the quota with a new period: keep the current one.
    std::string_view cur = current_cpu_max;
    quota = std::string(cur.substr(0, cur.find(' ')));
    if (quota.empty()) quota = "max";
  }
  if (!cpu.period) return quota;
  if (*cpu.period == 0) {
    throw Error(ErrorKind::kInvalidArgument, "linux.resources.cpu.period: must not be 0");
  }
  return quota + " " + std::to_string(*cpu.period);
}

std::vector<std::string> PlanV2IoMax(const spec::BlockIoResources& io) {
  // device "MAJ:MIN" -> "rbps=N wbps=N ..." in a fixed key order.
  std::map<std::pair<int64_t, int64_t>, std::map<int, std::string>> per_device;
  auto add = [&](const std::vector<spec::BlockIoDeviceRate>& rates, int order, const char* key) {
    for (const auto& r : rates) {
      per_device[{r.major, r.minor}][order] =
          std::string(key) + "=" + (r.rate == 0 ? std::string("max") : std::to_string(r.rate));
    }
  };
  add(io.throttle_read_bps_device, 0, "rbps");
  add(io.throttle_write_bps_device, 1, "wbps");
  add(io.throttle_read_iops_device, 2, "riops");
  add(io.throttle_write_iops_device, 3, "wiops");
  std::vector<std::string> lines;
  for (const auto& [dev, keys] : per_device) {
    std::string line = std::to_string(dev.first) + ":" + std::to_string(dev.second);
    for (const auto& [order, kv] : keys) line += " " + kv;
    lines.push_back(std::move(line));
  }
  return lines;
}

void ValidateUnifiedKey(const std::string& key) {
  if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
      key.find('\0') != std::string::npos) {
    throw Error(ErrorKind::kInvalidArgument,
                "linux.resources.unified: key \"" + key + "\" must be a plain file name");
  }
}

uint64_t TicksToNs(uint64_t ticks) {
  static const long hz = ::sysconf(_SC_CLK_TCK);
  uint64_t per_tick = 1'000'000'000ULL / static_cast<uint64_t>(hz > 0 ? hz : 100);
  return ticks * per_tick;
}

}  // namespace berth::cgroup::internal
