// The security side of an instance: what its flavor's extra specs ask for, the changes
// to the spec that make the default profile (user namespace, cgroup namespace, capability
// set) or a privileged one, and mounting its root so image layers appear owned by the
// instance's id range. docs/threat-model.md explains each choice.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "driver/server/instance.h"
#include "driver/server/mapping_userns_cache.h"
#include "driver/server/userns_ranges.h"
#include "runtime/spec/spec.h"
#include "runtime/store/layer/snapshotter.h"

namespace berth::server {

struct SecurityRequest {
  bool privileged = false;  // berth:privileged=true
  bool net_raw = false;     // berth:net_raw=true
};

// Reads berth:privileged and berth:net_raw ("true"/"false"). berth:privileged=true when
// `allow_privileged` is false is kInvalidArgument (400) saying which option allows it.
SecurityRequest ParseSecurityRequest(const Flavor& flavor, bool allow_privileged);

// Turns the spec BuildInstanceSpec made into the instance's profile and validates it.
// Default: CAP_NET_RAW dropped unless asked for; a cgroup namespace (the instance sees its
// own cgroup as the root, read-only); a user namespace mapping 0..size-1 to `range` when
// given. Privileged: every capability, no seccomp filter, no masked or read-only paths, no
// user namespace (the instance's root is the host's root).
void ApplySecurityProfile(spec::Spec& spec, const SecurityRequest& request,
                          const std::optional<IdRange>& range);

// Performs the snapshot's mounts on `rootfs`. With a range: an overlay's lower layers are
// mounted idmapped (0 -> range.uid) under `scratch` first and unmounted once the overlay
// holds them, and the upper directory's root is given to the range's root; a bind-mounted
// private copy (the vfs driver) has its ownership shifted once, on first mount. The mapping
// namespace comes from `userns_cache`.
void MountInstanceRootfs(const std::vector<store::Mount>& mounts, const std::string& rootfs,
                         const std::optional<IdRange>& range, const std::string& scratch,
                         MappingUsernsCache& userns_cache);

}  // namespace berth::server
