#include "runtime/spec/json_reader.h"

#include <cstdio>
#include <cstring>
#include <limits>

#include "runtime/common/error.h"

namespace berth::spec::internal {

void JsonPath::AppendTo(std::string& out) const {
  if (parent_) parent_->AppendTo(out);
  switch (kind_) {
    case Kind::kRoot:
      break;
    case Kind::kKey:
      if (!out.empty()) out += '.';
      out += key_;
      break;
    case Kind::kMapKey:
      out += '[';
      out += Quote(key_);
      out += ']';
      break;
    case Kind::kIndex:
      out += '[';
      out += std::to_string(index_);
      out += ']';
      break;
  }
}

std::string JsonPath::ToString() const {
  std::string out;
  AppendTo(out);
  return out;
}

void Fail(const JsonPath& path, std::string_view message) {
  std::string text = path.ToString();
  if (!text.empty()) text += ": ";
  text += message;
  throw Error(ErrorKind::kInvalidArgument, std::move(text));
}

std::string Quote(std::string_view value) {
  // Values come from untrusted input and end up in logs and REST answers.
  constexpr size_t kMaxShown = 64;
  std::string out = "\"";
  size_t shown = 0;
  for (char c : value) {
    if (shown++ == kMaxShown) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

void ExpectArray(const JsonValue& v, const JsonPath& p) {
  if (!v.IsArray()) Fail(p, "expected an array");
}

void ExpectObject(const JsonValue& v, const JsonPath& p) {
  if (!v.IsObject()) Fail(p, "expected an object");
}

void Read(const JsonValue& v, const JsonPath& p, bool& out) {
  if (!v.IsBool()) Fail(p, "expected a boolean");
  out = v.GetBool();
}

void Read(const JsonValue& v, const JsonPath& p, std::string& out) {
  if (!v.IsString()) Fail(p, "expected a string");
  const char* s = v.GetString();
  size_t n = v.GetStringLength();
  if (std::memchr(s, '\0', n) != nullptr) Fail(p, "string contains a NUL character");
  out.assign(s, n);
}

void Read(const JsonValue& v, const JsonPath& p, uint16_t& out) {
  if (!v.IsUint() || v.GetUint() > std::numeric_limits<uint16_t>::max()) {
    Fail(p, "expected an unsigned 16-bit integer");
  }
  out = static_cast<uint16_t>(v.GetUint());
}

void Read(const JsonValue& v, const JsonPath& p, uint32_t& out) {
  if (!v.IsUint()) Fail(p, "expected an unsigned 32-bit integer");
  out = v.GetUint();
}

void Read(const JsonValue& v, const JsonPath& p, uint64_t& out) {
  if (!v.IsUint64()) Fail(p, "expected an unsigned 64-bit integer");
  out = v.GetUint64();
}

void Read(const JsonValue& v, const JsonPath& p, int32_t& out) {
  if (!v.IsInt()) Fail(p, "expected a 32-bit integer");
  out = v.GetInt();
}

void Read(const JsonValue& v, const JsonPath& p, int64_t& out) {
  if (!v.IsInt64()) Fail(p, "expected a 64-bit integer");
  out = v.GetInt64();
}

void Read(const JsonValue& v, const JsonPath& p, std::map<std::string, std::string>& out) {
  ExpectObject(v, p);
  out.clear();
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    std::string key;
    Read(it->name, p, key);  // always a string in valid JSON; checks for NUL
    if (key.empty()) Fail(p, "keys must not be empty");
    std::string value;
    Read(it->value, p.MapKey(key), value);
    out.insert_or_assign(std::move(key), std::move(value));
  }
}

const JsonValue* JsonObject::Find(const char* key) const {
  // RapidJSON's FindMember would return the first of two equal keys where Go (runc, most
  // generators and checkers) takes the last; refusing the duplicate keeps every reader of
  // the file agreeing on what it says.
  const std::string_view name(key);
  const JsonValue* found = nullptr;
  for (auto it = value_.MemberBegin(); it != value_.MemberEnd(); ++it) {
    if (std::string_view(it->name.GetString(), it->name.GetStringLength()) != name) continue;
    if (found != nullptr) Fail(path_.Key(key), "duplicate key");
    found = &it->value;
  }
  if (found == nullptr || found->IsNull()) return nullptr;
  return found;
}

const JsonValue& JsonObject::Require(const char* key) const {
  const JsonValue* m = Find(key);
  if (!m) Fail(path_.Key(key), "required field is missing");
  return *m;
}

}  // namespace berth::spec::internal
