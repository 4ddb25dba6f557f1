#include "runtime/store/image/image_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <random>
#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/store/archive/apply.h"
#include "runtime/store/archive/path.h"
#include "runtime/store/archive/utf8_locale.h"
#include "runtime/store/image/bundle.h"

namespace berth::store {
namespace {

constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

// "blobs/sha256/<hex>" or "<hex>.json" (docker-archive configs) name their digest.
std::optional<Digest> DigestFromMemberName(const std::string& name) {
  static const std::string kBlobs = "blobs/sha256/";
  if (name.rfind(kBlobs, 0) == 0 && Digest::IsValid("sha256:" + name.substr(kBlobs.size()))) {
    return Digest::FromHex(name.substr(kBlobs.size()));
  }
  if (name.size() == 69 && name.compare(64, 5, ".json") == 0 &&
      Digest::IsValid("sha256:" + name.substr(0, 64))) {
    return Digest::FromHex(name.substr(0, 64));
  }
  return std::nullopt;
}

std::string BlobMember(const Digest& d) { return "blobs/sha256/" + d.hex(); }

struct PlannedLayer {
  std::string member;  // empty: the source file itself (rootfs tar)
  std::optional<Digest> blob;
  std::optional<uint64_t> blob_size;
};

struct Plan {
  ImportFormat format = ImportFormat::kAuto;
  std::string config_json;  // empty for a rootfs tar until its layer is read
  std::optional<Digest> config_digest;
  std::optional<uint64_t> config_size;
  std::optional<Digest> manifest;
  std::vector<PlannedLayer> layers;
  std::vector<std::string> names;
};

std::string VerifiedBlob(Bundle& b, const OciDescriptor& d, const std::string& what) {
  std::string member = BlobMember(d.digest);
  if (!b.Has(member))
    throw Error(ErrorKind::kInvalidArgument, what + " " + d.digest.str() + " missing");
  std::string data = b.ReadSmall(member);
  Digest actual = Digest::Of(data);
  if (actual != d.digest) {
    throw Error(ErrorKind::kInvalidArgument,
                what + " digest mismatch: expected " + d.digest.str() + ", got " + actual.str());
  }
  if (static_cast<uint64_t>(d.size) != data.size()) {
    throw Error(ErrorKind::kInvalidArgument, what + " " + d.digest.str() + ": size " +
                                                 std::to_string(data.size()) +
                                                 ", descriptor says " + std::to_string(d.size));
  }
  return data;
}

Plan PlanDocker(Bundle& b, const std::string& want_name) {
  auto entries = ParseDockerManifest(b.ReadSmall("manifest.json"));
  const DockerManifestEntry* pick = nullptr;
  if (entries.size() == 1) {
    pick = &entries[0];
  } else {
    for (const auto& e : entries) {
      for (const auto& t : e.repo_tags) {
        if (!want_name.empty() && t == want_name) pick = &e;
      }
    }
    if (!pick) {
      throw Error(ErrorKind::kInvalidArgument,
                  "archive holds " + std::to_string(entries.size()) +
                      " images; name one of their RepoTags with --name");
    }
  }
  Plan plan;
  plan.format = ImportFormat::kDockerArchive;
  auto member = [&](const std::string& raw, const char* what) {
    std::vector<std::string> parts;
    try {
      parts = SanitizeMemberPath(raw);
    } catch (Error& e) {
      e.WithContext(std::string("manifest.json ") + what);
      throw;
    }
    std::string name = JoinComponents(parts);
    if (!b.Has(name)) {
      throw Error(ErrorKind::kInvalidArgument,
                  std::string("manifest.json ") + what + " \"" + name + "\" is not in the archive");
    }
    return name;
  };
  std::string config = member(pick->config, "Config");
  plan.config_json = b.ReadSmall(config);
  plan.config_digest = DigestFromMemberName(config);
  if (pick->layers.size() > kMaxLayers) {
    throw Error(ErrorKind::kInvalidArgument, "image has " + std::to_string(pick->layers.size()) +
                                                 " layers; the limit is " +
                                                 std::to_string(kMaxLayers));
  }
  for (const auto& l : pick->layers) {
    PlannedLayer pl;
    pl.member = member(l, "layer");
    pl.blob = DigestFromMemberName(pl.member);
    plan.layers.push_back(pl);
  }
  plan.names = pick->repo_tags;
  return plan;
}

Plan PlanOci(Bundle& b, const std::string& want_name) {
  {
    std::string layout = b.ReadSmall("oci-layout");
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(layout.data(), layout.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("imageLayoutVersion") ||
        !doc["imageLayoutVersion"].IsString()) {
      throw Error(ErrorKind::kInvalidArgument,
                  "oci-layout: want {\"imageLayoutVersion\": \"1.0.0\"}");
    }
  }
  auto manifests = ParseOciIndex(b.ReadSmall("index.json"));
  std::optional<OciDescriptor> pick;
  std::string ref;
  // An index may point at another index (multi-platform images): follow one level.
  for (int depth = 0; depth < 2 && !pick; ++depth) {
    std::vector<OciDescriptor> candidates;
    for (const auto& m : manifests) {
      auto it = m.annotations.find(kRefNameAnnotation);
      if (!want_name.empty() && depth == 0 && it != m.annotations.end() &&
          it->second != want_name && manifests.size() > 1) {
        continue;
      }
      if (!m.architecture.empty() && (m.architecture != HostArchitecture() || m.os != "linux"))
        continue;
      candidates.push_back(m);
    }
    if (candidates.empty())
      throw Error(ErrorKind::kInvalidArgument,
                  "index.json: no manifest for linux/" + HostArchitecture());
    if (candidates.size() > 1) {
      throw Error(ErrorKind::kInvalidArgument,
                  "index.json lists " + std::to_string(candidates.size()) +
                      " images; name one by its " + kRefNameAnnotation + " with --name");
    }
    if (auto it = candidates[0].annotations.find(kRefNameAnnotation);
        it != candidates[0].annotations.end()) {
      ref = it->second;
    }
    if (IsIndexMediaType(candidates[0].media_type)) {
      manifests = ParseOciIndex(VerifiedBlob(b, candidates[0], "index"));
    } else {
      pick = candidates[0];
    }
  }
  if (!pick) throw Error(ErrorKind::kInvalidArgument, "index.json: indexes nested too deep");
  OciManifest m = ParseOciManifest(VerifiedBlob(b, *pick, "manifest"));
  if (m.layers.size() > kMaxLayers) {
    throw Error(ErrorKind::kInvalidArgument, "image has " + std::to_string(m.layers.size()) +
                                                 " layers; the limit is " +
                                                 std::to_string(kMaxLayers));
  }
  Plan plan;
  plan.format = ImportFormat::kOci;
  plan.manifest = pick->digest;
  plan.config_json = VerifiedBlob(b, m.config, "config");
  plan.config_digest = m.config.digest;
  for (const auto& l : m.layers) {
    std::string member = BlobMember(l.digest);
    if (!b.Has(member)) {
      throw Error(ErrorKind::kInvalidArgument, "layer blob " + l.digest.str() + " missing");
    }
    plan.layers.push_back({member, l.digest, static_cast<uint64_t>(l.size)});
  }
  // A bare tag ("latest") is not much of a name on its own; keep it anyway.
  if (!ref.empty()) plan.names.push_back(ref);
  return plan;
}

int64_t Now() { return static_cast<int64_t>(::time(nullptr)); }

std::string RandomSuffix() {
  std::random_device rd;
  char buf[17];
  snprintf(buf, sizeof buf, "%08x%08x", rd(), rd());
  return buf;
}

}  // namespace

ImportFormat ParseImportFormat(const std::string& name) {
  if (name == "auto" || name.empty()) return ImportFormat::kAuto;
  if (name == "rootfs-tar") return ImportFormat::kRootfsTar;
  if (name == "docker-archive") return ImportFormat::kDockerArchive;
  if (name == "oci") return ImportFormat::kOci;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown format \"" + name + "\" (auto, rootfs-tar, docker-archive, oci)");
}

