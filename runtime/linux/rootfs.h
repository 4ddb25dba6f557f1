// Carries out a RootfsPlan inside the container's new mount namespace: propagation, the
// spec's mounts, /dev, pivot_root, masks, read-only paths and root. Runs in the container's
// init before exec; throws berth::Error naming the step and path.
#pragma once

#include <functional>
#include <string>

#include "runtime/linux/mount_plan.h"

namespace berth::container {

// Resolves `path` under `root` as if `root` were "/": symlinks are followed, but ".." and
// absolute link targets are clamped to `root`, so an image's symlink cannot send a mount
// outside its root filesystem. Components that do not exist are appended as they are.
std::string SecureJoin(const std::string& root, const std::string& path);

// Mounts the plan into the new root and pivots into it. `before_cgroup_mounts`, when set,
// runs once, just before the first mount at or below /sys/fs/cgroup (or, without one,
// after the mounts): a shell's init joins its cgroups there, which are made meanwhile.
void SetupRootfs(const RootfsPlan& plan, const std::function<void()>& before_cgroup_mounts = {});

}  // namespace berth::container
