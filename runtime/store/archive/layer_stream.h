// One pass over a layer blob: the compressed bytes are hashed (the blob digest) as they
// are read, decompressed by libarchive (gzip, zstd or none, detected from the data), the
// decompressed bytes hashed (the diff_id) and counted against a cap (decompression bombs),
// and handed to a tar reader whose entries the caller extracts. Finish() drains what the
// tar reader left (trailer, padding) so both digests cover every byte.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/blob/digest.h"

struct archive;
struct archive_entry;

namespace berth::store {

// Where layer bytes come from.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Up to size bytes; 0 at the end. Throws Error on failure.
  virtual size_t Read(void* buf, size_t size) = 0;
};

class FdSource : public ByteSource {
 public:
  FdSource(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  size_t Read(void* buf, size_t size) override;

 private:
  UniqueFd fd_;
  std::string path_;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string_view data) : data_(data) {}
  size_t Read(void* buf, size_t size) override;

 private:
  std::string_view data_;
};

// Owning libarchive handles.
struct ArchiveFree {
  void operator()(struct archive* a) const;
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

// The current entry of an open archive read by libarchive (a layer inside docker-archive).
class ArchiveEntrySource : public ByteSource {
 public:
  ArchiveEntrySource(struct archive* a, std::string name) : a_(a), name_(std::move(name)) {}
  size_t Read(void* buf, size_t size) override;

 private:
  struct archive* a_;
  std::string name_;
};

struct StreamLimits {
  // Cap on decompressed bytes of one layer (and on the sizes its entries declare).
  uint64_t max_uncompressed = uint64_t{64} << 30;
};

struct LayerDigests {
  Digest blob;     // of the bytes as read
  Digest diff_id;  // of the decompressed tar stream
  uint64_t blob_size = 0;
  uint64_t diff_size = 0;
};

class LayerStream {
 public:
  LayerStream(ByteSource& source, StreamLimits limits, std::string what);
  ~LayerStream();
  LayerStream(const LayerStream&) = delete;
  LayerStream& operator=(const LayerStream&) = delete;

  // The next tar entry, or nullptr at the end of the archive.
  struct archive_entry* Next();
  // The tar reader, for archive_read_data_block on the current entry.
  struct archive* tar() {
    return tar_.get();
  }
  // Throws the error behind a failed libarchive call (ours from a callback, or libarchive's).
  [[noreturn]] void Fail(const std::string& context);
  const std::string& what() const { return what_; }
  const StreamLimits& limits() const { return limits_; }

  // Reads the rest of the input and returns the digests.
  LayerDigests Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
  ArchivePtr decoder_;  // filters only, raw format: yields the decompressed stream
  ArchivePtr tar_;      // tar format only, reading from decoder_
  StreamLimits limits_;
  std::string what_;
  uint64_t declared_ = 0;
};

}  // namespace berth::store