std::string_view ImportFormatName(ImportFormat f) {
  switch (f) {
    case ImportFormat::kAuto:
      return "auto";
    case ImportFormat::kRootfsTar:
      return "rootfs-tar";
    case ImportFormat::kDockerArchive:
      return "docker-archive";
    case ImportFormat::kOci:
      return "oci";
  }
  return "unknown";
}

// One import: the plan is made from the archive's JSON before storage is touched; then
// layers are unpacked base first, each undone if a later step fails.
class Importer {
 public:
  Importer(ImageStore& store, const std::string& path, const ImportOptions& options,
           ByteSource* stream = nullptr)
      : store_(store), path_(path), options_(options), stream_(stream) {}

  ImportResult Run() {
    ScopedUtf8Locale utf8;
    if (stream_) return RunStream();
    struct stat st;
    if (::stat(path_.c_str(), &st) != 0) ThrowErrno("stat", path_);
    std::unique_ptr<Bundle> bundle =
        S_ISDIR(st.st_mode) ? OpenDirBundle(path_) : OpenTarBundle(path_);
    ImportFormat format = options_.format;
    if (format == ImportFormat::kAuto) {
      if (bundle->Has("manifest.json")) {
        format = ImportFormat::kDockerArchive;
      } else if (bundle->Has("oci-layout") && bundle->Has("index.json")) {
        format = ImportFormat::kOci;
      } else {
        format = ImportFormat::kRootfsTar;
      }
    }
    if (format == ImportFormat::kRootfsTar && S_ISDIR(st.st_mode)) {
      throw Error(ErrorKind::kInvalidArgument, path_ + ": a rootfs import needs a tar file");
    }
    Plan plan;
    switch (format) {
      case ImportFormat::kDockerArchive:
        plan = PlanDocker(*bundle, options_.name);
        break;
      case ImportFormat::kOci:
        plan = PlanOci(*bundle, options_.name);
        break;
      default:
        plan.format = ImportFormat::kRootfsTar;
        plan.layers.push_back({});
        break;
    }
    ImageConfig config;
    if (!plan.config_json.empty()) {
      config = ParseImageConfig(plan.config_json);
      if (config.diff_ids.size() != plan.layers.size()) {
        throw Error(ErrorKind::kInvalidArgument,
                    "image config lists " + std::to_string(config.diff_ids.size()) +
                        " diff_ids for " + std::to_string(plan.layers.size()) + " layers");
      }
    }

    return Finish(bundle.get(), plan, config);
  }

