// Content-addressed blob store (containerd's content store, reduced): blobs live at
// <root>/blobs/sha256/<hex>; writes go to a temp file in <root>/ingest/, are hashed while
// written, checked against the expected digest and size on commit, renamed into place and
// the directory fsynced. A blob path is only ever built from a validated Digest.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/store/blob/digest.h"

namespace berth::store {

class BlobStore;

// One ingest in progress. Not committed -> the temp file is removed on destruction.
class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) = delete;
  BlobWriter(const BlobWriter&) = delete;
  ~BlobWriter();

  void Write(const void* data, size_t size);
  void Write(std::string_view data) { Write(data.data(), data.size()); }
  uint64_t written() const { return written_; }

  // Checks digest (and size when given); on mismatch throws kInvalidArgument naming both
  // digests and removes the temp file. Committing a blob that already exists is fine.
  Digest Commit(const std::optional<Digest>& expected = std::nullopt,
                std::optional<uint64_t> expected_size = std::nullopt);

 private:
  friend class BlobStore;
  BlobWriter(const BlobStore* store, std::string temp_path, UniqueFd fd);
  void Abort();

  const BlobStore* store_;
  std::string temp_path_;
  UniqueFd fd_;
  Sha256 hash_;
  uint64_t written_ = 0;
};

class BlobStore {
 public:
  explicit BlobStore(std::string root);

  BlobWriter Ingest() const;
  // Convenience: ingest a whole buffer.
  Digest Put(std::string_view data, const std::optional<Digest>& expected = std::nullopt) const;

  std::string Path(const Digest& d) const;
  bool Exists(const Digest& d) const;
  // kNotFound when missing.
  std::string Read(const Digest& d) const;
  uint64_t Size(const Digest& d) const;
  // Missing is kNotFound.
  void Delete(const Digest& d) const;
  std::vector<Digest> List() const;

  const std::string& root() const { return root_; }

 private:
  friend class BlobWriter;
  std::string root_;
  std::string blob_dir_;
  std::string ingest_dir_;
};

}  // namespace berth::store
