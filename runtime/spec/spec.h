// The container spec: our own types for the OCI runtime-spec config.json
// (https://github.com/opencontainers/runtime-spec/blob/main/config.md). Only what Berth
// acts on is modelled; unknown fields are ignored as the spec requires. berthd builds these
// directly; berth-runtime reads them from a bundle with ParseSpec (parser.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth::spec {

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE", ...
  uint64_t hard = 0;
  uint64_t soft = 0;
};

// Capability names as the spec writes them ("CAP_NET_BIND_SERVICE").
struct Capabilities {
  std::vector<std::string> bounding;
  std::vector<std::string> effective;
  std::vector<std::string> inheritable;
  std::vector<std::string> permitted;
  std::vector<std::string> ambient;
};

struct ConsoleSize {
  uint32_t height = 0;
  uint32_t width = 0;
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  User user;
  std::vector<std::string> args;
  std::vector<std::string> env;  // "KEY=value"
  std::string cwd = "/";
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::optional<int> oom_score_adj;
};

struct Root {
  std::string path;  // relative to the bundle, or absolute
  bool readonly = false;
};

struct Mount {
  std::string destination;
  std::string type;
  std::string source;
  std::vector<std::string> options;
};

enum class NamespaceType { kPid, kNetwork, kMount, kIpc, kUts, kUser, kCgroup };

struct Namespace {
  NamespaceType type;
  std::string path;  // empty: create a new one; else join the namespace at this path
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

// A device node to create in the container's /dev.
struct Device {
  std::string path;
  std::string type;  // "c", "b", "u", "p"
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
};

// One line of the device cgroup's allow/deny list.
struct DeviceRule {
  bool allow = false;
  std::string type = "a";        // "a", "c", "b"
  std::optional<int64_t> major;  // nullopt: any ('*')
  std::optional<int64_t> minor;
  std::string access = "rwm";
};

struct MemoryResources {
  std::optional<int64_t> limit;        // bytes; -1 unlimited
  std::optional<int64_t> reservation;  // soft limit (v2: memory.low)
  std::optional<int64_t> swap;         // memory+swap, as the spec defines it; -1 unlimited
  std::optional<uint64_t> swappiness;
  std::optional<bool> disable_oom_killer;
};

struct CpuResources {
  std::optional<uint64_t> shares;  // v1 cpu.shares; converted to cpu.weight on v2
  std::optional<int64_t> quota;    // microseconds per period; -1 unlimited
  std::optional<uint64_t> period;  // microseconds
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus;  // cpuset list "0-1"
  std::string mems;
};

struct PidsResources {
  int64_t limit = 0;  // <= 0 unlimited
};

struct BlockIoDeviceWeight {
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
};

struct BlockIoDeviceRate {
  int64_t major = 0;
  int64_t minor = 0;
  uint64_t rate = 0;
};

struct BlockIoResources {
  std::optional<uint16_t> weight;  // 10..1000
  std::optional<uint16_t> leaf_weight;
  std::vector<BlockIoDeviceWeight> weight_device;
  std::vector<BlockIoDeviceRate> throttle_read_bps_device;
  std::vector<BlockIoDeviceRate> throttle_write_bps_device;
  std::vector<BlockIoDeviceRate> throttle_read_iops_device;
  std::vector<BlockIoDeviceRate> throttle_write_iops_device;
};

struct Resources {
  std::vector<DeviceRule> devices;
  std::optional<MemoryResources> memory;
  std::optional<CpuResources> cpu;
  std::optional<PidsResources> pids;
  std::optional<BlockIoResources> block_io;
  std::map<std::string, std::string> unified;  // raw cgroup v2 files: "memory.high" -> "1G"
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // "SCMP_CMP_EQ", ...
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;  // "SCMP_ACT_ERRNO", ...
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
};

struct Seccomp {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // "SCMP_ARCH_X86_64", ...
  std::vector<std::string> flags;
  std::vector<SeccompSyscall> syscalls;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings;
  std::vector<IdMapping> gid_mappings;
  std::vector<Device> devices;
  std::string cgroups_path;  // relative to the hierarchy roots; empty: runtime chooses
  std::optional<Resources> resources;
  std::optional<Seccomp> seccomp;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string rootfs_propagation;  // "", "private", "rprivate", "slave", ...
  std::map<std::string, std::string> sysctl;
};

struct Spec {
  std::string oci_version;
  Process process;
  Root root;
  std::string hostname;
  std::vector<Mount> mounts;
  Linux linux;
  std::map<std::string, std::string> annotations;

  bool HasNamespace(NamespaceType type) const;
  const Namespace* FindNamespace(NamespaceType type) const;
};

// "pid", "network", "mount", "ipc", "uts", "user", "cgroup".
const char* NamespaceTypeName(NamespaceType type);
std::optional<NamespaceType> NamespaceTypeFromName(std::string_view name);

}  // namespace berth::spec