 private:
  // A rootfs tar read once from a stream (a download): one layer, no random access needed.
  ImportResult RunStream() {
    if (options_.format != ImportFormat::kRootfsTar) {
      throw Error(ErrorKind::kInvalidArgument, "a streamed import reads a rootfs tar only; " +
                                                   std::string(ImportFormatName(options_.format)) +
                                                   " needs a file");
    }
    Plan plan;
    plan.format = ImportFormat::kRootfsTar;
    plan.layers.push_back({});
    ImageConfig config;
    return Finish(nullptr, plan, config);
  }

  // Unpacks the planned layers (bundle: null for a stream) and saves the image record.
  ImportResult Finish(Bundle* bundle, Plan& plan, ImageConfig& config) {
    Rollback undo;
    ImportResult result;
    std::vector<LayerRecord> layers;
    Digest parent;
    for (size_t i = 0; i < plan.layers.size(); ++i) {
      std::optional<Digest> diff_id;
      if (!config.diff_ids.empty()) diff_id = config.diff_ids[i];
      std::string what =
          "layer " + std::to_string(i + 1) + "/" + std::to_string(plan.layers.size());
      LayerRecord rec = WithContext(
          what, [&] { return UnpackLayer(bundle, plan.layers[i], diff_id, parent, undo, result); });
      parent = rec.chain_id;
      layers.push_back(rec);
    }
    if (plan.format == ImportFormat::kRootfsTar) plan.config_json = RootfsConfig(layers);
    if (config.diff_ids.empty()) config = ParseImageConfig(plan.config_json);

    bool had_config = store_.blobs_.Exists(Digest::Of(plan.config_json));
    Digest id = WithContext(
        "config", [&] { return store_.blobs_.Put(plan.config_json, plan.config_digest); });
    if (!had_config) undo.Add([this, id] { store_.blobs_.Delete(id); });

    ImageRecord rec;
    rec.id = id;
    rec.layers = layers;
    rec.manifest = plan.manifest;
    rec.source_format = std::string(ImportFormatName(plan.format));
    rec.source = path_;
    rec.imported = Now();
    rec.config = config;
    for (const auto& l : layers) rec.size += l.size;
    std::vector<std::string> names = plan.names;
    if (!options_.name.empty()) names.push_back(options_.name);
    if (auto existing = Existing(id)) {
      rec.names = existing->names;
      rec.imported = existing->imported;
    }
    for (const auto& n : names) {
      if (std::find(rec.names.begin(), rec.names.end(), n) == rec.names.end())
        rec.names.push_back(n);
    }
    store_.SaveRecordTakingNames(rec);
    undo.Commit();
    result.image = rec;
    return result;
  }

