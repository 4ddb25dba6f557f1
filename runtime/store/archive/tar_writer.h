// Writes tar streams (layer tars and the outer tar of an exported image) with libarchive's
// pax writer, hashing and counting every byte as it goes out, so a layer's diff_id is known
// the moment its last block is written. Output is deterministic: only what the entry says
// is written (no user/group names, no atime/ctime), so the same tree gives the same bytes.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/store/blob/digest.h"

struct archive;

namespace berth::store {

// Where the bytes go; throws berth::Error on failure.
using ByteSink = std::function<void(const void* data, size_t size)>;
// A sink writing everything to fd (a file, pipe or socket); the fd stays the caller's.
ByteSink FdSink(int fd, std::string what);
// A sink that drops the bytes (measuring passes).
ByteSink NullSink();

struct TarEntry {
  std::string path;  // relative, no leading "/" or "./"
  mode_t type = S_IFREG;
  mode_t perm = 0644;  // incl. setuid/setgid/sticky
  uint32_t uid = 0, gid = 0;
  int64_t mtime = 0, mtime_nsec = 0;
  int64_t size = 0;      // regular files
  std::string link;      // symlink target
  std::string hardlink;  // earlier member this one is a hardlink to
  std::vector<std::pair<std::string, std::string>> xattrs;  // sorted by name
};

class TarWriter {
 public:
  explicit TarWriter(ByteSink sink);
  ~TarWriter();
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // Writes the header; a regular file's data follows through Data() (exactly size bytes).
  void Header(const TarEntry& entry);
  void Data(const void* data, size_t size);
  // Header plus the content read from fd (entry.size bytes; a file that shrank is an error).
  void AddFile(const TarEntry& entry, int fd, const std::string& host_path);
  // Header plus content from memory.
  void AddBytes(const TarEntry& entry, std::string_view data);

  // Writes the end-of-archive blocks; returns the digest of the whole stream.
  Digest Finish();
  uint64_t size() const { return size_; }

 private:
  static long Write(struct archive*, void* self, const void* data, size_t size);  // la_ssize_t
  void Check(int r, const std::string& what);

  ByteSink sink_;
  Sha256 hash_;
  uint64_t size_ = 0;
  struct archive* a_ = nullptr;
  std::optional<Error> error_;  // a sink's error, rethrown after libarchive returns
  bool finished_ = false;
};

// Fills a TarEntry from a host file's lstat and its user.* / security.* xattrs (the ones
// extraction keeps; trusted.overlay.* and other trusted names are store-internal).
TarEntry EntryFromHost(const std::string& host_path, const std::string& member_path,
                       const struct stat& st);

}  // namespace berth::store
