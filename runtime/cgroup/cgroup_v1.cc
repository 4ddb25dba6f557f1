// cgroup v1: one hierarchy per controller (or per group of co-mounted controllers). On a
// hybrid host the group is also made in the cgroup2 hierarchy so the processes are tracked
// there too (the lead's monitor and tools can rely on the unified path existing).
#include <optional>
#include <set>

#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::cgroup {

namespace {

using internal::ReadKeyValues;
using internal::ReadTrimmed;
using internal::ReadUint;
using internal::WriteCgroupFile;

// memory.limit_in_bytes reads back PAGE_COUNTER_MAX pages when unlimited
// (9223372036854771712 with 4 KiB pages); anything this large means "no limit".
constexpr uint64_t kV1Unlimited = 0x7FFFFFFFFFFFF000ULL;

Error NoController(const char* controller, const char* field) {
  return Error(ErrorKind::kUnsupported,
               std::string(field) + ": the " + controller + " controller is not mounted");
}

class CgroupV1 : public Cgroup {
 public:
  CgroupV1(const CgroupHost& host, const std::string& path)
      : host_(host), path_(internal::NormalizeCgroupPath(path)) {}

  const std::string& path() const override { return path_; }

  void Create() override {
    for (const std::string& dir : AllDirs()) {
      WithContext("create cgroup " + dir, [&] { MakeDirs(dir); });
    }
    if (std::string cpuset = DirectoryFor("cpuset"); !cpuset.empty()) {
      WithContext("create cgroup " + cpuset, [&] { InheritCpuset(); });
    }
  }

  void AddProcess(pid_t pid) override {
    for (const std::string& dir : AllDirs()) {
      WriteCgroupFile(dir, "cgroup.procs", std::to_string(pid),
                      "add process " + std::to_string(pid) + " to cgroup");
    }
  }

  void Apply(const spec::Resources& r) override {
    if (!r.unified.empty()) {
      throw Error(ErrorKind::kUnsupported,
                  "linux.resources.unified: raw cgroup v2 files need a cgroup v2 host");
    }
    if (r.cpu) ApplyCpuset(*r.cpu);
    if (!r.devices.empty()) ApplyDevices(r.devices);
    if (r.memory) ApplyMemory(*r.memory);
    if (r.cpu) ApplyCpu(*r.cpu);
    if (r.pids) {
      WriteCgroupFile(Need("pids", "linux.resources.pids.limit"), "pids.max",
                      r.pids->limit <= 0 ? "max" : std::to_string(r.pids->limit),
                      "linux.resources.pids.limit");
    }
    if (r.block_io) ApplyBlkio(*r.block_io);
  }

  void Freeze() override {
    std::string dir = Need("freezer", "freeze");
    // Freezing can stall on a task in an uninterruptible sleep; runc re-writes FROZEN
    // while polling, which makes the kernel retry the stragglers.
    bool frozen = internal::WaitUntil(
        [&] {
          WriteCgroupFile(dir, "freezer.state", "FROZEN", "freeze");
          return ReadTrimmed(JoinPath(dir, "freezer.state")).value_or("") == "FROZEN";
        },
        internal::kFreezeTimeout);
    if (!frozen) {
      try {
        Thaw();
      } catch (const Error&) {
      }
      throw Error(ErrorKind::kSystem, "freeze " + dir +
                                          ": freezer.state did not reach FROZEN within " +
                                          std::to_string(internal::kFreezeTimeout.count()) + " ms");
    }
  }

  void Thaw() override {
    WriteCgroupFile(Need("freezer", "thaw"), "freezer.state", "THAWED", "thaw");
  }

  FreezerState GetFreezerState() override {
    std::string dir = DirectoryFor("freezer");
    if (dir.empty()) return FreezerState::kThawed;
    std::string state = ReadTrimmed(JoinPath(dir, "freezer.state")).value_or("THAWED");
    if (state == "FROZEN") return FreezerState::kFrozen;
    if (state == "FREEZING") return FreezerState::kFreezing;
    return FreezerState::kThawed;
  }

  void KillAll() override {
    // The common case at delete: the init has exited and took its pid namespace along.
    if (Pids().empty()) return;
    WithContext("kill processes of cgroup " + path_, [&] {
      if (KillThroughUnifiedTwin()) return;
      bool frozen = false;
      if (!DirectoryFor("freezer").empty()) {
        // So nothing forks between reading the list and signalling it. A group that will
        // not freeze (a task stuck in D state) is still killed, by repeated rounds below.
        try {
          Freeze();
          frozen = true;
        } catch (const Error&) {
        }
      }
      try {
        internal::KillPids(Pids());
      } catch (...) {
        if (frozen) Thaw();
        throw;
      }
      if (frozen) Thaw();  // SIGKILL is delivered once the tasks run again
      bool empty = internal::WaitUntil(
          [&] {
            auto pids = Pids();
            // Without a freezer a fork may have raced the kill: signal again.
            if (!frozen) internal::KillPids(pids);
            return pids.empty();
          },
          internal::kDrainTimeout);
      if (!empty) throw Error(ErrorKind::kSystem, "processes still present after SIGKILL");
    });
  }

