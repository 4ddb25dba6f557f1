// The image store: image records (<root>/images/<id>.json, written atomically) over the blob
// store (configs) and a layer driver (unpacked layers, one committed snapshot per chain id,
// shared by every image that has it), plus per-layer records (<root>/layerdb/<chain>.json).
//
// Import reads a plain root-filesystem tarball, a docker-archive (`docker save`) or an OCI
// image layout (directory or tar). Each layer is read once: blob digest, diff_id and the
// extraction happen in the same pass; a layer already present (by chain id) is not read at
// all. A failed import removes everything it created: half-extracted layers, layers it
// committed, the config blob.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/store/archive/layer_stream.h"
#include "runtime/store/blob/blob_store.h"
#include "runtime/store/image/manifest.h"
#include "runtime/store/layer/snapshotter.h"

namespace berth::store {

enum class ImportFormat { kAuto, kRootfsTar, kDockerArchive, kOci };
ImportFormat ParseImportFormat(const std::string& name);  // auto|rootfs-tar|docker-archive|oci
std::string_view ImportFormatName(ImportFormat f);

struct LayerRecord {
  Digest diff_id;
  Digest chain_id;
  Digest blob;        // the digest of the blob it came from (may equal diff_id)
  uint64_t size = 0;  // uncompressed tar bytes
};

struct ImageRecord {
  Digest id;  // the config digest
  std::vector<std::string> names;
  std::optional<Digest> manifest;
  std::vector<LayerRecord> layers;  // base first
  std::string source_format;
  std::string source;
  int64_t imported = 0;  // unix seconds
  uint64_t size = 0;
  ImageConfig config;  // parsed from the config blob

  const Digest& top_chain() const { return layers.back().chain_id; }
};

struct ImportOptions {
  ImportFormat format = ImportFormat::kAuto;
  std::string name;  // added to the image's names (moved from any other image)
  StreamLimits limits;
};

struct ImportResult {
  ImageRecord image;
  size_t layers_unpacked = 0;  // 0 when every layer was already present
  uint64_t bytes_read = 0;     // blob bytes read from the source
};

class ImageStore {
 public:
  // root holds blobs/, ingest/, images/, layerdb/ and layers/<driver>/.
  ImageStore(std::string root, const std::string& driver);

  ImportResult Import(const std::string& path, const ImportOptions& options);

  std::vector<ImageRecord> List() const;
  // By full id, "sha256:<id>", unique id prefix (4+ chars) or name. kNotFound otherwise.
  ImageRecord Get(const std::string& ref) const;
  // Removes the record, then layers no other image or snapshot uses, then the config blob.
  void Remove(const std::string& ref);

  Snapshotter& layers() { return *layers_; }
  BlobStore& blobs() { return blobs_; }
  const std::string& root() const { return root_; }

  // Exposed for tests.
  static std::string RecordToJson(const ImageRecord& r);
  ImageRecord RecordFromJson(const std::string& json, const std::string& path) const;

 private:
  friend class Importer;
  void SaveRecord(const ImageRecord& r);
  void SaveLayerRecord(const LayerRecord& l);
  std::optional<LayerRecord> LoadLayerRecord(const Digest& chain) const;
  std::string RecordPath(const Digest& id) const;

  std::string root_;
  BlobStore blobs_;
  std::unique_ptr<Snapshotter> layers_;
};

}  // namespace berth::store
