// Filesystem walks the local drivers share: disk usage of a tree and a faithful copy.
#pragma once

#include <string>

#include "runtime/store/layer/snapshotter.h"

namespace berth::store {

// Allocated bytes and distinct inodes below dir (hardlinks counted once), never crossing
// into another filesystem.
SnapshotUsage TreeUsage(const std::string& dir);

// Copies src's content into the existing directory dst keeping modes, owners, times,
// xattrs, symlinks, hardlinks (as hardlinks), device nodes and fifos. Never follows a
// symlink. Owners are kept only when running as root.
void CopyTree(const std::string& src, const std::string& dst);

}  // namespace berth::store