  std::optional<ImageRecord> Existing(const Digest& id) {
    if (!PathExists(store_.RecordPath(id))) return std::nullopt;
    return store_.Get(id.hex());
  }

  LayerRecord UnpackLayer(Bundle* bundle, const PlannedLayer& pl,
                          const std::optional<Digest>& diff_id, const Digest& parent,
                          Rollback& undo, ImportResult& result) {
    Snapshotter& layers = *store_.layers_;
    std::string parent_key = parent.empty() ? "" : parent.str();
    if (diff_id) {
      Digest chain = ChainId(parent, *diff_id);
      if (Committed(chain.str())) {
        if (auto known = store_.LoadLayerRecord(chain)) return *known;
        return LayerRecord{*diff_id, chain, pl.blob.value_or(*diff_id), 0, {}, 0};
      }
    }
    std::string key = "extract-" + RandomSuffix() + "-" + (diff_id ? diff_id->hex() : "rootfs");
    layers.Prepare(key, parent_key);
    ScopeGuard remove_extract([&] { layers.Remove(key); });

    std::unique_ptr<ByteSource> owned;
    ByteSource* source = stream_;
    if (source) {
    } else if (pl.member.empty()) {
      UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd) ThrowErrno("open", path_);
      owned = std::make_unique<FdSource>(std::move(fd), path_);
      source = owned.get();
    } else {
      owned = bundle->Open(pl.member);
      source = owned.get();
    }
    LayerStream stream(*source, options_.limits, pl.member.empty() ? path_ : pl.member);
    ApplyOptions apply;
    apply.style = layers.whiteout_style();
    apply.preserve_owners = ::geteuid() == 0;
    ApplyLayer(stream, layers.ApplyDir(key), apply);
    LayerDigests got = stream.Finish();
    result.bytes_read += got.blob_size;
    if (pl.blob && *pl.blob != got.blob) {
      throw Error(ErrorKind::kInvalidArgument,
                  "blob digest mismatch: expected " + pl.blob->str() + ", got " + got.blob.str());
    }
    if (pl.blob_size && *pl.blob_size != got.blob_size) {
      throw Error(ErrorKind::kInvalidArgument, "blob size mismatch: expected " +
                                                   std::to_string(*pl.blob_size) + ", got " +
                                                   std::to_string(got.blob_size));
    }
    if (diff_id && *diff_id != got.diff_id) {
      throw Error(ErrorKind::kInvalidArgument,
                  "diff_id mismatch: expected " + diff_id->str() + ", got " + got.diff_id.str());
    }
    LayerRecord rec{got.diff_id, ChainId(parent, got.diff_id), got.blob, got.diff_size, {}, 0};
    try {
      layers.Commit(rec.chain_id.str(), key);
    } catch (const Error& e) {
      // Someone else (or an earlier rootfs import) committed the same layer: use theirs.
      if (e.kind() != ErrorKind::kAlreadyExists) throw;
      return rec;  // the guard removes our copy
    }
    remove_extract.Dismiss();
    store_.SaveLayerRecord(rec);
    std::string name = rec.chain_id.str();
    undo.Add([this, name, rec] {
      store_.layers_->Remove(name);
      ::unlink((store_.root_ + "/layerdb/" + rec.chain_id.hex() + ".json").c_str());
    });
    result.layers_unpacked++;
    return rec;
  }

  bool Committed(const std::string& name) { return store_.IsCommitted(name); }

  std::string RootfsConfig(const std::vector<LayerRecord>& layers) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("architecture");
    w.String(HostArchitecture().c_str());
    w.Key("os");
    w.String("linux");
    w.Key("config");
    w.StartObject();
    w.EndObject();
    w.Key("rootfs");
    w.StartObject();
    w.Key("type");
    w.String("layers");
    w.Key("diff_ids");
    w.StartArray();
    for (const auto& l : layers) w.String(l.diff_id.str().c_str());
    w.EndArray();
    w.EndObject();
    w.Key("history");
    w.StartArray();
    w.StartObject();
    w.Key("created_by");
    w.String("berth-image import (rootfs tar)");
    w.EndObject();
    w.EndArray();
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
  }

  ImageStore& store_;
  std::string path_;
  ImportOptions options_;
  ByteSource* stream_ = nullptr;
};

