// Mount trees a shell's init makes while it waits, for the paths of a root that do not
// depend on the instance: /dev (a tmpfs with the device nodes bound in, its symlinks, and
// /dev/pts, /dev/shm, /dev/mqueue mounted on it), /sys (sysfs of the shell's network
// namespace, with the masks the plan puts under it) and /proc (proc of its pid namespace,
// with the plan's masks and read-only paths under it). Each is a detached tree (fsmount,
// open_tree) held by one descriptor; moving it (move_mount) takes its submounts with it,
// so a claim puts a whole tree in place with one call instead of ~15 mounts.
//
// A tree stands for part of one plan (the shape's default spec's). A claim uses it only
// when the claimed spec's plan asks for exactly that part; otherwise that path is mounted
// the cold way and the tree is dropped. A tree the kernel refuses to make (move_mount into
// a detached tree needs Linux 6.15) is simply not made. An unclaimed shell's trees are
// detached: they end with the descriptors, with the shell's init.
#pragma once

#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/linux/mount_plan.h"

namespace berth::container {

struct PremadeTree {
  UniqueFd fd;  // the tree; -1: not made
  // What of the plan it was made from it stands for.
  std::vector<MountEntry> mounts;  // in the plan's order; mounts[0] is the tree's root
  std::vector<DeviceNode> devices;
  std::vector<std::pair<std::string, std::string>> dev_symlinks;
  std::vector<std::string> masked_paths;    // applied in the tree already
  std::vector<std::string> readonly_paths;  // likewise
  bool binds_dev_null = false;              // a masked file has the host's /dev/null
  // /proc: its root alone (no masks, no read-only /proc/sys), for the claim's sysctls.
  UniqueFd plain;
  std::string unmade;  // why fd is -1 (BERTH_TIMING prints it)
};

struct PremadeMounts {
  unsigned long root_propagation = 0;  // the plan's: moved trees are private
  PremadeTree dev;
  PremadeTree sys;
  PremadeTree proc;
};

// The trees of `plan` (as in a user namespace: device nodes bound from the host's /dev).
// Runs in the shell's init, in its namespaces, as root of its user namespace. Never throws:
// a tree that cannot be made is left unmade, with the reason.
PremadeMounts PremakeMounts(const RootfsPlan& plan);

// Puts each premade tree that matches `plan` exactly in place of the mounts, nodes,
// symlinks and masks it stands for (a MountEntry with tree_fd). Returns the destinations
// that will be moved in ("/dev", "/sys", "/proc"). A /sys tree not used is closed at once (its
// superblock would be the cold mount's); a /dev tree not used is left to the init's exec to
// close (descriptors are close-on-exec): closing a detached tree unmounts it, which waits
// for an RCU grace period, better not spent before the init reports ready.
std::vector<std::string> UsePremadeMounts(RootfsPlan& plan, PremadeMounts& premade);

}  // namespace berth::container
