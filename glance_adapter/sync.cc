#include "glance_adapter/sync.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <random>

#include <spdlog/spdlog.h>

#include "glance_adapter/errors.h"
#include "glance_adapter/formats.h"
#include "glance_adapter/verify.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/common/unique_fd.h"

namespace berth::glance {
namespace {

std::string RandomSuffix() {
  std::random_device rd;
  char buf[17];
  snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

void WriteAll(int fd, const char* data, size_t size, const char* what) {
  while (size) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == ENOTSOCK) n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) throw Error(ErrorKind::kSystem, std::string(what) + ": reader stopped");
      ThrowErrno("write", what);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

std::string Field(const rapidjson::Document& d, const char* key) {
  auto it = d.FindMember(key);
  return it != d.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// Where the importer reads a download: the socket's bytes, and at their end the
// download's verdict (a hash mismatch or a failed download throws there, before the
// importer commits anything).
class DownloadSource : public store::ByteSource {
 public:
  DownloadSource(int fd, std::mutex& mu, std::exception_ptr& error)
      : fd_(fd), mu_(mu), error_(error) {}
  size_t Read(void* buf, size_t size) override {
    ssize_t n;
    do {
      n = ::read(fd_, buf, size);
    } while (n < 0 && errno == EINTR);
    if (n < 0) ThrowErrno("read", "glance download stream");
    if (n == 0) {
      std::lock_guard lock(mu_);
      if (error_) std::rethrow_exception(error_);
    }
    return static_cast<size_t>(n);
  }

 private:
  int fd_;
  std::mutex& mu_;
  std::exception_ptr& error_;
};

}  // namespace

GlanceSync::GlanceSync(GlanceClient& glance, store::ImageStore& images, SyncOptions options)
    : glance_(glance), images_(images), options_(std::move(options)) {
  MakeDirs(options_.cache_dir, 0700);
  // Spool files of a process that died mid-download (one sync per store: ours are the only
  // glance-* files there).
  const std::string ingest = JoinPath(images_.root(), "ingest");
  for (const auto& n : ListDirectory(ingest)) {
    if (n.rfind("glance-", 0) == 0) ::unlink(JoinPath(ingest, n).c_str());
  }
}

GlanceSync::~GlanceSync() { StopPresync(); }

std::string GlanceSync::RecordPath(const std::string& glance_id) const {
  return JoinPath(options_.cache_dir, glance_id + ".json");
}

std::optional<SyncedImage> GlanceSync::Cached(const std::string& glance_id) const {
  if (!IsGlanceId(glance_id)) return std::nullopt;
  auto text = ReadFileIfExists(RecordPath(glance_id));
  if (!text) return std::nullopt;
  rapidjson::Document d;
  d.Parse(text->c_str());
  if (d.HasParseError() || !d.IsObject()) return std::nullopt;
  SyncedImage s;
  s.glance_id = glance_id;
  s.image_id = Field(d, "image_id");
  s.hash = Field(d, "hash");
  s.checksum = Field(d, "checksum");
  s.format = Field(d, "format");
  try {
    images_.Get(s.image_id);  // removed from the store since: not synced any more
  } catch (const Error&) {
    return std::nullopt;
  }
  return s;
}

void GlanceSync::SaveRecord(const SyncedImage& s) const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  for (auto [k, v] : {std::pair{"glance_id", &s.glance_id}, std::pair{"image_id", &s.image_id},
                      std::pair{"hash", &s.hash}, std::pair{"checksum", &s.checksum},
                      std::pair{"format", &s.format}}) {
    w.Key(k);
    w.String(v->c_str(), static_cast<rapidjson::SizeType>(v->size()));
  }
  w.Key("synced_at");
  w.Int64(static_cast<int64_t>(::time(nullptr)));
  w.EndObject();
  WriteFileAtomic(RecordPath(s.glance_id), std::string_view(buf.GetString(), buf.GetSize()), 0600);
}

SyncedImage GlanceSync::Resolve(const std::string& glance_id, const std::string& token,
                                const std::string& checksum_hint) {
  if (!IsGlanceId(glance_id)) {
    throw Error(ErrorKind::kInvalidArgument,
                "image \"" + glance_id + "\" is neither a local image nor a Glance image id");
  }
  if (!checksum_hint.empty()) {
    if (auto cached = Cached(glance_id); cached && cached->checksum == checksum_hint) {
      return *cached;
    }
  }
  std::shared_ptr<Flight> flight;
  bool leader = false;
  {
    std::lock_guard lock(flights_mu_);
    auto& slot = flights_[glance_id];
    if (!slot) {
      slot = std::make_shared<Flight>();
      leader = true;
    }
    flight = slot;
  }
  if (!leader) {
    std::unique_lock lock(flight->mu);
    flight->cv.wait(lock, [&] { return flight->done; });
    if (flight->error) std::rethrow_exception(flight->error);
    SyncedImage r = flight->result;
    r.downloaded = false;
    return r;
  }
  SyncedImage result;
  std::exception_ptr error;
  try {
    result = Sync(glance_id, token);
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(flights_mu_);
    flights_.erase(glance_id);
  }
  {
    std::lock_guard lock(flight->mu);
    flight->done = true;
    flight->result = result;
    flight->error = error;
  }
  flight->cv.notify_all();
  if (error) std::rethrow_exception(error);
  return result;
}

SyncedImage GlanceSync::Sync(const std::string& glance_id, const std::string& token) {
  ImageMeta meta = glance_.GetImage(glance_id, token);
  if (meta.status != "active") {
    throw RemoteError(ErrorKind::kConflict, 409, "glance_image_not_active",
                      "glance image " + glance_id + " is " + meta.status + ", not active");
  }
  std::string key = meta.HashKey();
  if (auto cached = Cached(glance_id); cached && !key.empty() && cached->hash == key) {
    if (cached->checksum != meta.checksum) {
      cached->checksum = meta.checksum;
      SaveRecord(*cached);
    }
    return *cached;
  }
  FormatDecision fmt = DecideFormat(meta.container_format, meta.disk_format, meta.properties);
  if (!fmt.ok) {
    throw RemoteError(ErrorKind::kInvalidArgument, 400, "glance_image_unacceptable",
                      "image: glance image " + glance_id + ": " + fmt.error);
  }
  auto started = std::chrono::steady_clock::now();
  store::ImportResult r;
  switch (fmt.kind) {
    case ArchiveKind::kRootfsTar:
      r = StreamImport(meta, token, fmt.sniff);
      break;
    case ArchiveKind::kDockerArchive:
      r = SpoolImport(meta, token, store::ImportFormat::kDockerArchive);
      break;
    case ArchiveKind::kOciArchive:
      r = SpoolImport(meta, token, store::ImportFormat::kOci);
      break;
  }
  downloads_++;
  SyncedImage s;
  s.glance_id = glance_id;
  s.image_id = r.image.id.str();
  s.hash = key;
  s.checksum = meta.checksum;
  s.format = std::string(ArchiveKindName(fmt.kind));
  s.downloaded = true;
  SaveRecord(s);
  spdlog::info(
      "glance image {} ({}, {}) synced as {} in {:.0f} ms ({} bytes, {} layers unpacked)",
      glance_id, meta.name, s.format, s.image_id,
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
      r.bytes_read, r.layers_unpacked);
  return s;
}

store::ImportResult GlanceSync::StreamImport(const ImageMeta& meta, const std::string& token,
                                             bool sniff) {
  ImageVerifier verifier(meta.os_hash_algo, meta.os_hash_value, meta.checksum);
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    ThrowErrno("socketpair", "glance download stream");
  }
  UniqueFd rd(sv[0]);
  auto wr = std::make_shared<UniqueFd>(sv[1]);
  std::mutex mu;
  std::exception_ptr producer_error;
  std::thread producer([&, wr] {
    try {
      std::string head;
      bool head_checked = !sniff;
      auto check_head = [&] {
        if (!LooksLikeArchive(head)) {
          throw RemoteError(
              ErrorKind::kInvalidArgument, 400, "glance_image_unacceptable",
              "image: glance image " + meta.id +
                  " (container_format bare, disk_format raw) is not a tar archive (a raw "
                  "disk image?); " +
                  WhatToUpload());
        }
        head_checked = true;
        WriteAll(wr->get(), head.data(), head.size(), "glance download stream");
        head.clear();
      };
      glance_.Download(meta.id, token, [&](const char* d, size_t n) {
        verifier.Update(d, n);
        if (!head_checked) {
          head.append(d, n);
          if (head.size() >= 512) check_head();
          return;
        }
        WriteAll(wr->get(), d, n, "glance download stream");
      });
      if (!head_checked) check_head();
      verifier.Finish();
    } catch (...) {
      std::lock_guard lock(mu);
      producer_error = std::current_exception();
    }
    wr->reset();  // the importer's end of data, after the verdict is recorded
  });
  wr.reset();
  ScopeGuard join([&] {
    rd.reset();  // a producer still writing gets EPIPE and stops
    producer.join();
  });
  DownloadSource source(rd.get(), mu, producer_error);
  store::ImportOptions io;
  io.format = store::ImportFormat::kRootfsTar;
  io.name = "glance/" + meta.id;
  try {
    return images_.ImportStream(source, "glance:" + meta.id, io);
  } catch (...) {
    // The importer may have failed on a body cut short; the download's reason is the better one.
    rd.reset();
    producer.join();
    join.Dismiss();
    std::lock_guard lock(mu);
    if (producer_error) std::rethrow_exception(producer_error);
    throw;
  }
}

