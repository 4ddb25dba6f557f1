// Type-checked reading of a RapidJSON DOM for the spec parser. RapidJSON asserts (or reads
// garbage when asserts are off) if GetString is called on a number, so every accessor here
// checks the shape first and throws kInvalidArgument naming the field by its JSON path.
// Internal to runtime/spec.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::spec::internal {

using JsonValue = rapidjson::Value;

// A JSON path built on the stack while the reader descends. Each level points at its parent,
// so descending costs nothing; the text ("linux.namespaces[2].type") is only made for errors.
// Because of that pointer, never keep a path built on a temporary:
// `JsonPath x = p.Key("a").Index(i);` dangles; name `p.Key("a")` first.
class JsonPath {
 public:
  JsonPath() = default;  // the document root

  JsonPath Key(std::string_view key) const { return JsonPath(this, Kind::kKey, key, 0); }
  // A member of a free-form map (sysctl, annotations): rendered as ["net.ipv4.ip_forward"]
  // because such keys contain dots.
  JsonPath MapKey(std::string_view key) const { return JsonPath(this, Kind::kMapKey, key, 0); }
  JsonPath Index(size_t index) const { return JsonPath(this, Kind::kIndex, {}, index); }

  bool IsRoot() const { return kind_ == Kind::kRoot; }
  std::string ToString() const;

 private:
  enum class Kind { kRoot, kKey, kMapKey, kIndex };
  JsonPath(const JsonPath* parent, Kind kind, std::string_view key, size_t index)
      : parent_(parent), kind_(kind), key_(key), index_(index) {}
  void AppendTo(std::string& out) const;

  const JsonPath* parent_ = nullptr;
  Kind kind_ = Kind::kRoot;
  std::string_view key_;
  size_t index_ = 0;
};

// Throws Error(kInvalidArgument, "<path>: <message>").
[[noreturn]] void Fail(const JsonPath& path, std::string_view message);

// "\"value\"" for messages: control characters escaped, long values cut short.
std::string Quote(std::string_view value);

// Scalars. Strings with an embedded NUL are refused: they would be cut short silently when
// handed to the kernel as paths or argv.
void Read(const JsonValue& v, const JsonPath& p, bool& out);
void Read(const JsonValue& v, const JsonPath& p, std::string& out);
void Read(const JsonValue& v, const JsonPath& p, uint16_t& out);
void Read(const JsonValue& v, const JsonPath& p, uint32_t& out);
void Read(const JsonValue& v, const JsonPath& p, uint64_t& out);
void Read(const JsonValue& v, const JsonPath& p, int32_t& out);
void Read(const JsonValue& v, const JsonPath& p, int64_t& out);
// An object whose members are all strings.
void Read(const JsonValue& v, const JsonPath& p, std::map<std::string, std::string>& out);

void ExpectArray(const JsonValue& v, const JsonPath& p);
void ExpectObject(const JsonValue& v, const JsonPath& p);

// Arrays of anything `read(value, path)` returns.
template <typename T, typename Fn>
void ReadArray(const JsonValue& v, const JsonPath& p, std::vector<T>& out, Fn&& read) {
  ExpectArray(v, p);
  out.clear();
  out.reserve(v.Size());
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) out.push_back(read(v[i], p.Index(i)));
}

// Arrays of scalars.
template <typename T>
void Read(const JsonValue& v, const JsonPath& p, std::vector<T>& out) {
  ReadArray(v, p, out, [](const JsonValue& item, const JsonPath& ip) {
    T value{};
    Read(item, ip, value);
    return value;
  });
}

template <typename T>
void Read(const JsonValue& v, const JsonPath& p, std::optional<T>& out) {
  T value{};
  Read(v, p, value);
  out = std::move(value);
}

// A JSON object being read: checks the shape once, then looks members up by name.
// Members set to null count as absent, as in Go's encoding/json, which runc and most spec
// generators use.
class JsonObject {
 public:
  JsonObject(const JsonValue& v, const JsonPath& path) : value_(v), path_(path) {
    ExpectObject(v, path);
  }

  const JsonPath& path() const { return path_; }

  // nullptr when absent or null. A key given twice is an error.
  const JsonValue* Find(const char* key) const;
  // Throws "<path>.<key>: required field is missing" when absent or null.
  const JsonValue& Require(const char* key) const;

  // Leave `out` untouched when the member is absent.
  template <typename T>
  void Get(const char* key, T& out) const {
    if (const JsonValue* m = Find(key)) Read(*m, path_.Key(key), out);
  }
  template <typename T>
  void GetRequired(const char* key, T& out) const {
    Read(Require(key), path_.Key(key), out);
  }
  // A nested structure read by `read(value, path)`.
  template <typename T, typename Fn>
  void Get(const char* key, T& out, Fn&& read) const {
    if (const JsonValue* m = Find(key)) out = read(*m, path_.Key(key));
  }
  template <typename T, typename Fn>
  void GetArray(const char* key, std::vector<T>& out, Fn&& read) const {
    if (const JsonValue* m = Find(key)) ReadArray(*m, path_.Key(key), out, read);
  }

 private:
  const JsonValue& value_;
  JsonPath path_;
};

}  // namespace berth::spec::internal
