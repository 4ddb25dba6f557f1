// An instance as berthd records it (<state>/instances/<uuid>/instance.json) and the pure
// translations around it: Nova's flavor to cgroup limits, the image config and the request
// to a container spec. Nothing here touches the kernel, so all of it is unit tested.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "driver/server/json_util.h"
#include "runtime/spec/spec.h"
#include "runtime/store/image/manifest.h"

namespace berth::server {

// Nova's power_state codes (nova/compute/power_state.py).
enum class PowerState : int {
  kNoState = 0,
  kRunning = 1,
  kPaused = 3,
  kShutdown = 4,
  kCrashed = 6,
  kSuspended = 7,
};
const char* PowerStateName(PowerState s);  // "RUNNING", ...

struct Flavor {
  int64_t vcpus = 1;
  int64_t memory_mb = 512;
  int64_t root_gb = 0;
  std::map<std::string, std::string> extra_specs;
};

// What the instance should be doing; the live power state is derived from this and from
// the container underneath (see InstanceManager::PowerStateOf).
enum class DesiredState { kRunning, kStopped, kPaused, kSuspended };
const char* DesiredStateName(DesiredState s);
DesiredState DesiredStateFromName(const std::string& name);

struct InstanceRecord {
  std::string uuid;
  std::string name;       // Nova's display name, any text
  std::string hostname;   // the container's hostname (RFC 1123 label)
  std::string image_id;   // "sha256:..."
  std::string image_ref;  // what the caller asked for
  Flavor flavor;
  std::vector<std::string> command;  // empty: the image's Cmd
  std::vector<std::string> env;      // KEY=value overrides
  std::map<std::string, std::string> metadata;
  std::string user_data;
  DesiredState desired = DesiredState::kRunning;
  std::string created_at;
  std::string launched_at;
  std::string stop_signal;  // from the image config; empty: SIGTERM
  // The snapshot key of its disk when it is not SnapshotKey(uuid): a root made ahead
  // (rootfs_pool.h) keeps the key it was made under. A rebuild's <instance dir>/disk wins.
  std::string disk;
};

std::string InstanceToJson(const InstanceRecord& r);
// kInvalidArgument naming `path` on malformed content.
InstanceRecord InstanceFromJson(const std::string& json, const std::string& path);

// Reads and checks the "flavor" object of a request ("flavor.vcpus: want an integer >= 1");
// extra_specs values must be strings.
Flavor ParseFlavor(const rapidjson::Value& v, const std::string& path);
// The same object, as the record and the API write it.
void WriteFlavor(JsonWriter& w, const char* key, const Flavor& flavor);

// Flavor -> limits: memory_mb -> memory.limit (and memory+swap equal to it, i.e. no swap,
// when `swap_accounting`), vcpus -> cpu quota vcpus*100000 per 100000 us and shares
// 1024*vcpus; extra specs quota:cpu_shares, quota:cpu_quota, quota:cpu_period,
// quota:disk_io_weight (blkio weight), berth:pids_limit, hw:cpuset (a cpuset list).
// Other extra specs are ignored (Nova sends specs meant for other drivers); a bad value of
// a known one is kInvalidArgument naming it.
spec::Resources FlavorToResources(const Flavor& flavor, bool swap_accounting);

// Signal number for an image's StopSignal ("SIGTERM", "TERM", "15", "SIGRTMIN+3");
// empty gives SIGTERM; unknown is kInvalidArgument.
int ParseSignal(const std::string& name);

struct SpecInputs {
  const InstanceRecord* instance = nullptr;
  const store::ContainerConfig* image = nullptr;
  std::string rootfs;          // absolute
  std::string etc_passwd;      // the rootfs's /etc/passwd content, for a named User
  std::string etc_group;       // and /etc/group
  uint64_t bounding_caps = 0;  // of security::DefaultCapabilities(), for the seccomp profile
  bool swap_accounting = false;
};

// The container spec for an instance: args (Entrypoint + Cmd, or Entrypoint + command),
// env (PATH default, image Env, metadata keys that are variable names, BERTH_USER_DATA,
// the request's env, product_name=OpenStack Nova), cwd, user,
// DefaultSpec's mounts and masks, pid/mount/ipc/uts/network namespaces (network: loopback
// only), hostname = the record's hostname, default capabilities and seccomp profile, flavor limits.
spec::Spec BuildInstanceSpec(const SpecInputs& in);
// [A-Za-z_][A-Za-z0-9_]*
bool IsEnvName(const std::string& name);

// "uid[:gid]" or "name[:group]" resolved against passwd/group text.
struct UserIds {
  uint32_t uid = 0;
  uint32_t gid = 0;
};
UserIds ResolveUser(const std::string& user, const std::string& passwd, const std::string& group);

}  // namespace berth::server
