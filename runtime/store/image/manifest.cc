#include "runtime/store/image/manifest.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

using Value = rapidjson::Value;

// Reads one document with a path for error messages.
class Reader {
 public:
  Reader(std::string doc_name, std::string_view json) : name_(std::move(doc_name)) {
    if (json.size() > kMaxJsonDocument) Fail("", "document larger than 4 MiB");
    // Iterative: a 4 MiB document of "[" must not exhaust the stack.
    doc_.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc_.HasParseError()) {
      Fail("", "invalid JSON at offset " + std::to_string(doc_.GetErrorOffset()));
    }
  }
  const Value& root() const { return doc_; }

  [[noreturn]] void Fail(const std::string& where, const std::string& why) const {
    throw Error(ErrorKind::kInvalidArgument,
                name_ + ": " + (where.empty() ? "" : where + ": ") + why);
  }

  const Value& Object(const Value& v, const std::string& where) const {
    if (!v.IsObject()) Fail(where, "want an object");
    return v;
  }
  const Value& Array(const Value& v, const std::string& where) const {
    if (!v.IsArray()) Fail(where, "want an array");
    return v;
  }
  // nullptr when absent or null and not required.
  const Value* Member(const Value& obj, const char* key, const std::string& where,
                      bool required) const {
    auto it = obj.FindMember(key);
    if (it == obj.MemberEnd() || it->value.IsNull()) {
      if (required) Fail(Path(where, key), "missing");
      return nullptr;
    }
    return &it->value;
  }
  std::string String(const Value& v, const std::string& where) const {
    if (!v.IsString()) Fail(where, "want a string");
    return std::string(v.GetString(), v.GetStringLength());
  }
  std::string StringField(const Value& obj, const char* key, const std::string& where,
                          bool required) const {
    const Value* v = Member(obj, key, where, required);
    return v ? String(*v, Path(where, key)) : std::string();
  }
  std::vector<std::string> StringArray(const Value& obj, const char* key, const std::string& where,
                                       bool required) const {
    std::vector<std::string> out;
    const Value* v = Member(obj, key, where, required);
    if (!v) return out;
    std::string here = Path(where, key);
    Array(*v, here);
    for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
      out.push_back(String((*v)[i], here + "[" + std::to_string(i) + "]"));
    }
    return out;
  }
  std::map<std::string, std::string> StringMap(const Value& obj, const char* key,
                                               const std::string& where) const {
    std::map<std::string, std::string> out;
    const Value* v = Member(obj, key, where, false);
    if (!v) return out;
    std::string here = Path(where, key);
    Object(*v, here);
    // Indexing, not range-for: RapidJSON 1.1's member iterator comparisons are ambiguous
    // under C++20 with clang.
    for (rapidjson::SizeType i = 0; i < v->MemberCount(); ++i) {
      const auto& m = *(v->MemberBegin() + i);
      std::string k(m.name.GetString(), m.name.GetStringLength());
      out[k] = String(m.value, here + "." + k);
    }
    return out;
  }
  // Keys of an object ("ExposedPorts": {"80/tcp": {}}).
  std::vector<std::string> Keys(const Value& obj, const char* key, const std::string& where) const {
    std::vector<std::string> out;
    const Value* v = Member(obj, key, where, false);
    if (!v) return out;
    Object(*v, Path(where, key));
    for (rapidjson::SizeType i = 0; i < v->MemberCount(); ++i) {
      const auto& m = *(v->MemberBegin() + i);
      out.emplace_back(m.name.GetString(), m.name.GetStringLength());
    }
    return out;
  }
  Digest DigestField(const Value& obj, const char* key, const std::string& where) const {
    std::string s = StringField(obj, key, where, true);
    try {
      return Digest::Parse(s);
    } catch (const Error& e) {
      Fail(Path(where, key), e.message());
    }
  }

  static std::string Path(const std::string& where, const char* key) {
    return where.empty() ? key : where + "." + key;
  }

 private:
  std::string name_;
  rapidjson::Document doc_;
};