  // On a hybrid host the group has a twin in the unified hierarchy holding the same
  // processes (they join both): its cgroup.kill (Linux 5.14) kills them all in one write,
  // forks included, with no freeze. The v1 freezer is dear on some machines: the first
  // freeze and the last thaw on the host switch a kernel static key, which rewrites kernel
  // code (20-30 ms for a freeze and thaw on the 2-core VM Berth is tested on). False when
  // the twin cannot do it: no twin or no cgroup.kill, a process that is not in it (moved
  // out by hand), or a frozen group, whose tasks would not die until thawed.
  bool KillThroughUnifiedTwin() {
    std::string twin = DirectoryFor("unified");
    if (twin.empty() || !PathExists(JoinPath(twin, "cgroup.kill"))) return false;
    if (GetFreezerState() != FreezerState::kThawed) return false;
    auto in_twin = internal::ReadPids(JoinPath(twin, "cgroup.procs"));
    std::set<pid_t> twin_pids(in_twin.begin(), in_twin.end());
    for (pid_t pid : Pids()) {
      if (!twin_pids.count(pid)) return false;
    }
    WriteCgroupFile(twin, "cgroup.kill", "1", "kill");
    return internal::WaitUntil([&] { return Pids().empty(); }, internal::kDrainTimeout);
  }

  std::vector<pid_t> Pids() override {
    std::string dir = DirectoryFor("freezer");
    if (dir.empty()) {
      auto dirs = AllDirs();
      if (dirs.empty()) return {};
      dir = dirs.front();
    }
    return internal::ReadPids(JoinPath(dir, "cgroup.procs"));
  }

  CgroupStats Stats() override {
    CgroupStats s;
    if (std::string dir = DirectoryFor("cpuacct"); !dir.empty()) {
      s.cpu_usage_ns = ReadUint(JoinPath(dir, "cpuacct.usage")).value_or(0);
      auto ticks = ReadKeyValues(JoinPath(dir, "cpuacct.stat"));
      s.cpu_user_ns = internal::TicksToNs(ticks["user"]);
      s.cpu_system_ns = internal::TicksToNs(ticks["system"]);
    }
    if (std::string dir = DirectoryFor("cpu"); !dir.empty()) {
      s.cpu_throttled_periods = ReadKeyValues(JoinPath(dir, "cpu.stat"))["nr_throttled"];
    }
    if (std::string dir = DirectoryFor("memory"); !dir.empty()) {
      s.memory_usage_bytes = ReadUint(JoinPath(dir, "memory.usage_in_bytes")).value_or(0);
      s.memory_max_usage_bytes = ReadUint(JoinPath(dir, "memory.max_usage_in_bytes")).value_or(0);
      auto limit = ReadUint(JoinPath(dir, "memory.limit_in_bytes"));
      if (limit && *limit < kV1Unlimited) s.memory_limit_bytes = limit;
      auto stat = ReadKeyValues(JoinPath(dir, "memory.stat"));
      // total_cache counts child groups too; older kernels only have cache.
      s.memory_cache_bytes = stat.count("total_cache") ? stat["total_cache"] : stat["cache"];
      s.oom_kills = ReadKeyValues(JoinPath(dir, "memory.oom_control"))["oom_kill"];
    }
    if (std::string dir = DirectoryFor("pids"); !dir.empty()) {
      s.pids_current = ReadUint(JoinPath(dir, "pids.current")).value_or(0);
      s.pids_limit = ReadUint(JoinPath(dir, "pids.max"));
    }
    if (std::string dir = DirectoryFor("blkio"); !dir.empty()) {
      ReadBlkioBytes(JoinPath(dir, "blkio.throttle.io_service_bytes"), s);
    }
    return s;
  }

  void Destroy() override {
    // Every hierarchy gets its rmdir even when one fails; the first failure is reported.
    std::optional<Error> first;
    for (const std::string& dir : AllDirs()) {
      try {
        internal::RemoveCgroupDir(dir);
      } catch (Error& e) {
        if (!first) first = std::move(e.WithContext("destroy cgroup"));
      }
    }
    if (first) throw *first;
  }

  std::string DirectoryFor(const std::string& controller) const override {
    if (controller == "unified") {
      return host_.unified_mount.empty() ? "" : JoinPath(host_.unified_mount, path_);
    }
    auto it = host_.v1_mounts.find(controller);
    return it == host_.v1_mounts.end() ? "" : JoinPath(it->second, path_);
  }

