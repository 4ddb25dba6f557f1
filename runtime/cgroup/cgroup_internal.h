// Pieces shared by the v1 and v2 backends, and the pure "plan" functions that decide what
// to write, exposed here so unit tests can check them without a kernel.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runtime/spec/spec.h"

namespace berth::cgroup::internal {

// How long Freeze waits for the kernel to report the group frozen, and how long KillAll
// and Destroy wait for killed processes to leave.
inline constexpr std::chrono::milliseconds kFreezeTimeout{2000};
inline constexpr std::chrono::milliseconds kDrainTimeout{5000};
inline constexpr std::chrono::milliseconds kRmdirTimeout{2000};

// One file write: file name relative to a group directory, and the value.
struct FileWrite {
  std::string file;
  std::string value;
  bool operator==(const FileWrite&) const = default;
};

// Writes `value` to dir/file in one write(2). Failures name the spec field:
//   EINVAL/EBUSY/ERANGE/EOVERFLOW (the kernel rejected the value) -> kInvalidArgument
//   ENOENT (the controller's file is absent)                      -> kUnsupported
//   ENOENT (the group's directory is absent)                      -> kNotFound
//   anything else                                                  -> the errno's kind
// e.g. "linux.resources.memory.limit: write 4096 to /sys/.../memory.limit_in_bytes: EBUSY".
void WriteCgroupFile(const std::string& dir, const std::string& file, std::string_view value,
                     std::string_view field);

// The content without trailing whitespace; nullopt when the file does not exist.
std::optional<std::string> ReadTrimmed(const std::string& path);

std::optional<uint64_t> ParseUint(std::string_view text);

// "key value" lines (memory.stat, cpu.stat, cpuacct.stat, memory.events, cgroup.events).
// Lines that do not parse are skipped.
std::map<std::string, uint64_t> ParseKeyValues(std::string_view text);

// Reads dir/file as ParseKeyValues; empty when the file is absent.
std::map<std::string, uint64_t> ReadKeyValues(const std::string& path);

// A single number file; nullopt when absent or "max".
std::optional<uint64_t> ReadUint(const std::string& path);

// The pids in a cgroup.procs file; empty when absent.
std::vector<pid_t> ReadPids(const std::string& path);

// Polls `done` with a growing sleep until it returns true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout);

// rmdir, retrying on EBUSY until kRmdirTimeout (a killed process may still be exiting).
// A missing directory is fine.
void RemoveCgroupDir(const std::string& dir);

// SIGKILL each pid; a pid that is already gone is fine.
void KillPids(const std::vector<pid_t>& pids);

// Checks a cgroup path from a spec ("/berth/c1", "berth/c1") and returns it without leading
// or trailing slashes. Empty, "." or ".." components are kInvalidArgument.
std::string NormalizeCgroupPath(const std::string& path);

// "c 1:3 rwm", "a *:* rwm". Throws kInvalidArgument naming linux.resources.devices[index]
// for a bad type or access string.
std::string DeviceRuleLine(const spec::DeviceRule& rule, size_t index);

// v1 devices controller: the writes (devices.allow / devices.deny) that give the spec's
// ordered rule list, the last matching rule winning.
std::vector<FileWrite> PlanV1DeviceWrites(const std::vector<spec::DeviceRule>& rules);

// v1 memory controller: the writes, in an order that keeps memory.limit_in_bytes <=
// memory.memsw.limit_in_bytes at every step. `current_limit` is the group's
// memory.limit_in_bytes now; `memsw_available` whether swap accounting is on.
// Rule for swap without accounting: -1 (unlimited) is skipped, any other value is
// kUnsupported naming linux.resources.memory.swap.
std::vector<FileWrite> PlanV1MemoryWrites(const spec::MemoryResources& memory,
                                          uint64_t current_limit, bool memsw_available);

// v2: memory.max, memory.low and memory.swap.max (spec swap is memory+swap). Swap without
// a limit in the same request is kInvalidArgument unless it is -1. `swap_available`: whether
// memory.swap.max exists; without it the same rule as on v1 applies.
std::vector<FileWrite> PlanV2MemoryWrites(const spec::MemoryResources& memory, bool swap_available);

// v2 cpu.max: "QUOTA PERIOD", "max PERIOD" or just "QUOTA"; `current_cpu_max` is the
// file's content, used when only the period changes. nullopt when neither is set.
std::optional<std::string> PlanV2CpuMax(const spec::CpuResources& cpu,
                                        const std::string& current_cpu_max);

// v2 io.max lines, one per device: "8:0 rbps=1048576 wiops=100". A rate of 0 removes that
// limit ("max"), as 0 does in v1's blkio.throttle files.
std::vector<std::string> PlanV2IoMax(const spec::BlockIoResources& io);

// A key of linux.resources.unified must be a plain file name in the group directory.
void ValidateUnifiedKey(const std::string& key);

// USER_HZ ticks (cpuacct.stat) to nanoseconds.
uint64_t TicksToNs(uint64_t ticks);

}  // namespace berth::cgroup::internal