ImageStore::ImageStore(std::string root, const std::string& driver)
    : root_(std::move(root)),
      blobs_(root_),
      layers_(OpenSnapshotter(driver.empty() ? "overlay" : driver,
                              root_ + "/layers/" + (driver.empty() ? "overlay" : driver))) {
  MakeDirs(root_ + "/images", 0700);
  MakeDirs(root_ + "/layerdb", 0700);
}

ImportResult ImageStore::Import(const std::string& path, const ImportOptions& options) {
  UniqueFd lock = LockStore(false);
  return WithContext("import " + path, [&] { return Importer(*this, path, options).Run(); });
}

ImportResult ImageStore::ImportStream(ByteSource& source, const std::string& source_name,
                                      const ImportOptions& options) {
  UniqueFd lock = LockStore(false);
  return WithContext("import " + source_name,
                     [&] { return Importer(*this, source_name, options, &source).Run(); });
}

std::string ImageStore::RecordPath(const Digest& id) const {
  return root_ + "/images/" + id.hex() + ".json";
}

std::string ImageStore::RecordToJson(const ImageRecord& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&](const std::string& s) {
    w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("id");
  str(r.id.str());
  w.Key("names");
  w.StartArray();
  for (const auto& n : r.names) str(n);
  w.EndArray();
  if (r.manifest) {
    w.Key("manifest");
    str(r.manifest->str());
  }
  w.Key("layers");
  w.StartArray();
  for (const auto& l : r.layers) {
    w.StartObject();
    w.Key("diff_id");
    str(l.diff_id.str());
    w.Key("chain_id");
    str(l.chain_id.str());
    w.Key("blob");
    str(l.blob.str());
    w.Key("size");
    w.Uint64(l.size);
    w.EndObject();
  }
  w.EndArray();
  w.Key("source");
  w.StartObject();
  w.Key("format");
  str(r.source_format);
  w.Key("path");
  str(r.source);
  w.EndObject();
  w.Key("imported");
  w.Int64(r.imported);
  w.Key("size");
  w.Uint64(r.size);
  w.Key("config");
  std::string config = ImageConfigToJson(r.config);
  w.RawValue(config.c_str(), config.size(), rapidjson::kObjectType);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

ImageRecord ImageStore::RecordFromJson(const std::string& json, const std::string& path,
                                       bool with_config) const {
  auto corrupt = [&](const std::string& what) {
    return Error(ErrorKind::kInternal, "corrupt image record " + path + ": " + what);
  };
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) throw corrupt("not a JSON object");
  auto str = [&](const rapidjson::Value& obj, const char* key) -> std::string {
    if (!obj.IsObject() || !obj.HasMember(key) || !obj[key].IsString()) throw corrupt(key);
    return std::string(obj[key].GetString(), obj[key].GetStringLength());
  };
  auto u64 = [&](const rapidjson::Value& obj, const char* key) -> uint64_t {
    if (!obj.HasMember(key) || !obj[key].IsUint64()) throw corrupt(key);
    return obj[key].GetUint64();
  };
  ImageRecord r;
  r.id = Digest::Parse(str(doc, "id"));
  if (!doc.HasMember("names") || !doc["names"].IsArray()) throw corrupt("names");
  for (const auto& n : doc["names"].GetArray()) {
    if (!n.IsString()) throw corrupt("names");
    r.names.emplace_back(n.GetString(), n.GetStringLength());
  }
  if (doc.HasMember("manifest")) r.manifest = Digest::Parse(str(doc, "manifest"));
  if (!doc.HasMember("layers") || !doc["layers"].IsArray()) throw corrupt("layers");
  for (const auto& l : doc["layers"].GetArray()) {
    if (!l.IsObject()) throw corrupt("layers");
    r.layers.push_back({Digest::Parse(str(l, "diff_id")),
                        Digest::Parse(str(l, "chain_id")),
                        Digest::Parse(str(l, "blob")),
                        u64(l, "size"),
                        {},
                        0});
  }
  if (r.layers.empty()) throw corrupt("no layers");
  if (!doc.HasMember("source")) throw corrupt("source");
  r.source_format = str(doc["source"], "format");
  r.source = str(doc["source"], "path");
  if (!doc.HasMember("imported") || !doc["imported"].IsInt64()) throw corrupt("imported");
  r.imported = doc["imported"].GetInt64();
  r.size = u64(doc, "size");
  if (with_config) r.config = ParseImageConfig(blobs_.Read(r.id));
  return r;
}