OciDescriptor ReadDescriptor(const Reader& r, const Value& v, const std::string& where) {
  r.Object(v, where);
  OciDescriptor d;
  d.media_type = r.StringField(v, "mediaType", where, false);
  d.digest = r.DigestField(v, "digest", where);
  const Value* size = r.Member(v, "size", where, true);
  if (!size->IsInt64() || size->GetInt64() < 0) r.Fail(where + ".size", "want a size");
  d.size = size->GetInt64();
  d.annotations = r.StringMap(v, "annotations", where);
  if (const Value* p = r.Member(v, "platform", where, false)) {
    r.Object(*p, where + ".platform");
    d.os = r.StringField(*p, "os", where + ".platform", false);
    d.architecture = r.StringField(*p, "architecture", where + ".platform", false);
  }
  return d;
}

void WriteStrings(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key,
                  const std::vector<std::string>& values) {
  w.Key(key);
  w.StartArray();
  for (const auto& s : values) w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  w.EndArray();
}

void WriteString(rapidjson::Writer<rapidjson::StringBuffer>& w, const char* key,
                 const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace

std::vector<DockerManifestEntry> ParseDockerManifest(std::string_view json) {
  Reader r("manifest.json", json);
  r.Array(r.root(), "");
  std::vector<DockerManifestEntry> out;
  for (rapidjson::SizeType i = 0; i < r.root().Size(); ++i) {
    std::string where = "[" + std::to_string(i) + "]";
    const Value& v = r.Object(r.root()[i], where);
    DockerManifestEntry e;
    e.config = r.StringField(v, "Config", where, true);
    e.repo_tags = r.StringArray(v, "RepoTags", where, false);
    e.layers = r.StringArray(v, "Layers", where, true);
    out.push_back(std::move(e));
  }
  if (out.empty()) r.Fail("", "no images");
  return out;
}

std::vector<OciDescriptor> ParseOciIndex(std::string_view json) {
  Reader r("index.json", json);
  r.Object(r.root(), "");
  const Value* version = r.Member(r.root(), "schemaVersion", "", true);
  if (!version->IsInt() || version->GetInt() != 2) r.Fail("schemaVersion", "want 2");
  const Value* manifests = r.Member(r.root(), "manifests", "", true);
  r.Array(*manifests, "manifests");
  std::vector<OciDescriptor> out;
  for (rapidjson::SizeType i = 0; i < manifests->Size(); ++i) {
    out.push_back(ReadDescriptor(r, (*manifests)[i], "manifests[" + std::to_string(i) + "]"));
  }
  if (out.empty()) r.Fail("manifests", "empty");
  return out;
}

OciManifest ParseOciManifest(std::string_view json) {
  Reader r("manifest", json);
  r.Object(r.root(), "");
  const Value* version = r.Member(r.root(), "schemaVersion", "", true);
  if (!version->IsInt() || version->GetInt() != 2) r.Fail("schemaVersion", "want 2");
  OciManifest m;
  m.config = ReadDescriptor(r, *r.Member(r.root(), "config", "", true), "config");
  const Value* layers = r.Member(r.root(), "layers", "", true);
  r.Array(*layers, "layers");
  for (rapidjson::SizeType i = 0; i < layers->Size(); ++i) {
    std::string where = "layers[" + std::to_string(i) + "]";
    OciDescriptor d = ReadDescriptor(r, (*layers)[i], where);
    if (!IsSupportedLayerMediaType(d.media_type)) {
      r.Fail(where + ".mediaType", "unsupported layer type \"" + d.media_type + "\"");
    }
    m.layers.push_back(std::move(d));
  }
  return m;
}

bool IsIndexMediaType(std::string_view t) {
  return t == "application/vnd.oci.image.index.v1+json" ||
         t == "application/vnd.docker.distribution.manifest.list.v2+json";
}

bool IsSupportedLayerMediaType(std::string_view t) {
  static const char* kTypes[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (const char* k : kTypes) {
    if (t == k) return true;
  }
  return false;
}

ImageConfig ParseImageConfig(std::string_view json) {
  Reader r("image config", json);
  const Value& root = r.Object(r.root(), "");
  ImageConfig c;
  c.architecture = r.StringField(root, "architecture", "", false);
  c.os = r.StringField(root, "os", "", false);
  c.created = r.StringField(root, "created", "", false);
  if (const Value* cfg = r.Member(root, "config", "", false)) {
    r.Object(*cfg, "config");
    ContainerConfig& cc = c.config;
    cc.entrypoint = r.StringArray(*cfg, "Entrypoint", "config", false);
    cc.cmd = r.StringArray(*cfg, "Cmd", "config", false);
    cc.env = r.StringArray(*cfg, "Env", "config", false);
    cc.working_dir = r.StringField(*cfg, "WorkingDir", "config", false);
    cc.user = r.StringField(*cfg, "User", "config", false);
    cc.exposed_ports = r.Keys(*cfg, "ExposedPorts", "config");
    cc.volumes = r.Keys(*cfg, "Volumes", "config");
    cc.labels = r.StringMap(*cfg, "Labels", "config");
    cc.stop_signal = r.StringField(*cfg, "StopSignal", "config", false);
  }
  const Value* rootfs = r.Member(root, "rootfs", "", true);
  r.Object(*rootfs, "rootfs");
  std::string type = r.StringField(*rootfs, "type", "rootfs", true);
  if (type != "layers") r.Fail("rootfs.type", "want \"layers\"");
  const Value* diff_ids = r.Member(*rootfs, "diff_ids", "rootfs", true);
  r.Array(*diff_ids, "rootfs.diff_ids");
  for (rapidjson::SizeType i = 0; i < diff_ids->Size(); ++i) {
    std::string where = "rootfs.diff_ids[" + std::to_string(i) + "]";
    std::string s = r.String((*diff_ids)[i], where);
    if (!Digest::IsValid(s)) r.Fail(where, "invalid digest");
    c.diff_ids.push_back(Digest::Parse(s));
  }
  if (const Value* history = r.Member(root, "history", "", false)) {
    r.Array(*history, "history");
    for (rapidjson::SizeType i = 0; i < history->Size(); ++i) {
      std::string where = "history[" + std::to_string(i) + "]";
      const Value& h = r.Object((*history)[i], where);
      HistoryEntry e;
      e.created = r.StringField(h, "created", where, false);
      e.created_by = r.StringField(h, "created_by", where, false);
      e.author = r.StringField(h, "author", where, false);
      e.comment = r.StringField(h, "comment", where, false);
      if (const Value* empty = r.Member(h, "empty_layer", where, false)) {
        if (!empty->IsBool()) r.Fail(where + ".empty_layer", "want a boolean");
        e.empty_layer = empty->GetBool();
      }
      c.history.push_back(std::move(e));
    }
  }
  return c;
}

std::string ImageConfigToJson(const ImageConfig& c) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  WriteString(w, "architecture", c.architecture);
  WriteString(w, "os", c.os);
  WriteString(w, "created", c.created);
  w.Key("config");
  w.StartObject();
  WriteStrings(w, "Entrypoint", c.config.entrypoint);
  WriteStrings(w, "Cmd", c.config.cmd);
  WriteStrings(w, "Env", c.config.env);
  WriteString(w, "WorkingDir", c.config.working_dir);
  WriteString(w, "User", c.config.user);
  WriteStrings(w, "ExposedPorts", c.config.exposed_ports);
  WriteStrings(w, "Volumes", c.config.volumes);
  w.Key("Labels");
  w.StartObject();
  for (const auto& [k, v] : c.config.labels) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  WriteString(w, "StopSignal", c.config.stop_signal);
  w.EndObject();
  w.Key("diff_ids");
  w.StartArray();
  for (const auto& d : c.diff_ids) w.String(d.str().c_str());
  w.EndArray();
  w.Key("history");
  w.StartArray();
  for (const auto& h : c.history) {
    w.StartObject();
    WriteString(w, "created", h.created);
    WriteString(w, "created_by", h.created_by);
    WriteString(w, "author", h.author);
    WriteString(w, "comment", h.comment);
    w.Key("empty_layer");
    w.Bool(h.empty_layer);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string HostArchitecture() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "";
#endif
}

}  // namespace berth::store
