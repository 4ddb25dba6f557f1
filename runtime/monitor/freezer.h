// Freezing a container's cgroup for berth-monitor's "pause"/"resume", on either cgroup
// version: v1 freezer.state (write FROZEN, read until it says FROZEN) or v2 cgroup.freeze
// (write 1, read cgroup.events until "frozen 1"). The version follows the file's name.
#pragma once

namespace berth::monitor {

enum class FreezerKind { kNone, kV1, kV2 };

// kNone when the file's basename is neither freezer.state nor cgroup.freeze.
FreezerKind FreezerKindFor(const char* path);

// Freezes (or thaws) and waits until the kernel reports it done, at most timeout_ms.
// A freeze that does not settle in time is undone. Returns 0 or an errno (EBUSY on
// timeout).
int SetFrozen(FreezerKind kind, const char* path, bool frozen, long timeout_ms);

}  // namespace berth::monitor