void ImageStore::SaveRecord(const ImageRecord& r) {
  ScopeGuard forget([this] { ForgetListed(); });  // also when the write fails half-way
  WriteFileAtomic(RecordPath(r.id), RecordToJson(r), 0600);
}

void ImageStore::SaveRecordTakingNames(const ImageRecord& rec) {
  SaveRecord(rec);
  for (ImageRecord other : List()) {
    if (other.id == rec.id) continue;
    size_t before = other.names.size();
    std::erase_if(other.names, [&](const std::string& n) {
      return std::find(rec.names.begin(), rec.names.end(), n) != rec.names.end();
    });
    if (other.names.size() != before) SaveRecord(other);
  }
}

UniqueFd ImageStore::LockStore(bool exclusive) const {
  std::string path = root_ + "/store.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) ThrowErrno("open", path);
  while (::flock(fd.get(), exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) ThrowErrno("flock", path);
  }
  return fd;
}

bool ImageStore::IsCommitted(const std::string& name) const {
  try {
    return layers_->Stat(name).kind == SnapshotKind::kCommitted;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) return false;
    throw;
  }
}

void ImageStore::SaveLayerRecord(const LayerRecord& l) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("diff_id");
  w.String(l.diff_id.str().c_str());
  w.Key("chain_id");
  w.String(l.chain_id.str().c_str());
  w.Key("blob");
  w.String(l.blob.str().c_str());
  w.Key("size");
  w.Uint64(l.size);
  if (l.tar_digest) {
    w.Key("tar_digest");
    w.String(l.tar_digest->str().c_str());
    w.Key("tar_size");
    w.Uint64(l.tar_size);
  }
  w.EndObject();
  WriteFileAtomic(root_ + "/layerdb/" + l.chain_id.hex() + ".json",
                  std::string(buf.GetString(), buf.GetSize()), 0600);
}

std::optional<LayerRecord> ImageStore::LoadLayerRecord(const Digest& chain) const {
  auto json = ReadFileIfExists(root_ + "/layerdb/" + chain.hex() + ".json");
  if (!json) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(json->data(), json->size());
  auto field = [&](const char* k) -> std::optional<std::string> {
    if (!doc.IsObject() || !doc.HasMember(k) || !doc[k].IsString()) return std::nullopt;
    return std::string(doc[k].GetString());
  };
  auto diff = field("diff_id"), blob = field("blob");
  if (doc.HasParseError() || !diff || !blob || !Digest::IsValid(*diff) || !Digest::IsValid(*blob) ||
      !doc.HasMember("size") || !doc["size"].IsUint64()) {
    return std::nullopt;  // a damaged side record only loses the size
  }
  LayerRecord rec{Digest::Parse(*diff),    chain, Digest::Parse(*blob),
                  doc["size"].GetUint64(), {},    0};
  auto tar = field("tar_digest");
  if (tar && Digest::IsValid(*tar) && doc.HasMember("tar_size") && doc["tar_size"].IsUint64()) {
    rec.tar_digest = Digest::Parse(*tar);
    rec.tar_size = doc["tar_size"].GetUint64();
  }
  return rec;
}

