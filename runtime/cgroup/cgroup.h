// Cgroups behind one interface. Two backends: v1 (one hierarchy per controller, as on this
// host) and v2 (the unified hierarchy). Which one a host gets is decided by DetectCgroupHost:
// v2 when the unified hierarchy at the root is cgroup2 or holds the controllers we need,
// v1 otherwise. On a "hybrid" host (v1 controllers plus an empty or near-empty cgroup2 at
// <root>/unified) the v1 backend also creates the group in the unified hierarchy so that
// freeze/kill/process tracking work there too.
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

// Reads /proc/self/mountinfo (or the given text) to find the hierarchies.
CgroupHost DetectCgroupHost(const std::string& root = "/sys/fs/cgroup");
CgroupHost ParseCgroupHost(const std::string& mountinfo, const std::string& root);

struct CgroupStats {
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  uint64_t cpu_throttled_periods = 0;
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_max_usage_bytes = 0;  // v1 only (max_usage_in_bytes); v2: memory.peak when present
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
  // joins and tests); empty when the controller is not available.
  virtual std::string DirectoryFor(const std::string& controller) const = 0;
};

// Chooses the backend for the host.
std::unique_ptr<Cgroup> OpenCgroup(const CgroupHost& host, const std::string& path);

// The backends directly, for tests against seeded directories.
std::unique_ptr<Cgroup> OpenCgroupV1(const CgroupHost& host, const std::string& path);
std::unique_ptr<Cgroup> OpenCgroupV2(const CgroupHost& host, const std::string& path);

// cpu.shares (2..262144) -> cpu.weight (1..10000), as runc/crun convert.
uint64_t CpuSharesToWeight(uint64_t shares);

}  // namespace berth::cgroup
