// The unified hierarchy (cgroup v2): one directory per group, controllers enabled from the
// parents' cgroup.subtree_control, freezing and killing built into every non-root group.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/cgroup/device_filter.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::cgroup {

namespace {

using internal::ReadKeyValues;
using internal::ReadTrimmed;
using internal::ReadUint;
using internal::WriteCgroupFile;

// The controllers a container's limits use, in the order they are enabled.
const std::vector<std::string>& WantedControllers() {
  static const std::vector<std::string> names = {"cpuset", "cpu", "io", "memory", "pids"};
  return names;
}

std::set<std::string> Words(const std::string& text) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of(" \n", pos);
    if (end == std::string::npos) end = text.size();
    std::string word = text.substr(pos, end - pos);
    if (!word.empty() && word[0] == '+') word.erase(0, 1);
    if (!word.empty()) out.insert(word);
    pos = end + 1;
  }
  return out;
}

// Enables in `dir`'s children the wanted controllers that `dir` offers and has not
// enabled yet. All in one write; if the kernel refuses the set (one controller busy),
// each alone, so the others still work. Apply reports the ones still missing, by field.
void EnableControllers(const std::string& dir) {
  auto offered = ReadTrimmed(JoinPath(dir, "cgroup.controllers"));
  if (!offered) return;
  std::set<std::string> available = Words(*offered);
  std::set<std::string> enabled =
      Words(ReadTrimmed(JoinPath(dir, "cgroup.subtree_control")).value_or(""));
  std::vector<std::string> todo;
  for (const auto& c : WantedControllers()) {
    if (available.count(c) && !enabled.count(c)) todo.push_back("+" + c);
  }
  if (todo.empty()) return;
  std::string all;
  for (const auto& t : todo) all += (all.empty() ? "" : " ") + t;
  try {
    WriteCgroupFile(dir, "cgroup.subtree_control", all, "enable controllers");
  } catch (const Error&) {
    for (const auto& t : todo) {
      try {
        WriteCgroupFile(dir, "cgroup.subtree_control", t, "enable controllers");
      } catch (const Error&) {
      }
    }
  }
}

bool EventsSay(const std::string& dir, const char* key, uint64_t value) {
  auto events = ReadKeyValues(JoinPath(dir, "cgroup.events"));
  auto it = events.find(key);
  return it != events.end() && it->second == value;
}

class CgroupV2 : public Cgroup {
 public:
  CgroupV2(const CgroupHost& host, const std::string& path)
      : host_(host),
        path_(internal::NormalizeCgroupPath(path)),
        root_(host.unified_mount.empty() ? host.root : host.unified_mount),
        dir_(JoinPath(root_, path_)) {}

  const std::string& path() const override { return path_; }

