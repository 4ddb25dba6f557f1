// ImageStore::Diff and ImageStore::Commit: a container's writable layer as `docker diff`
// lines, and as a new layer + image.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/store/archive/apply.h"
#include "runtime/store/image/image_store.h"

namespace berth::store {
namespace {

std::string Rfc3339Now() {
  struct timespec ts;
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[96];
  std::snprintf(out, sizeof out, "%s.%09ldZ", buf, ts.tv_nsec);
  return out;
}

std::string RandomHex() {
  std::random_device rd;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

// An anonymous file in the store's ingest dir (same filesystem as the layers): a crash
// leaves nothing behind.
UniqueFd TempFile(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (fd) return fd;
  std::string path = dir + "/commit-XXXXXX";
  fd = UniqueFd(::mkostemp(path.data(), O_CLOEXEC));
  if (!fd) ThrowErrno("mkstemp", path);
  ::unlink(path.c_str());
  return fd;
}

using Value = rapidjson::Value;

// The parent's config with one more diff_id and history entry; every other field kept.
std::string NextConfig(const std::string& parent_json, const Digest& diff_id,
                       const CommitOptions& o) {
  rapidjson::Document doc;
  doc.Parse(parent_json.data(), parent_json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(ErrorKind::kInternal, "stored image config is not a JSON object");
  }
  auto& al = doc.GetAllocator();
  std::string now = Rfc3339Now();
  auto set = [&](Value& obj, const char* key, Value v) {
    if (obj.HasMember(key)) {
      obj[key] = v;
    } else {
      obj.AddMember(Value(key, al), v, al);
    }
  };
  set(doc, "created", Value(now.c_str(), al));
  if (!doc.HasMember("rootfs") || !doc["rootfs"].IsObject()) {
    set(doc, "rootfs", Value(rapidjson::kObjectType));
  }
  Value& rootfs = doc["rootfs"];
  set(rootfs, "type", Value("layers", al));
  if (!rootfs.HasMember("diff_ids") || !rootfs["diff_ids"].IsArray()) {
    set(rootfs, "diff_ids", Value(rapidjson::kArrayType));
  }
  rootfs["diff_ids"].PushBack(Value(diff_id.str().c_str(), al), al);
  if (!doc.HasMember("history") || !doc["history"].IsArray()) {
    set(doc, "history", Value(rapidjson::kArrayType));
  }
  Value h(rapidjson::kObjectType);
  h.AddMember("created", Value(now.c_str(), al), al);
  h.AddMember("created_by", Value(o.created_by.c_str(), al), al);
  if (!o.author.empty()) {
    h.AddMember("author", Value(o.author.c_str(), al), al);
    set(doc, "author", Value(o.author.c_str(), al));
  }
  if (!o.comment.empty()) h.AddMember("comment", Value(o.comment.c_str(), al), al);
  doc["history"].PushBack(h, al);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

std::vector<ChangeLine> ImageStore::Diff(const std::string& key) {
  if (layers_->Stat(key).kind != SnapshotKind::kActive) {
    throw Error(ErrorKind::kInvalidArgument, "diff " + key + ": not an active snapshot");
  }
  std::vector<ChangeLine> out;
  for (const DiffEntry& e : layers_->Changes(key)) {
    if (e.change) out.push_back({*e.change, "/" + e.changed_path});
  }
  std::sort(out.begin(), out.end(),
            [](const ChangeLine& a, const ChangeLine& b) { return a.path < b.path; });
  return out;
}

ImageRecord ImageStore::Commit(const std::string& key, const CommitOptions& options) {
  return WithContext("commit " + key, [&] {
    UniqueFd lock = LockStore(false);
    SnapshotInfo info = layers_->Stat(key);
    if (info.kind != SnapshotKind::kActive) {
      throw Error(ErrorKind::kInvalidArgument, "not an active snapshot");
    }
    // The image the snapshot was prepared on: the one whose top layer is its parent.
    std::optional<ImageRecord> base;
    if (!info.parent.empty()) {
      for (ImageRecord& r : List()) {
        if (r.top_chain().str() == info.parent) {
          base = std::move(r);
          break;
        }
      }
      if (!base) {
        throw Error(ErrorKind::kNotFound, "no image has layer " + info.parent + " on top");
      }
    }
    std::string parent_config =
        base ? blobs_.Read(base->id)
             : R"({"architecture":")" + HostArchitecture() +
                   R"(","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}})";

    // The changes as a layer tar in an anonymous file, hashed while written...
    UniqueFd tmp = TempFile(root_ + "/ingest");
    TarWriter writer(FdSink(tmp.get(), "commit layer"));
    LayerTar tar = WriteLayerTar(layers_->Changes(key), writer, options.ids);

    Digest parent_chain = base ? base->top_chain() : Digest();
    LayerRecord layer{tar.diff_id, ChainId(parent_chain, tar.diff_id),
                      tar.diff_id, tar.size,
                      tar.diff_id, tar.size};
    Rollback undo;
    // ...then applied into a new snapshot on the same parent, unless this very layer exists.
    if (!IsCommitted(layer.chain_id.str())) {
      if (::lseek(tmp.get(), 0, SEEK_SET) != 0) ThrowErrno("lseek", "commit layer");
      std::string extract = "commit-" + RandomHex();
      layers_->Prepare(extract, info.parent);
      ScopeGuard remove_extract([&] { layers_->Remove(extract); });
      FdSource source(std::move(tmp), "commit layer");
      LayerStream stream(source, {}, "commit layer");
      ApplyOptions apply;
      apply.style = layers_->whiteout_style();
      apply.preserve_owners = ::geteuid() == 0;
      ApplyLayer(stream, layers_->ApplyDir(extract), apply);
      LayerDigests got = stream.Finish();
      if (got.diff_id != tar.diff_id) {
        throw Error(ErrorKind::kInternal, "re-read layer digest " + got.diff_id.str() +
                                              " differs from the written " + tar.diff_id.str());
      }
      layers_->Commit(layer.chain_id.str(), extract);
      remove_extract.Dismiss();
      std::string name = layer.chain_id.str();
      undo.Add([this, name] { layers_->Remove(name); });
    }
    SaveLayerRecord(layer);

    std::string config = NextConfig(parent_config, tar.diff_id, options);
    ImageRecord rec;
    rec.config = ParseImageConfig(config);
    rec.id = Digest::Of(config);
    bool had = blobs_.Exists(rec.id);
    blobs_.Put(config, rec.id);
    if (!had) undo.Add([this, id = rec.id] { blobs_.Delete(id); });
    if (base) rec.layers = base->layers;
    rec.layers.push_back(layer);
    for (const auto& l : rec.layers) rec.size += l.size;
    if (!options.name.empty()) rec.names.push_back(options.name);
    rec.source_format = "commit";
    rec.source = key;
    rec.imported = static_cast<int64_t>(::time(nullptr));
    SaveRecordTakingNames(rec);
    undo.Commit();
    return rec;
  });
}

}  // namespace berth::store
