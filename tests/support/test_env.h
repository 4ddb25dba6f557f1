// Helpers shared by the test suites.
#pragma once

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

// The build and source trees (set by CTest; defaults for running binaries by hand).
std::string BuildDir();
std::string SourceDir();

}  // namespace berth::testing
