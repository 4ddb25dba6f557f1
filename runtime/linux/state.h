// The static record of a created container, <state_root>/<id>/state.json. Written once
// (atomically) by the creator before berth-monitor takes over; the changing part (status,
// exit code) is the monitor's status.json.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

namespace berth::container {

struct StateRecord {
  std::string oci_version;
  std::string id;
  std::string bundle;
  std::string rootfs;
  std::string cgroup_path;
  std::string created;  // RFC 3339, UTC
  pid_t init_pid = 0;
  pid_t monitor_pid = 0;
  // The init's start time (field 22 of /proc/<pid>/stat): tells the init from a later
  // process that reused its pid, when the monitor is gone.
  unsigned long long init_start_time = 0;
  bool user_namespace = false;
  std::map<std::string, std::string> annotations;
};

std::string SerializeStateRecord(const StateRecord& record);
// Throws kInvalidArgument naming the file on malformed content.
StateRecord ParseStateRecord(const std::string& json, const std::string& path);

std::string StateDir(const std::string& state_root, const std::string& id);
void WriteStateRecord(const std::string& state_dir, const StateRecord& record);
// kNotFound "container <id> does not exist" when there is no record.
StateRecord ReadStateRecord(const std::string& state_root, const std::string& id);

// Container ids: 1..64 of [A-Za-z0-9_.-], not starting with '.' (they become path names).
void ValidateContainerId(const std::string& id);

std::string NowRfc3339();

// Field 22 of /proc/<pid>/stat (clock ticks since boot); 0 when the process is gone or a
// zombie.
unsigned long long ProcessStartTime(pid_t pid);

}  // namespace berth::container
