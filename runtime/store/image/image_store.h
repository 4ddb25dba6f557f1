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

#include <time.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
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
  // The tar Berth rebuilds from the unpacked layer (export): known after a commit or the
  // first export; equal to diff_id for layers Berth wrote itself.
  std::optional<Digest> tar_digest;
  uint64_t tar_size = 0;
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

struct CommitOptions {
  std::string name;  // moved from any other image
  std::string author;
  std::string comment;
  std::string created_by = "berth-image commit";
  IdShift ids;  // the snapshot's files are owned by a user namespace range's host ids
};

struct ChangeLine {
  ChangeKind kind;
  std::string path;  // absolute inside the container ("/etc/passwd")
};

enum class ExportFormat { kDockerArchive, kOci };
ExportFormat ParseExportFormat(const std::string& name);  // docker-archive|oci

struct ExportResult {
  Digest config;                    // digest of the exported config (the image id elsewhere)
  std::vector<Digest> diff_ids;     // of the exported layer tars
  bool diff_ids_rewritten = false;  // a rebuilt tar differs from the recorded diff_id
  uint64_t bytes = 0;               // archive bytes written
};

struct GcResult {
  size_t removals_finished = 0;  // rm's interrupted by a crash, completed
  size_t layers = 0;             // committed layers no image or snapshot used
  size_t snapshots = 0;          // leftover extract-/commit- snapshots of crashed imports
  size_t layer_records = 0;      // layerdb records without a layer
  size_t blobs = 0;              // unreferenced blobs and ingest leftovers
  size_t dirs = 0;               // snapshot directories without metadata
};

class ImageStore {
 public:
  // root holds blobs/, ingest/, images/, layerdb/ and layers/<driver>/.
  ImageStore(std::string root, const std::string& driver);

  ImportResult Import(const std::string& path, const ImportOptions& options);
  // A rootfs tar (options.format must be kRootfsTar) read once from `source` (a download
  // that must not be copied first): the layer is unpacked as the bytes arrive and committed
  // only after the source reached its end without throwing, so a source that verifies a
  // checksum at its end can still refuse the import. `source_name` is recorded as the source.
  ImportResult ImportStream(ByteSource& source, const std::string& source_name,
                            const ImportOptions& options);

  // Read from disk once and kept: a spawn looks its image up, and reading every record and
  // config on each lookup cost O(images) file reads and parses. Our own writes drop what is
  // kept; a record written by another process is seen once the images directory's
  // modification time (or ctime) moves, i.e. not for a write in the same clock tick (the
  // kernel's coarse clock, a few ms) as the last read. berthd owns its store.
  std::vector<ImageRecord> List() const;
  // By full id, "sha256:<id>", unique id prefix (4+ chars) or name. kNotFound otherwise.
  ImageRecord Get(const std::string& ref) const;
  // Crash-safe: marks the record (images/<id>.removing), removes the layers no other image
  // or snapshot uses and the config blob, then the mark. Gc() finishes an interrupted one.
  void Remove(const std::string& ref);

  // The changes of an Active snapshot against its image, sorted by path (`docker diff`).
  std::vector<ChangeLine> Diff(const std::string& key);
  // The changes of Active snapshot `key` become a new layer on its parent chain and a new
  // image (the parent image's config with the new diff_id and a history entry). The
  // snapshot stays as it is. The caller keeps writers away (berthd freezes the container).
  ImageRecord Commit(const std::string& key, const CommitOptions& options);

  // Streams the image as a tar to fd (a file, pipe or socket), layers rebuilt from the
  // unpacked layers, uncompressed. When a rebuilt layer's digest differs from the recorded
  // diff_id (layers imported from other tools' tars), the exported config and manifest
  // carry the rebuilt digests: the exported image has another id.
  ExportResult Export(const std::string& ref, ExportFormat format, int fd);
  // To a file: written beside it and renamed into place when complete.
  ExportResult ExportToFile(const std::string& ref, ExportFormat format, const std::string& path);

  // Removes what nothing references: layers no image uses and no active snapshot or view
  // sits on, blobs no image uses, leftovers of crashed imports, commits and removals.
  GcResult Gc();

  Snapshotter& layers() { return *layers_; }
  BlobStore& blobs() { return blobs_; }
  const std::string& root() const { return root_; }

  // Exposed for tests.
  static std::string RecordToJson(const ImageRecord& r);
  // with_config false: the config blob is not read (records being removed).
  ImageRecord RecordFromJson(const std::string& json, const std::string& path,
                             bool with_config = true) const;

 private:
  friend class Importer;
  void SaveRecord(const ImageRecord& r);
  // Saves r and removes its names from every other image.
  void SaveRecordTakingNames(const ImageRecord& r);
  // Import, commit and rm hold it shared, gc exclusive: gc never sees half-made work.
  UniqueFd LockStore(bool exclusive) const;
  void FinishRemoval(const std::string& marker_path);
  LayerRecord EnsureTarDigest(const LayerRecord& layer);
  bool IsCommitted(const std::string& name) const;
  void SaveLayerRecord(const LayerRecord& l);
  std::optional<LayerRecord> LoadLayerRecord(const Digest& chain) const;
  std::string RecordPath(const Digest& id) const;
  // After a record is written or marked removed: List reads the directory again.
  void ForgetListed();

  std::string root_;
  BlobStore blobs_;
  std::unique_ptr<Snapshotter> layers_;

  // List's records and the directory's times they were read at; `listed_generation_` moves
  // with every ForgetListed, so that a List racing a write never keeps what it read before.
  mutable std::mutex listed_mu_;
  mutable std::optional<std::vector<ImageRecord>> listed_;
  mutable struct timespec listed_mtime_ = {}, listed_ctime_ = {};
  uint64_t listed_generation_ = 0;
};

}  // namespace berth::store