store::ImportResult GlanceSync::SpoolImport(const ImageMeta& meta, const std::string& token,
                                            store::ImportFormat format) {
  ImageVerifier verifier(meta.os_hash_algo, meta.os_hash_value, meta.checksum);
  std::string path =
      JoinPath(JoinPath(images_.root(), "ingest"), "glance-" + RandomSuffix() + ".tar");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd) ThrowErrno("open", path);
  ScopeGuard remove([&] { ::unlink(path.c_str()); });
  glance_.Download(meta.id, token, [&](const char* d, size_t n) {
    verifier.Update(d, n);
    WriteAll(fd.get(), d, n, path.c_str());
  });
  verifier.Finish();
  fd.reset();
  store::ImportOptions io;
  io.format = format;
  io.name = "glance/" + meta.id;
  return images_.Import(path, io);
}

size_t GlanceSync::PresyncOnce() {
  size_t synced = 0;
  std::vector<ImageMeta> list;
  try {
    list = glance_.ListImages("", {{kPresyncProperty, "true"}, {"status", "active"}});
  } catch (const Error& e) {
    spdlog::warn("glance presync: listing images: {}", e.message());
    return 0;
  }
  for (const auto& m : list) {
    try {
      if (Resolve(m.id, "").downloaded) ++synced;
    } catch (const Error& e) {
      spdlog::warn("glance presync of image {}: {}", m.id, e.message());
    }
  }
  return synced;
}

