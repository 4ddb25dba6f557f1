// Names inside layer tarballs: sanitising member paths and recognising whiteouts. Pure
// string logic, so every hostile spelling is unit tested without touching a filesystem.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace berth::store {

// Splits a member path into components, dropping "." and empty components and one leading
// "./". Throws kInvalidArgument for absolute paths, any ".." component, a NUL byte, a
// component longer than NAME_MAX or a path longer than PATH_MAX. An empty result names the
// layer root itself ("./").
std::vector<std::string> SanitizeMemberPath(std::string_view path);

std::string JoinComponents(const std::vector<std::string>& parts, size_t count);
inline std::string JoinComponents(const std::vector<std::string>& parts) {
  return JoinComponents(parts, parts.size());
}

enum class WhiteoutKind {
  kNone,    // an ordinary entry
  kFile,    // ".wh.<name>": <name> is deleted in this layer
  kOpaque,  // ".wh..wh..opq": the directory hides everything below it
  kMeta,    // other ".wh..wh.*" (aufs bookkeeping such as .wh..wh.plnk): ignored
};

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueWhiteout = ".wh..wh..opq";

// Classifies a member's last path component by name alone (some tools write whiteouts
// with odd types or modes). For kFile, *target receives the hidden name. A whiteout that
// names "", "." or ".." is kInvalidArgument.
WhiteoutKind ClassifyWhiteout(std::string_view base, std::string* target);

}  // namespace berth::store
