// Read access to the files of an image archive by name: an OCI layout directory, or a tar
// (docker-archive, OCI archive), possibly gzip/zstd compressed. Names are normalised
// ("./manifest.json" == "manifest.json"). Nothing here extracts anything.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runtime/store/archive/layer_stream.h"

namespace berth::store {

class Bundle {
 public:
  virtual ~Bundle() = default;
  virtual bool Has(const std::string& name) const = 0;
  // The whole member (at most kMaxJsonDocument bytes); kNotFound / kInvalidArgument.
  virtual std::string ReadSmall(const std::string& name) = 0;
  // A stream of the member's bytes.
  virtual std::unique_ptr<ByteSource> Open(const std::string& name) = 0;
};

// Directory: members are opened beneath the directory with RESOLVE_BENEATH and without
// following symlinks; only regular files are read.
std::unique_ptr<Bundle> OpenDirBundle(const std::string& dir);
// Tar file: one indexing pass over the headers (small JSON members are kept in memory);
// every Open re-reads the file up to the member. Duplicate member names are refused.
std::unique_ptr<Bundle> OpenTarBundle(const std::string& file);

}  // namespace berth::store