  void Create() override {
    WithContext("create cgroup " + dir_, [&] {
      std::string dir = root_;
      std::string_view rest = path_;
      while (!rest.empty()) {
        size_t slash = rest.find('/');
        // The leaf holds processes, so it must not enable controllers for children.
        EnableControllers(dir);
        dir = JoinPath(dir, rest.substr(0, slash));
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) ThrowErrno("mkdir", dir);
      }
    });
  }

  void AddProcess(pid_t pid) override {
    WriteCgroupFile(dir_, "cgroup.procs", std::to_string(pid),
                    "add process " + std::to_string(pid) + " to cgroup");
  }

  void Apply(const spec::Resources& r) override {
    for (const auto& [key, value] : r.unified) internal::ValidateUnifiedKey(key);
    if (!r.devices.empty()) ApplyDevices(r.devices);
    if (r.memory) ApplyMemory(*r.memory);
    if (r.cpu) ApplyCpu(*r.cpu);
    if (r.pids) {
      WriteCgroupFile(dir_, "pids.max", r.pids->limit <= 0 ? "max" : std::to_string(r.pids->limit),
                      "linux.resources.pids.limit");
    }
    if (r.block_io) ApplyIo(*r.block_io);
    // Last, so a raw value overrides what the structured fields wrote.
    for (const auto& [key, value] : r.unified) {
      WriteCgroupFile(dir_, key, value, "linux.resources.unified." + key);
    }
  }

  void Freeze() override {
    WriteCgroupFile(dir_, "cgroup.freeze", "1", "freeze");
    if (!internal::WaitUntil([&] { return EventsSay(dir_, "frozen", 1); },
                             internal::kFreezeTimeout)) {
      throw Error(ErrorKind::kSystem, "freeze " + dir_ + ": cgroup.events did not report " +
                                          "\"frozen 1\" within " +
                                          std::to_string(internal::kFreezeTimeout.count()) + " ms");
    }
  }

  void Thaw() override { WriteCgroupFile(dir_, "cgroup.freeze", "0", "thaw"); }

  FreezerState GetFreezerState() override {
    auto freeze = ReadTrimmed(JoinPath(dir_, "cgroup.freeze"));
    if (!freeze || *freeze == "0") return FreezerState::kThawed;
    return EventsSay(dir_, "frozen", 1) ? FreezerState::kFrozen : FreezerState::kFreezing;
  }

  void KillAll() override {
    // The common case at delete: the init has exited and took its pid namespace along.
    if (Pids().empty()) return;
    WithContext("kill processes of cgroup " + dir_, [&] {
      if (PathExists(JoinPath(dir_, "cgroup.kill"))) {
        WriteCgroupFile(dir_, "cgroup.kill", "1", "kill");
      } else {
        // Before Linux 5.14: freeze so nothing forks while we signal, then let them die.
        Freeze();
        try {
          internal::KillPids(Pids());
        } catch (...) {
          Thaw();
          throw;
        }
        Thaw();
      }
      if (!internal::WaitUntil([&] { return Pids().empty(); }, internal::kDrainTimeout)) {
        throw Error(ErrorKind::kSystem, "processes still present after SIGKILL");
      }
    });
  }

  std::vector<pid_t> Pids() override { return internal::ReadPids(JoinPath(dir_, "cgroup.procs")); }

  CgroupStats Stats() override {
    CgroupStats s;
    auto cpu = ReadKeyValues(JoinPath(dir_, "cpu.stat"));
    s.cpu_usage_ns = cpu["usage_usec"] * 1000;
    s.cpu_user_ns = cpu["user_usec"] * 1000;
    s.cpu_system_ns = cpu["system_usec"] * 1000;
    s.cpu_throttled_periods = cpu["nr_throttled"];
    s.memory_usage_bytes = ReadUint(JoinPath(dir_, "memory.current")).value_or(0);
    s.memory_max_usage_bytes = ReadUint(JoinPath(dir_, "memory.peak")).value_or(0);
    s.memory_limit_bytes = ReadUint(JoinPath(dir_, "memory.max"));  // "max" -> nullopt
    s.memory_cache_bytes = ReadKeyValues(JoinPath(dir_, "memory.stat"))["file"];
    s.oom_kills = ReadKeyValues(JoinPath(dir_, "memory.events"))["oom_kill"];
    s.pids_current = ReadUint(JoinPath(dir_, "pids.current")).value_or(0);
    s.pids_limit = ReadUint(JoinPath(dir_, "pids.max"));
    ReadIoStat(s);
    return s;
  }

  void Destroy() override {
    WithContext("destroy cgroup", [&] { internal::RemoveCgroupDir(dir_); });
  }

  std::string DirectoryFor(const std::string& controller) const override {
    // Freezing, killing and device filters are part of every cgroup2 group.
    static const std::set<std::string> built_in = {"", "unified", "freezer", "devices"};
    if (built_in.count(controller) ||
        std::find(host_.unified_controllers.begin(), host_.unified_controllers.end(), controller) !=
            host_.unified_controllers.end()) {
      return dir_;
    }
    return "";
  }

 private:
  void ApplyDevices(const std::vector<spec::DeviceRule>& rules) {
    auto program = BuildDeviceFilter(rules);
    WithContext("linux.resources.devices", [&] { AttachDeviceFilter(dir_, program); });
  }

  void ApplyMemory(const spec::MemoryResources& m) {
    bool swap_available = PathExists(JoinPath(dir_, "memory.swap.max"));
    for (const auto& w : internal::PlanV2MemoryWrites(m, swap_available)) {
      const char* field = w.file == "memory.max"   ? "linux.resources.memory.limit"
                          : w.file == "memory.low" ? "linux.resources.memory.reservation"
                                                   : "linux.resources.memory.swap";
      WriteCgroupFile(dir_, w.file, w.value, field);
    }
    // swappiness and disableOOMKiller have no v2 files; like runc and crun we leave them.
  }

  void ApplyCpu(const spec::CpuResources& c) {
    if ((c.realtime_runtime && *c.realtime_runtime != 0) ||
        (c.realtime_period && *c.realtime_period != 0)) {
      throw Error(ErrorKind::kUnsupported,
                  "linux.resources.cpu.realtimeRuntime: cgroup v2 has no realtime CPU budget");
    }
    if (c.shares && *c.shares != 0) {
      WriteCgroupFile(dir_, "cpu.weight", std::to_string(CpuSharesToWeight(*c.shares)),
                      "linux.resources.cpu.shares");
    }
    std::string current = c.quota ? "" : ReadTrimmed(JoinPath(dir_, "cpu.max")).value_or("");
    if (auto cpu_max = internal::PlanV2CpuMax(c, current)) {
      WriteCgroupFile(dir_, "cpu.max", *cpu_max,
                      c.quota ? "linux.resources.cpu.quota" : "linux.resources.cpu.period");
    }
    if (!c.cpus.empty()) WriteCgroupFile(dir_, "cpuset.cpus", c.cpus, "linux.resources.cpu.cpus");
    if (!c.mems.empty()) WriteCgroupFile(dir_, "cpuset.mems", c.mems, "linux.resources.cpu.mems");
  }

  void ApplyIo(const spec::BlockIoResources& io) {
    // BFQ takes the blkio weight as it is; io.weight has ten times the range.
    bool bfq =
        !PathExists(JoinPath(dir_, "io.weight")) && PathExists(JoinPath(dir_, "io.bfq.weight"));
    const char* weight_file = bfq ? "io.bfq.weight" : "io.weight";
    auto weight = [&](uint16_t w) { return std::to_string(bfq ? w : BlkioWeightToIoWeight(w)); };
    if (io.weight) {
      CheckBlkioWeight(*io.weight, "linux.resources.blockIO.weight");
      WriteCgroupFile(dir_, weight_file, "default " + weight(*io.weight),
                      "linux.resources.blockIO.weight");
    }
    for (const auto& d : io.weight_device) {
      if (!d.weight) continue;
      CheckBlkioWeight(*d.weight, "linux.resources.blockIO.weightDevice");
      WriteCgroupFile(
          dir_, weight_file,
          std::to_string(d.major) + ":" + std::to_string(d.minor) + " " + weight(*d.weight),
          "linux.resources.blockIO.weightDevice");
    }
    for (const auto& line : internal::PlanV2IoMax(io)) {
      WriteCgroupFile(dir_, "io.max", line, "linux.resources.blockIO.throttle");
    }
  }

  static void CheckBlkioWeight(uint16_t w, const char* field) {
    if (w < 10 || w > 1000) {
      throw Error(ErrorKind::kInvalidArgument,
                  std::string(field) + ": " + std::to_string(w) + " is outside 10..1000");
    }
  }

  void ReadIoStat(CgroupStats& s) {
    // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
    auto text = ReadFileIfExists(JoinPath(dir_, "io.stat"));
    if (!text) return;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t end = text->find_first_of(" \n", pos);
      if (end == std::string::npos) end = text->size();
      std::string_view word(text->data() + pos, end - pos);
      auto take = [&](std::string_view key, uint64_t& sum) {
        if (word.substr(0, key.size()) == key)
          sum += internal::ParseUint(word.substr(key.size())).value_or(0);
      };
      take("rbytes=", s.io_read_bytes);
      take("wbytes=", s.io_write_bytes);
      pos = end + 1;
    }
  }

  CgroupHost host_;
  std::string path_;
  std::string root_;
  std::string dir_;
};

}  // namespace

std::unique_ptr<Cgroup> OpenCgroupV2(const CgroupHost& host, const std::string& path) {
  return std::make_unique<CgroupV2>(host, path);
}

}  // namespace berth::cgroup
