// Small file helpers that throw berth::Error with the path and errno.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth {

std::string ReadFile(const std::string& path);
// nullopt when the file does not exist; other failures throw.
std::optional<std::string> ReadFileIfExists(const std::string& path);

// Writes the whole content to an existing file without truncating first (cgroup and
// proc files want one write(2) of the whole value).
void WriteToFile(const std::string& path, std::string_view content);

enum class Durability {
  // fsync the file and its directory: a power loss leaves the old or the new content.
  // For records that outlive the host's uptime (berthd's instances and images).
  kDurable,
  // Rename only: readers never see a torn file, but a power loss may lose the write. For
  // runtime state under /run, which describes processes that a power loss ends anyway.
  kAtomicOnly,
};

// While one lives on a thread, kDurable writes made on that thread are renamed into place at
// once but owe their fsyncs, which Release() hands over: a spawn pays them on another
// thread while the container is being made, before its commit point. Nothing owed is
// synced if it is dropped unreleased (the spawn failed and removes those files).
class DeferredFsyncs {
 public:
  DeferredFsyncs();
  ~DeferredFsyncs();
  DeferredFsyncs(const DeferredFsyncs&) = delete;
  DeferredFsyncs& operator=(const DeferredFsyncs&) = delete;

  // Stops deferring; returns the files written, in order.
  std::vector<std::string> Release();

 private:
  friend void WriteFileAtomic(const std::string&, std::string_view, mode_t, Durability);
  DeferredFsyncs* previous_;
  bool active_ = true;
  std::vector<std::string> files_;
};

// fsyncs each file, then each of their directories once: what kDurable would have done.
void FsyncFilesAndDirs(const std::vector<std::string>& files);

// Replaces the file through a temp file beside it and rename(2).
void WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode = 0644,
                     Durability durability = Durability::kDurable);

// WriteFileAtomic (kDurable) in two steps, so that writing and syncing the content can be
// done before the file has to appear: StageFile writes `path`'s content under a temp name
// beside it and fsyncs it; PublishStagedFile renames it into place and fsyncs the
// directory (one journal commit instead of two on the caller's path). A staged file that
// is never published is removed by DiscardStagedFile (or with its directory).
struct StagedFile {
  std::string tmp;
  std::string path;
};
StagedFile StageFile(const std::string& path, std::string_view content, mode_t mode);
void PublishStagedFile(const StagedFile& file);
void DiscardStagedFile(const StagedFile& file);

// mkdir -p; existing directories are fine.
void MakeDirs(const std::string& path, mode_t mode = 0755);

// rm -rf that never crosses into another mounted filesystem; missing is fine.
void RemoveTree(const std::string& path);

bool PathExists(const std::string& path);

enum class IfMissing { kEmpty, kThrow };
// The names in `dir` except "." and "..", sorted. A `dir` that does not exist (or is not a
// directory) gives an empty list, or kNotFound with kThrow; any other failure throws with
// the path and errno.
std::vector<std::string> ListDirectory(const std::string& dir,
                                       IfMissing if_missing = IfMissing::kEmpty);

// Joins two paths with exactly one slash between them.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace berth
