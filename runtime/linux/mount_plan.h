// Plan, then execute: the container's root filesystem is first described as data (which
// mounts, device nodes, masks) from the spec, then carried out in the container's mount
// namespace by rootfs.cc. Tests compare plans without root; only the executor needs it.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/cgroup/cgroup.h"
#include "runtime/spec/spec.h"

namespace berth::container {

// Flags and data for mount(2) from an OCI options list ("ro", "nosuid", "size=64k", ...).
struct MountFlags {
  unsigned long flags = 0;        // MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...
  unsigned long propagation = 0;  // MS_PRIVATE|MS_REC, MS_SLAVE, ... applied after mounting
  std::string data;               // options the filesystem interprets, comma-joined

  bool operator==(const MountFlags&) const = default;
};
MountFlags ParseMountOptions(const std::vector<std::string>& options);

struct MountEntry {
  std::string source;
  std::string destination;  // absolute inside the container
  std::string type;
  MountFlags flags;
  bool bind = false;
  // For a read-only (or nosuid/nodev/noexec) bind: the kernel ignores those flags on the
  // first bind mount, so a remount carries them.
  bool remount_after_bind = false;
  // >= 0: a premade tree (premade_mounts.h) moved onto `destination` whole; the rest of the
  // entry is unused.
  int tree_fd = -1;

  bool operator==(const MountEntry&) const = default;
};

struct DeviceNode {
  std::string path;  // absolute inside the container, e.g. /dev/null
  char type = 'c';   // 'c', 'b', 'p'
  unsigned major = 0;
  unsigned minor = 0;
  mode_t mode = 0666;
  uid_t uid = 0;
  gid_t gid = 0;

  bool operator==(const DeviceNode&) const = default;
};

struct RootfsPlan {
  std::string rootfs;  // absolute host path
  // >= 0: the root as a detached mount tree (open_tree), moved onto `rootfs` instead of
  // binding it: a shell's mount namespace was copied before the root was mounted.
  int rootfs_tree_fd = -1;
  // >= 0: the sysctls are written below this proc (premade_mounts.h) instead of /proc.
  int sysctl_proc_fd = -1;
  unsigned long root_propagation = 0;  // applied to "/" before anything else
  std::vector<MountEntry> mounts;      // in order, before pivot_root
  bool populate_dev = false;           // /dev is a fresh tmpfs: add nodes + symlinks
  bool bind_devices = false;           // in a user namespace mknod fails: bind host nodes
  std::vector<DeviceNode> devices;     // default nodes + spec's linux.devices
  std::vector<std::pair<std::string, std::string>> dev_symlinks;  // target, link path
  std::vector<std::string> masked_paths;                          // after pivot_root
  std::vector<std::string> readonly_paths;
  bool readonly_root = false;
  std::string hostname;  // empty: leave as is
  std::string console;   // host path of the pty slave to bind at /dev/console
  std::map<std::string, std::string> sysctl;
};

// Inputs that come from the host rather than the spec.
struct RootfsHostInfo {
  bool new_user_namespace = false;
  bool new_cgroup_namespace = false;
  bool new_network_namespace = false;
  cgroup::CgroupHost cgroup_host;
  // The container's own cgroup directory per v1 controller, used to fill a "cgroup" mount
  // when there is no cgroup namespace (like runc: a tmpfs with each controller's own dir
  // bound read-only).
  std::map<std::string, std::string> cgroup_dirs;
  std::string unified_dir;  // container's dir in the cgroup2 hierarchy, if any
};

// Builds the plan. Errors (kInvalidArgument) name the field: "mounts[3].destination".
RootfsPlan BuildRootfsPlan(const spec::Spec& spec, const RootfsHostInfo& host);

// The nodes every container gets in a fresh /dev.
std::vector<DeviceNode> DefaultDevices();

// The device cgroup rules a container runs with: the spec's own, then access to the
// default nodes, the pty devices and the spec's linux.devices (as runc and crun add them),
// so a spec that denies everything still gets a working /dev.
std::vector<spec::DeviceRule> EffectiveDeviceRules(const spec::Spec& spec);

}  // namespace berth::container
