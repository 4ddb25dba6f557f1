// Helpers shared by the test suites.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>

namespace berth::testing {

// A fresh directory under /tmp removed (recursively, never across mounts) when the
// object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

bool IsRoot();

// A container's init ignores signals it has no handler for (the kernel drops them for a
// pid namespace's init), so a test that signals a shell's `trap` must first wait until the
// trap is set: true once /proc/<pid>/status shows `sig` caught, false after the timeout.
bool WaitForSignalHandler(int pid, int sig, int timeout_ms = 5000);

// Fields of /proc/<pid>/stat; nullopt once the process is gone (reaped).
struct ProcStat {
  std::string comm;
  char state = '?';  // 'R', 'S', 'Z', ...
  pid_t ppid = -1;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);

// ListDirectory as a set, for comparing directory contents in assertions.
std::set<std::string> DirNames(const std::string& dir);

// The build and source trees (set by CTest; defaults for running binaries by hand).
std::string BuildDir();
std::string SourceDir();

}  // namespace berth::testing
