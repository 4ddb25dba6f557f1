// berthd's side of OpenStack: the Keystone client (service token, validation of callers'
// tokens), the Glance client and the sync, made from [keystone] and [glance]. The
// instance manager asks it for the store image of a spawn's `image` (a local image, else a
// Glance image id); the snapshot route asks it to upload a snapshot into Glance.
#pragma once

#include <memory>
#include <string>

#include "driver/server/config.h"
#include "driver/server/json_util.h"
#include "glance_adapter/glance.h"
#include "glance_adapter/keystone.h"
#include "glance_adapter/sync.h"
#include "runtime/store/image/image_store.h"

namespace berth::server {

// Builds the adapter's options from berthd's config (pure; unit-tested).
glance::KeystoneOptions KeystoneOptionsFrom(const Config& config);
glance::GlanceOptions GlanceOptionsFrom(const Config& config);

class GlanceImages {
 public:
  GlanceImages(const Config& config, store::ImageStore& images);
  ~GlanceImages();

  // Starts the background presync (when [glance] presync is on).
  void Start();
  void Stop();

  // The store reference to boot from for POST /v1/instances: `image_ref` itself when the
  // store has it, else (a UUID) the store image synced from the Glance image of that id, with the
  // request's "token" (else the service token) and its "glance".checksum as a cache hint.
  std::string ResolveForSpawn(const std::string& image_ref, const rapidjson::Value& body);

  // POST .../snapshot naming a Glance image_id, before the commit: creates the queued
  // Glance image, or checks that it is queued and sets its formats and properties (409
  // otherwise). The body may give "token", "container_format", "disk_format" (docker and
  // raw by default; berthd uploads docker-archives) and "properties".
  glance::SnapshotUpload PrepareSnapshot(const std::string& glance_id, const std::string& name,
                                         const rapidjson::Value& body);
  // After the commit: exports `image_id` (a store image) as a docker-archive into a file in
  // `tmp_dir` (sent again from the start on a retry; removed afterwards) and PUTs it.
  void UploadSnapshot(const glance::SnapshotUpload& upload, const std::string& image_id,
                      const std::string& tmp_dir);

  // True when Keystone says the token is valid and carries an allowed role (only with
  // [keystone] accept_tokens and service credentials).
  bool AcceptsKeystoneToken(const std::string& token);

  glance::GlanceSync& sync() { return *sync_; }

 private:
  const Config& config_;
  store::ImageStore& images_;
  std::unique_ptr<glance::KeystoneClient> keystone_;
  std::unique_ptr<glance::GlanceClient> glance_;
  std::unique_ptr<glance::GlanceSync> sync_;
};

}  // namespace berth::server