void GlanceSync::StartPresync() {
  if (options_.presync_interval_s < 0 || presync_.joinable()) return;
  presync_ = std::thread([this] {
    std::unique_lock lock(presync_mu_);
    while (!presync_stop_) {
      lock.unlock();
      size_t n = PresyncOnce();
      if (n) spdlog::info("glance presync: {} images downloaded", n);
      lock.lock();
      if (options_.presync_interval_s == 0) break;
      presync_cv_.wait_for(lock, std::chrono::seconds(options_.presync_interval_s),
                           [this] { return presync_stop_; });
    }
  });
}

void GlanceSync::StopPresync() {
  {
    std::lock_guard lock(presync_mu_);
    presync_stop_ = true;
  }
  presync_cv_.notify_all();
  if (presync_.joinable()) presync_.join();
}

void UploadSnapshot(GlanceClient& glance, const SnapshotUpload& up,
                    const std::string& archive_path) {
  PrepareSnapshotImage(glance, up);
  glance.Upload(up.glance_id, up.token, archive_path);
}

void PrepareSnapshotImage(GlanceClient& glance, const SnapshotUpload& up) {
  std::optional<ImageMeta> current;
  try {
    current = glance.GetImage(up.glance_id, up.token);
  } catch (const RemoteError& e) {
    if (e.http_status() != 404) throw;
  }
  if (!current) {
    NewImage n;
    n.id = up.glance_id;
    n.name = up.name;
    n.container_format = up.container_format;
    n.disk_format = up.disk_format;
    n.properties = up.properties;
    glance.CreateImage(n, up.token);
  } else {
    if (current->status != "queued") {
      throw RemoteError(ErrorKind::kConflict, 409, "glance_image_not_queued",
                        "glance image " + up.glance_id + " is " + current->status +
                            "; a snapshot is uploaded into a queued image");
    }
    std::map<std::string, std::string> fields = up.properties;
    if (current->container_format != up.container_format)
      fields["container_format"] = up.container_format;
    if (current->disk_format != up.disk_format) fields["disk_format"] = up.disk_format;
    if (!fields.empty()) glance.UpdateImage(up.glance_id, fields, *current, up.token);
  }
}

}  // namespace berth::glance
