#include "runtime/store/archive/path.h"

#include <limits.h>

#include "runtime/common/error.h"

namespace berth::store {
namespace {

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 200) out += "...";
  return out;
}

[[noreturn]] void Bad(std::string_view path, const std::string& why) {
  throw Error(ErrorKind::kInvalidArgument, "member path \"" + Printable(path) + "\": " + why);
}

}  // namespace

std::vector<std::string> SanitizeMemberPath(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) Bad(path, "contains a NUL byte");
  if (path.size() >= PATH_MAX) Bad(path, "longer than PATH_MAX");
  if (!path.empty() && path.front() == '/') Bad(path, "absolute path");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") Bad(path, "contains \"..\"");
    if (part.size() > NAME_MAX) Bad(path, "a component is longer than NAME_MAX");
    parts.emplace_back(part);
  }
  return parts;
}

std::string JoinComponents(const std::vector<std::string>& parts, size_t count) {
  std::string out;
  for (size_t i = 0; i < count && i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

WhiteoutKind ClassifyWhiteout(std::string_view base, std::string* target) {
  if (base.substr(0, kWhiteoutPrefix.size()) != kWhiteoutPrefix) return WhiteoutKind::kNone;
  if (base == kOpaqueWhiteout) return WhiteoutKind::kOpaque;
  std::string_view rest = base.substr(kWhiteoutPrefix.size());
  if (rest.substr(0, kWhiteoutPrefix.size()) == kWhiteoutPrefix) return WhiteoutKind::kMeta;
  if (rest.empty() || rest == "." || rest == ".." || rest.find('/') != std::string_view::npos) {
    throw Error(ErrorKind::kInvalidArgument,
                "whiteout \"" + Printable(base) + "\" names no valid entry");
  }
  if (target) *target = std::string(rest);
  return WhiteoutKind::kFile;
}

}  // namespace berth::store