 private:
  // The group's directory in every hierarchy, each once (co-mounted controllers share
  // one), the unified one last.
  std::vector<std::string> AllDirs() const {
    std::vector<std::string> dirs;
    std::set<std::string> seen;
    for (const auto& [controller, mount] : host_.v1_mounts) {
      if (seen.insert(mount).second) dirs.push_back(JoinPath(mount, path_));
    }
    if (!host_.unified_mount.empty()) dirs.push_back(JoinPath(host_.unified_mount, path_));
    return dirs;
  }

  std::string Need(const char* controller, const char* field) const {
    std::string dir = DirectoryFor(controller);
    if (dir.empty()) throw NoController(controller, field);
    return dir;
  }

  // A new cpuset group starts with empty cpus/mems and refuses tasks until they are set:
  // copy them down from the parent, top first.
  void InheritCpuset() {
    std::string dir = host_.v1_mounts.at("cpuset");
    std::string_view rest = path_;
    while (!rest.empty()) {
      size_t slash = rest.find('/');
      std::string child = JoinPath(dir, rest.substr(0, slash));
      rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
        auto mine = ReadTrimmed(JoinPath(child, file));
        if (!mine || !mine->empty()) continue;
        auto parents = ReadTrimmed(JoinPath(dir, file));
        if (parents && !parents->empty()) WriteCgroupFile(child, file, *parents, file);
      }
      dir = child;
    }
  }

  void ApplyCpuset(const spec::CpuResources& c) {
    if (!c.cpus.empty()) {
      WriteCgroupFile(Need("cpuset", "linux.resources.cpu.cpus"), "cpuset.cpus", c.cpus,
                      "linux.resources.cpu.cpus");
    }
    if (!c.mems.empty()) {
      WriteCgroupFile(Need("cpuset", "linux.resources.cpu.mems"), "cpuset.mems", c.mems,
                      "linux.resources.cpu.mems");
    }
  }

  void ApplyDevices(const std::vector<spec::DeviceRule>& rules) {
    auto writes = internal::PlanV1DeviceWrites(rules);
    std::string dir = Need("devices", "linux.resources.devices");
    for (size_t i = 0; i < writes.size(); ++i) {
      WriteCgroupFile(dir, writes[i].file, writes[i].value,
                      "linux.resources.devices[" + std::to_string(i) + "]");
    }
  }

  void ApplyMemory(const spec::MemoryResources& m) {
    std::string dir = Need("memory", "linux.resources.memory");
    bool memsw = PathExists(JoinPath(dir, "memory.memsw.limit_in_bytes"));
    uint64_t current = ReadUint(JoinPath(dir, "memory.limit_in_bytes")).value_or(kV1Unlimited);
    for (const auto& w : internal::PlanV1MemoryWrites(m, current, memsw)) {
      const char* field =
          w.file == "memory.limit_in_bytes"         ? "linux.resources.memory.limit"
          : w.file == "memory.memsw.limit_in_bytes" ? "linux.resources.memory.swap"
          : w.file == "memory.soft_limit_in_bytes"  ? "linux.resources.memory.reservation"
          : w.file == "memory.swappiness"           ? "linux.resources.memory.swappiness"
                                                    : "linux.resources.memory.disableOOMKiller";
      WriteCgroupFile(dir, w.file, w.value, field);
    }
  }

  void ApplyCpu(const spec::CpuResources& c) {
    bool any = c.shares || c.quota || c.period || c.realtime_runtime || c.realtime_period;
    if (!any) return;
    std::string dir = Need("cpu", "linux.resources.cpu");
    if (c.shares) {
      WriteCgroupFile(dir, "cpu.shares", std::to_string(*c.shares), "linux.resources.cpu.shares");
    }
    std::string quota;
    if (c.quota) {
      if (*c.quota < -1) {
        throw Error(ErrorKind::kInvalidArgument,
                    "linux.resources.cpu.quota: " + std::to_string(*c.quota) +
                        " is negative (-1: unlimited)");
      }
      quota = std::to_string(*c.quota);
    }
    if (c.period) {
      try {
        WriteCgroupFile(dir, "cpu.cfs_period_us", std::to_string(*c.period),
                        "linux.resources.cpu.period");
      } catch (const Error& e) {
        // The kernel checks the current quota against the new period: with both
        // changing, the quota may have to go first (as runc does).
        if (!c.quota || e.kind() != ErrorKind::kInvalidArgument) throw;
        WriteCgroupFile(dir, "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota");
        WriteCgroupFile(dir, "cpu.cfs_period_us", std::to_string(*c.period),
                        "linux.resources.cpu.period");
      }
    }
    if (c.quota) WriteCgroupFile(dir, "cpu.cfs_quota_us", quota, "linux.resources.cpu.quota");
    // Period before runtime: the runtime must fit in the period.
    if (c.realtime_period) {
      WriteCgroupFile(dir, "cpu.rt_period_us", std::to_string(*c.realtime_period),
                      "linux.resources.cpu.realtimePeriod");
    }
    if (c.realtime_runtime) {
      WriteCgroupFile(dir, "cpu.rt_runtime_us", std::to_string(*c.realtime_runtime),
                      "linux.resources.cpu.realtimeRuntime");
    }
  }

