#include "driver/server/glance_images.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include "driver/server/names.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"

namespace berth::server {

glance::KeystoneOptions KeystoneOptionsFrom(const Config& c) {
  glance::KeystoneOptions o;
  o.auth_url = c.keystone_auth_url;
  o.username = c.keystone_username;
  o.password = c.keystone_password;
  o.user_domain_name = c.keystone_user_domain_name;
  o.project_name = c.keystone_project_name;
  o.project_domain_name = c.keystone_project_domain_name;
  o.refresh_margin_s = c.keystone_refresh_margin;
  o.validation_cache_s = c.keystone_token_cache_seconds;
  o.allowed_roles = c.keystone_allowed_roles;
  o.http.timeout_s = c.keystone_timeout;
  o.http.connect_timeout_s = std::min(c.keystone_timeout, c.glance_connect_timeout);
  o.http.ca_file = c.keystone_ca_file;
  o.http.insecure = c.keystone_insecure;
  o.retry.max_attempts = c.glance_retries + 1;
  o.retry.initial_backoff_ms = c.glance_retry_backoff_ms;
  o.retry.max_backoff_ms = c.glance_retry_backoff_max_ms;
  return o;
}

glance::GlanceOptions GlanceOptionsFrom(const Config& c) {
  glance::GlanceOptions o;
  o.api_url = c.glance_api_url;
  o.interface = c.glance_interface;
  o.region_name = c.glance_region_name;
  o.http.connect_timeout_s = c.glance_connect_timeout;
  o.http.low_speed_time_s = c.glance_stall_timeout;
  o.http.ca_file = c.glance_ca_file;
  o.http.insecure = c.glance_insecure;
  o.retry.max_attempts = c.glance_retries + 1;
  o.retry.initial_backoff_ms = c.glance_retry_backoff_ms;
  o.retry.max_backoff_ms = c.glance_retry_backoff_max_ms;
  return o;
}

GlanceImages::GlanceImages(const Config& config, store::ImageStore& images)
    : config_(config), images_(images) {
  if (config.keystone()) {
    keystone_ = std::make_unique<glance::KeystoneClient>(KeystoneOptionsFrom(config));
  }
  glance_ = std::make_unique<glance::GlanceClient>(GlanceOptionsFrom(config), keystone_.get());
  glance::SyncOptions so;
  so.cache_dir = JoinPath(config.state_dir, "glance");
  so.presync_interval_s = config.glance_presync ? config.glance_presync_interval : -1;
  sync_ = std::make_unique<glance::GlanceSync>(*glance_, images, so);
}

GlanceImages::~GlanceImages() { Stop(); }

void GlanceImages::Start() {
  // Presync lists images with berthd's own token: without service credentials there is
  // nobody to list them as.
  if (!config_.glance_presync) return;
  if (keystone_ && keystone_->has_credentials()) {
    sync_->StartPresync();
  } else {
    spdlog::warn("glance presync is on but [keystone] has no service credentials: off");
  }
}

void GlanceImages::Stop() {
  if (sync_) sync_->StopPresync();
}

std::string GlanceImages::ResolveForSpawn(const std::string& image_ref,
                                          const rapidjson::Value& body) {
  try {
    images_.Get(image_ref);
    return image_ref;
  } catch (const Error& e) {
    // Glance ids are UUIDs: another unknown name is a missing local image, not a Glance call.
    if (e.kind() != ErrorKind::kNotFound || !IsUuid(image_ref)) throw;
  }
  std::string token = OptString(body, "token", "token").value_or("");
  std::string hint;
  if (const rapidjson::Value* g = OptObject(body, "glance", "glance")) {
    // Only a hint about this very image counts.
    if (OptString(*g, "id", "glance.id").value_or(image_ref) == image_ref) {
      if (auto it = g->FindMember("checksum"); it != g->MemberEnd() && it->value.IsString()) {
        hint = it->value.GetString();
      }
    }
  }
  glance::SyncedImage s = sync_->Resolve(image_ref, token, hint);
  spdlog::info("image {}: glance image synced as {}{}", image_ref, s.image_id,
               s.downloaded ? " (downloaded)" : " (cached)");
  return s.image_id;
}

glance::SnapshotUpload GlanceImages::PrepareSnapshot(const std::string& glance_id,
                                                     const std::string& name,
                                                     const rapidjson::Value& body) {
  glance::SnapshotUpload up;
  up.glance_id = glance_id;
  up.name = name;
  up.token = OptString(body, "token", "token").value_or("");
  up.container_format = OptString(body, "container_format", "container_format").value_or("docker");
  up.disk_format = OptString(body, "disk_format", "disk_format").value_or("raw");
  if (up.container_format != "docker") {
    throw Error(ErrorKind::kInvalidArgument,
                "container_format: berthd uploads snapshots as docker-archives (docker)");
  }
  up.properties =
      OptStringMap(body, "properties", "properties").value_or(std::map<std::string, std::string>{});
  glance::PrepareSnapshotImage(*glance_, up);
  return up;
}

void GlanceImages::UploadSnapshot(const glance::SnapshotUpload& up, const std::string& image_id,
                                  const std::string& tmp_dir) {
  std::string path = JoinPath(tmp_dir, "export-" + RandomHex(8) + ".tar");
  ScopeGuard remove([&] { ::unlink(path.c_str()); });
  auto started = std::chrono::steady_clock::now();
  images_.ExportToFile(image_id, store::ExportFormat::kDockerArchive, path);
  glance_->Upload(up.glance_id, up.token, path);
  spdlog::info("snapshot {} uploaded to glance image {} in {:.0f} ms", image_id, up.glance_id,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count());
}

bool GlanceImages::AcceptsKeystoneToken(const std::string& token) {
  if (!keystone_ || !keystone_->has_credentials() || !config_.keystone_accept_tokens) return false;
  return keystone_->Authorizes(token);
}

}  // namespace berth::server
