// ImageStore::Export: docker-archive and OCI archive, streamed, layers rebuilt from the
// unpacked layers (layer blobs are not kept). A layer's rebuilt tar is deterministic; its
// digest and size are measured once (a pass that writes nowhere) and kept in the layer's
// layerdb record, because both archive formats need a member's size — and the OCI one its
// digest, as its name — before the member's bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/store/image/image_store.h"

namespace berth::store {
namespace {

constexpr const char* kOciManifestType = "application/vnd.oci.image.manifest.v1+json";
constexpr const char* kOciConfigType = "application/vnd.oci.image.config.v1+json";
constexpr const char* kOciLayerType = "application/vnd.oci.image.layer.v1.tar";

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const std::string& s) {
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

std::string Done(rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

// The stored config with rootfs.diff_ids replaced.
std::string WithDiffIds(const std::string& config, const std::vector<Digest>& ids) {
  rapidjson::Document doc;
  doc.Parse(config.data(), config.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("rootfs") ||
      !doc["rootfs"].IsObject()) {
    throw Error(ErrorKind::kInternal, "stored image config has no rootfs object");
  }
  auto& al = doc.GetAllocator();
  rapidjson::Value arr(rapidjson::kArrayType);
  for (const Digest& d : ids) arr.PushBack(rapidjson::Value(d.str().c_str(), al), al);
  if (doc["rootfs"].HasMember("diff_ids")) {
    doc["rootfs"]["diff_ids"] = arr;
  } else {
    doc["rootfs"].AddMember("diff_ids", arr, al);
  }
  rapidjson::StringBuffer buf;
  Writer w(buf);
  doc.Accept(w);
  return Done(buf);
}

// docker-archive RepoTags must parse as references: a bare name gets ":latest".
std::string RepoTag(const std::string& name) {
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) {
    return name + ":latest";
  }
  return name;
}

TarEntry Member(const std::string& path, mode_t type = S_IFREG) {
  TarEntry e;
  e.path = path;
  e.type = type;
  e.perm = type == S_IFDIR ? 0755 : 0644;
  return e;
}

}  // namespace

ExportFormat ParseExportFormat(const std::string& name) {
  if (name == "docker-archive") return ExportFormat::kDockerArchive;
  if (name == "oci" || name == "oci-archive") return ExportFormat::kOci;
  throw Error(ErrorKind::kInvalidArgument,
              "unknown export format \"" + name + "\" (docker-archive, oci)");
}

LayerRecord ImageStore::EnsureTarDigest(const LayerRecord& layer) {
  LayerRecord rec = LoadLayerRecord(layer.chain_id).value_or(layer);
  if (rec.tar_digest) return rec;
  TarWriter measure(NullSink());
  LayerTar tar = WriteLayerTar(layers_->Changes(rec.chain_id.str()), measure);
  rec.tar_digest = tar.diff_id;
  rec.tar_size = tar.size;
  SaveLayerRecord(rec);
  return rec;
}

ExportResult ImageStore::Export(const std::string& ref, ExportFormat format, int fd) {
  return WithContext("export " + ref, [&] {
    UniqueFd lock = LockStore(false);
    ImageRecord image = Get(ref);
    std::vector<LayerRecord> layers;
    ExportResult result;
    for (const LayerRecord& l : image.layers) {
      layers.push_back(EnsureTarDigest(l));
      result.diff_ids.push_back(*layers.back().tar_digest);
      if (*layers.back().tar_digest != l.diff_id) result.diff_ids_rewritten = true;
    }
    std::string config = blobs_.Read(image.id);
    if (result.diff_ids_rewritten) config = WithDiffIds(config, result.diff_ids);
    result.config = Digest::Of(config);

    TarWriter out(FdSink(fd, "export"));
    std::set<Digest> written;
    auto layer_member = [&](const LayerRecord& l, const std::string& path) {
      TarEntry e = Member(path);
      e.size = static_cast<int64_t>(l.tar_size);
      out.Header(e);
      TarWriter inner([&](const void* data, size_t size) { out.Data(data, size); });
      LayerTar tar = WriteLayerTar(layers_->Changes(l.chain_id.str()), inner);
      if (tar.diff_id != *l.tar_digest || tar.size != l.tar_size) {
        // The layer changed on disk or the writer is not deterministic: measure anew next time.
        LayerRecord fresh = l;
        fresh.tar_digest.reset();
        SaveLayerRecord(fresh);
        throw Error(ErrorKind::kInternal, "layer " + l.chain_id.str() + ": rebuilt tar " +
                                              tar.diff_id.str() + " differs from the measured " +
                                              l.tar_digest->str());
      }
    };

    if (format == ExportFormat::kDockerArchive) {
      for (const LayerRecord& l : layers) {
        if (!written.insert(*l.tar_digest).second) continue;
        out.Header(Member(l.tar_digest->hex() + "/", S_IFDIR));
        layer_member(l, l.tar_digest->hex() + "/layer.tar");
      }
      out.AddBytes(Member(result.config.hex() + ".json"), config);
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartArray();
      w.StartObject();
      w.Key("Config");
      Str(w, result.config.hex() + ".json");
      w.Key("RepoTags");
      w.StartArray();
      for (const auto& n : image.names) Str(w, RepoTag(n));
      w.EndArray();
      w.Key("Layers");
      w.StartArray();
      for (const LayerRecord& l : layers) Str(w, l.tar_digest->hex() + "/layer.tar");
      w.EndArray();
      w.EndObject();
      w.EndArray();
      out.AddBytes(Member("manifest.json"), Done(buf));
    } else {
      out.AddBytes(Member("oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
      out.Header(Member("blobs/", S_IFDIR));
      out.Header(Member("blobs/sha256/", S_IFDIR));
      for (const LayerRecord& l : layers) {
        if (!written.insert(*l.tar_digest).second) continue;
        layer_member(l, "blobs/sha256/" + l.tar_digest->hex());
      }
      if (written.insert(result.config).second) {
        out.AddBytes(Member("blobs/sha256/" + result.config.hex()), config);
      }
      rapidjson::StringBuffer buf;
      Writer w(buf);
      w.StartObject();
      w.Key("schemaVersion");
      w.Int(2);
      w.Key("mediaType");
      w.String(kOciManifestType);
      w.Key("config");
      w.StartObject();
      w.Key("mediaType");
      w.String(kOciConfigType);
      w.Key("digest");
      Str(w, result.config.str());
      w.Key("size");
      w.Uint64(config.size());
      w.EndObject();
      w.Key("layers");
      w.StartArray();
      for (const LayerRecord& l : layers) {
        w.StartObject();
        w.Key("mediaType");
        w.String(kOciLayerType);
        w.Key("digest");
        Str(w, l.tar_digest->str());
        w.Key("size");
        w.Uint64(l.tar_size);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      std::string manifest = Done(buf);
      Digest md = Digest::Of(manifest);
      if (written.insert(md).second) out.AddBytes(Member("blobs/sha256/" + md.hex()), manifest);
      rapidjson::StringBuffer ibuf;
      Writer iw(ibuf);
      iw.StartObject();
      iw.Key("schemaVersion");
      iw.Int(2);
      iw.Key("manifests");
      iw.StartArray();
      iw.StartObject();
      iw.Key("mediaType");
      iw.String(kOciManifestType);
      iw.Key("digest");
      Str(iw, md.str());
      iw.Key("size");
      iw.Uint64(manifest.size());
      if (!image.names.empty()) {
        iw.Key("annotations");
        iw.StartObject();
        iw.Key("org.opencontainers.image.ref.name");
        Str(iw, image.names[0]);
        iw.EndObject();
      }
      iw.EndObject();
      iw.EndArray();
      iw.EndObject();
      out.AddBytes(Member("index.json"), Done(ibuf));
    }
    out.Finish();
    result.bytes = out.size();
    return result;
  });
}

ExportResult ImageStore::ExportToFile(const std::string& ref, ExportFormat format,
                                      const std::string& path) {
  std::string temp = path + ".berth-partial";
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) ThrowErrno("open", temp);
  ScopeGuard remove([&] { ::unlink(temp.c_str()); });
  ExportResult r = Export(ref, format, fd.get());
  if (::fsync(fd.get()) != 0) ThrowErrno("fsync", temp);
  fd.reset();
  if (::rename(temp.c_str(), path.c_str()) != 0) ThrowErrno("rename", path);
  remove.Dismiss();
  return r;
}

}  // namespace berth::store
