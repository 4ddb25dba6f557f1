// RapidJSON helpers for berthd. RapidJSON asserts on a wrong type, so request fields are
// read only through these checked accessors: a wrong or missing field is kInvalidArgument
// naming it ("flavor.vcpus: want an integer").
#pragma once

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::server {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Parses a request body that must be a JSON object; kInvalidArgument otherwise.
rapidjson::Document ParseJsonObject(std::string_view text, std::string_view what = "body");

// Checked reads from an object. `field` is the name in the object and `path` the name used
// in messages. Absent (or null) gives nullopt; a wrong type throws.
std::optional<std::string> OptString(const rapidjson::Value& obj, const char* field,
                                     const std::string& path);
std::optional<int64_t> OptInt(const rapidjson::Value& obj, const char* field,
                              const std::string& path);
std::optional<bool> OptBool(const rapidjson::Value& obj, const char* field,
                            const std::string& path);
std::optional<std::vector<std::string>> OptStringArray(const rapidjson::Value& obj,
                                                       const char* field, const std::string& path);
std::optional<std::map<std::string, std::string>> OptStringMap(const rapidjson::Value& obj,
                                                               const char* field,
                                                               const std::string& path);
// nullptr when absent; kInvalidArgument when present and not an object.
const rapidjson::Value* OptObject(const rapidjson::Value& obj, const char* field,
                                  const std::string& path);

// Writer shorthands.
void WriteString(JsonWriter& w, const char* key, std::string_view value);
void WriteStringArray(JsonWriter& w, const char* key, const std::vector<std::string>& values);
void WriteStringMap(JsonWriter& w, const char* key, const std::map<std::string, std::string>& m);
void WriteUint64(JsonWriter& w, const char* key, uint64_t value);
// null when absent ("no limit").
void WriteUint64(JsonWriter& w, const char* key, const std::optional<uint64_t>& value);

// {"error": {"code": N, "message": "..."}}
// {"error": {"code", "kind", "message"}} plus any extra members already written by `extra`
// (e.g. "power_state" of a 409 for a wrong state).
std::string ErrorJson(int code, std::string_view kind, std::string_view message,
                      const std::function<void(JsonWriter&)>& extra = {});

}  // namespace berth::server

namespace berth::server {
// Replaces bytes that are not valid UTF-8 with U+FFFD, so console output and exec output
// can travel in a JSON string.
std::string SanitizeUtf8(std::string_view in);
}  // namespace berth::server
