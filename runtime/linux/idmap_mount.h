// Idmapped mounts (mount_setattr MOUNT_ATTR_IDMAP, Linux >= 5.12; overlayfs accepts idmapped
// layers since 5.19): a view of a directory tree in which ownership is shifted by a user
// namespace's mapping, without touching the files. Berth uses them so that one copy of each
// image layer serves instances that each have their own uid/gid range.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/spec/spec.h"

namespace berth::container {

// A user namespace that exists only to carry `uid`/`gid` mappings for idmapped mounts: a
// short-lived child unshares it, the mappings are written from outside, and the returned
// fd keeps the namespace alive after the child is gone. kInvalidArgument for empty maps.
UniqueFd MakeMappingUserns(const std::vector<spec::IdMapping>& uid,
                           const std::vector<spec::IdMapping>& gid);

// Mounts `source` on `target` (an existing directory) with ownership seen through
// `userns_fd`'s mapping: an inode owned by k on disk appears as the host id that the
// namespace maps k to. Errors name the call and path (EINVAL from mount_setattr: the
// filesystem does not support idmapping).
void IdmappedBind(const std::string& source, const std::string& target, int userns_fd,
                  bool readonly);

// Whether this kernel and the filesystem holding `dir` accept an idmapped mount, and an
// overlay whose lower layer is one. Makes and removes its scratch entries under `dir`.
struct IdmapSupport {
  bool idmapped_mount = false;
  bool overlay_over_idmapped = false;
  std::string detail;  // the failing call and errno when one is false
};
IdmapSupport ProbeIdmapSupport(const std::string& dir);

// Adds `delta` to the owner and group of every entry under `root` (lchown, no symlinks
// followed, setuid/setgid and file capabilities kept as they were), stopping at mount
// points. The fallback where idmapped mounts are unavailable; returns the entry count.
size_t ShiftOwnership(const std::string& root, uid_t uid_delta, gid_t gid_delta);

}  // namespace berth::container