std::vector<ImageRecord> ImageStore::List() const {
  const std::string dir = root_ + "/images";
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) ThrowErrno("stat", dir);
  auto same = [](const timespec& a, const timespec& b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
  };
  uint64_t generation;
  {
    std::lock_guard lock(listed_mu_);
    if (listed_ && same(listed_mtime_, st.st_mtim) && same(listed_ctime_, st.st_ctim)) {
      return *listed_;
    }
    generation = listed_generation_;
  }
  std::vector<ImageRecord> out;
  for (const auto& f : ListDirectory(dir, IfMissing::kThrow)) {
    if (f.size() != 69 || f.compare(64, 5, ".json") != 0) continue;
    std::string path = dir + "/" + f;
    auto json = ReadFileIfExists(path);
    if (json) out.push_back(RecordFromJson(*json, path));
  }
  std::lock_guard lock(listed_mu_);
  if (listed_generation_ == generation) {
    listed_ = out;
    listed_mtime_ = st.st_mtim;
    listed_ctime_ = st.st_ctim;
  }
  return out;
}

void ImageStore::ForgetListed() {
  std::lock_guard lock(listed_mu_);
  listed_.reset();
  ++listed_generation_;
}

ImageRecord ImageStore::Get(const std::string& ref) const {
  std::string hex = ref.rfind("sha256:", 0) == 0 ? ref.substr(7) : ref;
  std::vector<ImageRecord> all = List();
  for (const auto& r : all) {
    if (std::find(r.names.begin(), r.names.end(), ref) != r.names.end()) return r;
  }
  std::vector<const ImageRecord*> matches;
  if (hex.size() >= 4) {
    for (const auto& r : all) {
      if (r.id.hex().rfind(hex, 0) == 0) matches.push_back(&r);
    }
  }
  if (matches.size() == 1) return *matches[0];
  if (matches.size() > 1) {
    throw Error(ErrorKind::kInvalidArgument, "image reference \"" + ref + "\" is ambiguous");
  }
  throw Error(ErrorKind::kNotFound, "image \"" + ref + "\" not found");
}

void ImageStore::Remove(const std::string& ref) {
  UniqueFd lock = LockStore(true);
  ImageRecord rec = Get(ref);
  // Like `docker rmi`: an image a container (active snapshot) or view sits on stays.
  std::set<std::string> chain;
  for (const auto& l : rec.layers) chain.insert(l.chain_id.str());
  std::string user;
  layers_->Walk([&](const SnapshotInfo& info) {
    if (info.kind != SnapshotKind::kCommitted && chain.count(info.parent)) user = info.name;
  });
  if (!user.empty()) {
    throw Error(ErrorKind::kConflict,
                "image " + rec.id.Short() + " is in use by snapshot \"" + user + "\"");
  }
  // Mark first: once the rename is durable the image is gone for List/Get, and whatever the
  // deletion below does not finish, Gc() finishes from the mark.
  std::string marker = root_ + "/images/" + rec.id.hex() + ".removing";
  const int renamed = ::rename(RecordPath(rec.id).c_str(), marker.c_str());
  ForgetListed();
  if (renamed != 0) {
    ThrowErrno("rename", RecordPath(rec.id));
  }
  UniqueFd dir(::open((root_ + "/images").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir || ::fsync(dir.get()) != 0) ThrowErrno("fsync", root_ + "/images");
  FinishRemoval(marker);
}

void ImageStore::FinishRemoval(const std::string& marker) {
  auto json = ReadFileIfExists(marker);
  if (!json) return;
  ImageRecord rec = RecordFromJson(*json, marker, false);
  std::set<std::string> used;
  for (const auto& other : List()) {
    for (const auto& l : other.layers) used.insert(l.chain_id.str());
  }
  // Top first: a layer with children cannot go.
  for (auto it = rec.layers.rbegin(); it != rec.layers.rend(); ++it) {
    std::string name = it->chain_id.str();
    if (used.count(name)) continue;
    try {
      layers_->Remove(name);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kConflict) break;  // a snapshot still sits on it
      if (e.kind() != ErrorKind::kNotFound) throw;
    }
    ::unlink((root_ + "/layerdb/" + it->chain_id.hex() + ".json").c_str());
  }
  if (!PathExists(RecordPath(rec.id)) && blobs_.Exists(rec.id)) blobs_.Delete(rec.id);
  if (::unlink(marker.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink", marker);
}

}  // namespace berth::store
