// The one place layer mounts are carried out.
#pragma once

#include <string>
#include <vector>

#include "runtime/store/layer/snapshotter.h"

namespace berth::store {

// Flags and data that mount(2) would get for one Mount (exposed for tests).
struct MountPlan {
  unsigned long flags = 0;
  std::string data;               // comma-joined filesystem options
  bool remount_readonly = false;  // bind mounts need a second call to become read-only
};
MountPlan PlanMount(const Mount& m);

// Mounts each entry on target in order. Overlay data that does not fit in one page goes
// through fsopen/fsconfig with one "lowerdir+" per layer.
void PerformMounts(const std::vector<Mount>& mounts, const std::string& target);

// Unmounts everything PerformMounts put on target (lazily when busy is allowed).
void UnmountAll(const std::string& target, bool lazy = false);

// The mount points of this process's mount namespace (/proc/self/mountinfo), in its order.
std::vector<std::string> MountPoints();
// Those strictly below `dir`, deepest first: the order to unmount them in.
std::vector<std::string> MountPointsBelow(const std::string& dir);

}  // namespace berth::store
