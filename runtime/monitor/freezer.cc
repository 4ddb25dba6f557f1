#include "runtime/monitor/freezer.h"

#include <errno.h>
#include <limits.h>

#include "runtime/monitor/mini.h"

namespace berth::monitor {

using mini::FixedText;

FreezerKind FreezerKindFor(const char* path) {
  const char* base = mini::BaseName(path);
  if (mini::StrEq(base, "freezer.state")) return FreezerKind::kV1;
  if (mini::StrEq(base, "cgroup.freeze")) return FreezerKind::kV2;
  return FreezerKind::kNone;
}

namespace {

// The file whose content says whether the freeze is complete, and the text that says so.
struct Probe {
  FixedText<PATH_MAX> path;
  const char* done_line;  // v1: the whole state; v2: a line of cgroup.events
};

void MakeProbe(FreezerKind kind, const char* path, bool frozen, Probe* probe) {
  if (kind == FreezerKind::kV1) {
    probe->path.Add(path);
    probe->done_line = frozen ? "FROZEN" : "THAWED";
    return;
  }
  const char* base = mini::BaseName(path);
  probe->path.Add(path, static_cast<size_t>(base - path)).Add("cgroup.events");
  probe->done_line = nullptr;
  (void)frozen;
}

// 1 when done, 0 when not yet, -errno on failure.
int ProbeDone(FreezerKind kind, const Probe& probe, bool frozen) {
  char buf[512];
  if (mini::ReadSmallFile(probe.path.c_str(), buf, sizeof buf) < 0) return -errno;
  if (kind == FreezerKind::kV1) return mini::StartsWith(buf, probe.done_line) ? 1 : 0;
  long long v = mini::FindKeyedValue(buf, "frozen");
  if (v < 0) return -EIO;
  return (v == 1) == frozen ? 1 : 0;
}

const char* Value(FreezerKind kind, bool frozen) {
  if (kind == FreezerKind::kV1) return frozen ? "FROZEN" : "THAWED";
  return frozen ? "1" : "0";
}

}  // namespace

int SetFrozen(FreezerKind kind, const char* path, bool frozen, long timeout_ms) {
  if (kind == FreezerKind::kNone) return EOPNOTSUPP;
  Probe probe;
  MakeProbe(kind, path, frozen, &probe);
  if (probe.path.overflow()) return ENAMETOOLONG;
  const long long deadline = mini::MonotonicMs() + timeout_ms;
  long pause_ms = 1;
  for (;;) {
    // v1 may sit in FREEZING while a task is busy in the kernel; writing FROZEN again
    // retries the tasks that were not frozen yet.
    int err = mini::WriteSmallFile(path, Value(kind, frozen));
    if (err != 0) return err;
    int done = ProbeDone(kind, probe, frozen);
    if (done < 0) return -done;
    if (done == 1) return 0;
    if (mini::MonotonicMs() >= deadline) break;
    mini::SleepMs(pause_ms);
    if (pause_ms < 16) pause_ms *= 2;
  }
  if (frozen) mini::WriteSmallFile(path, Value(kind, false));
  return EBUSY;
}

}  // namespace berth::monitor