  void ApplyBlkio(const spec::BlockIoResources& io) {
    auto check = [](uint16_t w, const char* field) {
      if (w < 10 || w > 1000) {
        throw Error(ErrorKind::kInvalidArgument,
                    std::string(field) + ": " + std::to_string(w) + " is outside 10..1000");
      }
    };
    std::string dir = Need("blkio", "linux.resources.blockIO");
    // CFQ's blkio.weight is gone from current kernels; BFQ offers blkio.bfq.weight.
    std::string weight_file =
        PathExists(JoinPath(dir, "blkio.weight")) ? "blkio.weight" : "blkio.bfq.weight";
    if (io.weight) {
      check(*io.weight, "linux.resources.blockIO.weight");
      WriteCgroupFile(dir, weight_file, std::to_string(*io.weight),
                      "linux.resources.blockIO.weight");
    }
    if (io.leaf_weight) {
      check(*io.leaf_weight, "linux.resources.blockIO.leafWeight");
      WriteCgroupFile(dir, "blkio.leaf_weight", std::to_string(*io.leaf_weight),
                      "linux.resources.blockIO.leafWeight");
    }
    std::string device_weight_file =
        weight_file == "blkio.weight" ? "blkio.weight_device" : "blkio.bfq.weight_device";
    for (const auto& d : io.weight_device) {
      std::string dev = std::to_string(d.major) + ":" + std::to_string(d.minor) + " ";
      if (d.weight) {
        check(*d.weight, "linux.resources.blockIO.weightDevice");
        WriteCgroupFile(dir, device_weight_file, dev + std::to_string(*d.weight),
                        "linux.resources.blockIO.weightDevice");
      }
      if (d.leaf_weight) {
        check(*d.leaf_weight, "linux.resources.blockIO.weightDevice");
        WriteCgroupFile(dir, "blkio.leaf_weight_device", dev + std::to_string(*d.leaf_weight),
                        "linux.resources.blockIO.weightDevice");
      }
    }
    auto throttle = [&](const std::vector<spec::BlockIoDeviceRate>& rates, const char* file,
                        const char* field) {
      for (const auto& r : rates) {
        WriteCgroupFile(
            dir, file,
            std::to_string(r.major) + ":" + std::to_string(r.minor) + " " + std::to_string(r.rate),
            field);
      }
    };
    throttle(io.throttle_read_bps_device, "blkio.throttle.read_bps_device",
             "linux.resources.blockIO.throttleReadBpsDevice");
    throttle(io.throttle_write_bps_device, "blkio.throttle.write_bps_device",
             "linux.resources.blockIO.throttleWriteBpsDevice");
    throttle(io.throttle_read_iops_device, "blkio.throttle.read_iops_device",
             "linux.resources.blockIO.throttleReadIOPSDevice");
    throttle(io.throttle_write_iops_device, "blkio.throttle.write_iops_device",
             "linux.resources.blockIO.throttleWriteIOPSDevice");
  }

  // "8:0 Read 4096" / "8:0 Write 512" / "8:0 Total 4608" / "Total 4608".
  static void ReadBlkioBytes(const std::string& path, CgroupStats& s) {
    auto text = ReadFileIfExists(path);
    if (!text) return;
    size_t pos = 0;
    while (pos < text->size()) {
      size_t eol = text->find('\n', pos);
      if (eol == std::string::npos) eol = text->size();
      std::string_view line(text->data() + pos, eol - pos);
      pos = eol + 1;
      size_t a = line.find(' ');
      if (a == std::string_view::npos) continue;
      size_t b = line.find(' ', a + 1);
      if (b == std::string_view::npos) continue;
      std::string_view op = line.substr(a + 1, b - a - 1);
      uint64_t value = internal::ParseUint(line.substr(b + 1)).value_or(0);
      if (op == "Read") s.io_read_bytes += value;
      if (op == "Write") s.io_write_bytes += value;
    }
  }

  CgroupHost host_;
  std::string path_;
};

}  // namespace

std::unique_ptr<Cgroup> OpenCgroupV1(const CgroupHost& host, const std::string& path) {
  return std::make_unique<CgroupV1>(host, path);
}

}  // namespace berth::cgroup
