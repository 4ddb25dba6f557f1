// The sync: a Glance image becomes an image of the layer store, once. Each synced image has
// a record <cache_dir>/<glance id>.json {glance_id, hash, checksum, image_id, format} naming
// the store image its data became and the hash that data had. A boot whose Glance image has
// the recorded hash uses the store image without downloading; a changed image (another
// os_hash_value) is downloaded again. Concurrent boots of an image not yet synced share one
// download (single flight). A failed download leaves nothing: the import rolls back its
// layers, the spool file is removed, no record is written.
//
// Data path: a rootfs tarball streams from Glance straight into the layer extraction (a
// socketpair between the download thread and the importer; the hashes are checked before
// the importer sees the end of the data, so a mismatch aborts the import before its commit).
// A docker-archive or OCI archive needs random access to its members (manifest.json comes
// last in `docker save` output), so it is spooled to <store>/ingest/glance-*.tar, verified,
// imported and removed on every path (a crash leaves it to the store's gc, which empties
// ingest/).
//
// Images whose property berth_presync=true are synced in the background: at start and
// every presync_interval_s seconds.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "glance_adapter/glance.h"
#include "runtime/store/image/image_store.h"

namespace berth::glance {

inline constexpr const char* kPresyncProperty = "berth_presync";

struct SyncOptions {
  std::string cache_dir;         // the records (berthd: <state_dir>/glance)
  int presync_interval_s = 600;  // 0: once at start; negative: no presync
};

struct SyncedImage {
  std::string glance_id;
  std::string image_id;     // the store's image id (sha256:...)
  std::string hash;         // ImageMeta::HashKey() of the data it came from
  std::string checksum;     // Glance's md5 checksum, to match Nova's image_meta without a call
  std::string format;       // docker-archive | oci-archive | rootfs-tar
  bool downloaded = false;  // this call downloaded it
};

class GlanceSync {
 public:
  // Removes spool files a crashed predecessor left in <store>/ingest.
  GlanceSync(GlanceClient& glance, store::ImageStore& images, SyncOptions options);
  ~GlanceSync();

  // The store image for Glance image `glance_id`, downloading it when it is not synced or
  // changed. `token`: the caller's (empty: the service token). `checksum_hint`: the md5
  // the caller already knows (Nova's image_meta): when it equals the record's, the store
  // image is used without asking Glance.
  SyncedImage Resolve(const std::string& glance_id, const std::string& token,
                      const std::string& checksum_hint = "");
  // From the record only (and only while the store still has the image).
  std::optional<SyncedImage> Cached(const std::string& glance_id) const;

  // Lists the images with berth_presync=true and syncs each; returns how many were
  // downloaded. Failures are logged, not thrown.
  size_t PresyncOnce();
  void StartPresync();
  void StopPresync();

  uint64_t downloads() const { return downloads_.load(); }

 private:
  struct Flight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    SyncedImage result;
    std::exception_ptr error;
  };

  SyncedImage Sync(const std::string& glance_id, const std::string& token);
  store::ImportResult StreamImport(const ImageMeta& meta, const std::string& token, bool sniff);
  store::ImportResult SpoolImport(const ImageMeta& meta, const std::string& token,
                                  store::ImportFormat format);
  void SaveRecord(const SyncedImage& s) const;
  std::string RecordPath(const std::string& glance_id) const;

  GlanceClient& glance_;
  store::ImageStore& images_;
  SyncOptions options_;
  std::atomic<uint64_t> downloads_{0};

  std::mutex flights_mu_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;

  std::mutex presync_mu_;
  std::condition_variable presync_cv_;
  bool presync_stop_ = false;
  std::thread presync_;
};

// Publishes a snapshot: the archive at `archive_path` (a docker-archive) goes into Glance
// image `glance_id` — created (POST /v2/images, with that id) when Glance has no such
// image, else its formats and properties set on the queued record (PATCH) — then PUT as
// its data (204). The formats are container_format=docker, disk_format=raw unless given.
struct SnapshotUpload {
  std::string glance_id;
  std::string name;
  std::string container_format = "docker";
  std::string disk_format = "raw";
  std::map<std::string, std::string> properties;
  std::string token;  // empty: the service token
};
void UploadSnapshot(GlanceClient& glance, const SnapshotUpload& upload,
                    const std::string& archive_path);
// The first half of UploadSnapshot: makes (or checks and fills in) the queued record, so a
// caller can refuse the snapshot before committing anything (409 for an image that is
// not queued).
void PrepareSnapshotImage(GlanceClient& glance, const SnapshotUpload& upload);

}  // namespace berth::glance
