// Cgroups behind one interface. Two backends: v1 (one hierarchy per controller, as on this
// host) and v2 (the unified hierarchy). Which one a host gets is decided by DetectCgroupHost:
// v2 when cgroup2 is mounted at the root itself (/sys/fs/cgroup), v1 otherwise. On a
// "hybrid" host (v1 controllers plus an empty or near-empty cgroup2 at <root>/unified) the
// v1 backend also creates, joins and removes the group in the unified hierarchy so process
// tracking there stays consistent; limits, freezing and killing use the v1 controllers.
//
// Rules the backends follow (see cgroup_internal.h for the exact plans):
//  - Limits the host cannot enforce are kUnsupported naming the field, except where the
//    kernel has no equivalent and runc/crun also ignore them (v2: memory.swappiness,
//    memory.disableOOMKiller, blockIO.leafWeight).
//  - Swap (spec: memory+swap) without swap accounting: -1 is skipped, anything else is
//    kUnsupported ("linux.resources.memory.swap").
//  - linux.resources.unified is kUnsupported on v1.
//  - Destroy removes only the leaf directory, never parents other groups may share.
//
// Every backend takes the hierarchy root as data so tests can point it at a temp
// directory seeded with the files the kernel would have.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec/spec.h"

namespace berth::cgroup {

enum class CgroupVersion { kV1, kV2 };

struct CgroupHost {
  CgroupVersion version = CgroupVersion::kV1;
  std::string root = "/sys/fs/cgroup";
  // v1: controller name ("memory", "cpu", "cpuacct", "pids", ...) -> hierarchy mount point.
  std::map<std::string, std::string> v1_mounts;
  // Where a cgroup2 hierarchy is mounted ("/sys/fs/cgroup" on v2, ".../unified" on hybrid,
  // empty when none), and the controllers it offers (cgroup.controllers at its root).
  std::string unified_mount;
  std::vector<std::string> unified_controllers;
};

// Reads /proc/self/mountinfo (or the given text) to find the hierarchies mounted at or
// below `root`. unified_controllers is read from <unified_mount>/cgroup.controllers.
CgroupHost DetectCgroupHost(const std::string& root = "/sys/fs/cgroup");
CgroupHost ParseCgroupHost(const std::string& mountinfo, const std::string& root);

// DetectCgroupHost for the default root, remembered by the process: reading and parsing
// mountinfo takes ~0.3 ms on a host with many mounts, on every create. The answer is kept
// with a cheap fingerprint of what it depends on (the mount namespace, the device and inode
// of the root and of each hierarchy's mount point, which a mount or unmount there changes,
// and a v1 root's mtime) checked on every call; a changed one detects again. Thread-safe.
CgroupHost CachedCgroupHost();
// The next CachedCgroupHost detects again (a create that failed on a cached layout).
void ForgetCachedCgroupHost();

struct CgroupStats {
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  uint64_t cpu_throttled_periods = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_max_usage_bytes =
      0;  // v1 only (max_usage_in_bytes); v2: memory.peak when present
  std::optional<uint64_t> memory_limit_bytes;  // nullopt: unlimited
  uint64_t memory_cache_bytes = 0;
  uint64_t oom_kills = 0;  // processes the OOM killer ended in this cgroup
  uint64_t pids_current = 0;
  std::optional<uint64_t> pids_limit;
  uint64_t io_read_bytes = 0;
  uint64_t io_write_bytes = 0;
};

enum class FreezerState { kThawed, kFreezing, kFrozen };

class Cgroup {
 public:
  virtual ~Cgroup() = default;

  // The path relative to the hierarchy roots, e.g. "berth/c1".
  virtual const std::string& path() const = 0;

  // mkdir in every hierarchy (parents too). Idempotent.
  virtual void Create() = 0;
  // Moves a process (all its threads) into the group in every hierarchy.
  virtual void AddProcess(pid_t pid) = 0;
  // Writes the limits. Also used to resize a running container; fields absent in
  // `resources` are left as they are. An impossible value is kInvalidArgument naming the
  // field ("linux.resources.memory.limit").
  virtual void Apply(const spec::Resources& resources) = 0;
  virtual void Freeze() = 0;  // returns when the group is frozen
  virtual void Thaw() = 0;
  virtual FreezerState GetFreezerState() = 0;
  // SIGKILL every process in the group (v2 cgroup.kill; else freeze, signal, thaw).
  virtual void KillAll() = 0;
  virtual std::vector<pid_t> Pids() = 0;
  virtual CgroupStats Stats() = 0;
  // Removes the group from every hierarchy; processes must be gone (KillAll first).
  // Missing directories are fine.
  virtual void Destroy() = 0;
  // Directory of the group in the hierarchy that holds `controller` (for setns-style
  // joins and tests); empty when the controller is not available. "unified" names the
  // cgroup2 directory (v1 on a hybrid host: <unified_mount>/<path>). On v2, "freezer",
  // "devices" and "" are built in and give the group's directory.
  virtual std::string DirectoryFor(const std::string& controller) const = 0;
};

// Chooses the backend for the host. `path` is relative to the hierarchy roots (a leading
// '/' is allowed); '.' or '..' components are kInvalidArgument.
std::unique_ptr<Cgroup> OpenCgroup(const CgroupHost& host, const std::string& path);

// The backends directly, for tests against seeded directories.
std::unique_ptr<Cgroup> OpenCgroupV1(const CgroupHost& host, const std::string& path);
std::unique_ptr<Cgroup> OpenCgroupV2(const CgroupHost& host, const std::string& path);

// cpu.shares (2..262144) -> cpu.weight (1..10000), as runc/crun convert. 0 stays 0 (unset);
// values outside the range are clamped to it.
uint64_t CpuSharesToWeight(uint64_t shares);

// blkio.weight (10..1000) -> io.weight (1..10000), as runc converts. 0 stays 0 (unset).
uint64_t BlkioWeightToIoWeight(uint64_t weight);

}  // namespace berth::cgroup
