#include "driver/server/json_util.h"

#include <rapidjson/error/en.h>

#include "runtime/common/error.h"

namespace berth::server {
namespace {

[[noreturn]] void Bad(const std::string& path, std::string_view want) {
  throw Error(ErrorKind::kInvalidArgument, path + ": want " + std::string(want));
}

const rapidjson::Value* Member(const rapidjson::Value& obj, const char* field) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

}  // namespace

rapidjson::Document ParseJsonObject(std::string_view text, std::string_view what) {
  rapidjson::Document doc;
  // Iterative parsing: a deeply nested document cannot exhaust the stack.
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw Error(ErrorKind::kInvalidArgument, std::string(what) + ": malformed JSON at offset " +
                                                 std::to_string(doc.GetErrorOffset()) + ": " +
                                                 rapidjson::GetParseError_En(doc.GetParseError()));
  }
  if (!doc.IsObject())
    throw Error(ErrorKind::kInvalidArgument, std::string(what) + ": want an object");
  return doc;
}

std::optional<std::string> OptString(const rapidjson::Value& obj, const char* field,
                                     const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (!v) return std::nullopt;
  if (!v->IsString()) Bad(path, "a string");
  return std::string(v->GetString(), v->GetStringLength());
}

std::optional<int64_t> OptInt(const rapidjson::Value& obj, const char* field,
                              const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (!v) return std::nullopt;
  if (!v->IsInt64()) Bad(path, "an integer");
  return v->GetInt64();
}

std::optional<bool> OptBool(const rapidjson::Value& obj, const char* field,
                            const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (!v) return std::nullopt;
  if (!v->IsBool()) Bad(path, "a boolean");
  return v->GetBool();
}

std::optional<std::vector<std::string>> OptStringArray(const rapidjson::Value& obj,
                                                       const char* field, const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (!v) return std::nullopt;
  if (!v->IsArray()) Bad(path, "an array of strings");
  std::vector<std::string> out;
  for (rapidjson::SizeType i = 0; i < v->Size(); ++i) {
    const auto& e = (*v)[i];
    if (!e.IsString()) Bad(path + "[" + std::to_string(i) + "]", "a string");
    out.emplace_back(e.GetString(), e.GetStringLength());
  }
  return out;
}

std::optional<std::map<std::string, std::string>> OptStringMap(const rapidjson::Value& obj,
                                                               const char* field,
                                                               const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (!v) return std::nullopt;
  if (!v->IsObject()) Bad(path, "an object of strings");
  std::map<std::string, std::string> out;
  for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
    std::string key(it->name.GetString(), it->name.GetStringLength());
    if (!it->value.IsString()) Bad(path + "." + key, "a string");
    out[key] = std::string(it->value.GetString(), it->value.GetStringLength());
  }
  return out;
}

const rapidjson::Value* OptObject(const rapidjson::Value& obj, const char* field,
                                  const std::string& path) {
  const rapidjson::Value* v = Member(obj, field);
  if (v && !v->IsObject()) Bad(path, "an object");
  return v;
}

void WriteString(JsonWriter& w, const char* key, std::string_view value) {
  w.Key(key);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

void WriteUint64(JsonWriter& w, const char* key, uint64_t value) {
  w.Key(key);
  w.Uint64(value);
}

void WriteUint64(JsonWriter& w, const char* key, const std::optional<uint64_t>& value) {
  w.Key(key);
  if (value) {
    w.Uint64(*value);
  } else {
    w.Null();
  }
}

void WriteStringArray(JsonWriter& w, const char* key, const std::vector<std::string>& values) {
  w.Key(key);
  w.StartArray();
  for (const auto& v : values) w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  w.EndArray();
}

void WriteStringMap(JsonWriter& w, const char* key, const std::map<std::string, std::string>& m) {
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
}

std::string ErrorJson(int code, std::string_view kind, std::string_view message,
                      const std::function<void(JsonWriter&)>& extra) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("code");
  w.Int(code);
  WriteString(w, "kind", kind);
  WriteString(w, "message", message);
  if (extra) extra(w);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace berth::server

namespace berth::server {

std::string SanitizeUtf8(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(in[i + k]) & 0xc0) == 0x80;
    }
    if (ok && len == 2) ok = c >= 0xc2;  // overlong
    if (ok && len == 3) {
      unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
      ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogates
    }
    if (ok && len == 4) {
      unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
      ok = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xef\xbf\xbd";
      ++i;
    }
  }
  return out;
}

}  // namespace berth::server
