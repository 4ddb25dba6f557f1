#include "runtime/spec/spec.h"

#include <string_view>

namespace berth::spec {

const Namespace* Spec::FindNamespace(NamespaceType type) const {
  for (const auto& ns : linux.namespaces) {
    if (ns.type == type) return &ns;
  }
  return nullptr;
}

bool Spec::HasNamespace(NamespaceType type) const { return FindNamespace(type) != nullptr; }

const char* NamespaceTypeName(NamespaceType type) {
  switch (type) {
    case NamespaceType::kPid:
      return "pid";
    case NamespaceType::kNetwork:
      return "network";
    case NamespaceType::kMount:
      return "mount";
    case NamespaceType::kIpc:
      return "ipc";
    case NamespaceType::kUts:
      return "uts";
    case NamespaceType::kUser:
      return "user";
    case NamespaceType::kCgroup:
      return "cgroup";
  }
  return "unknown";
}

std::optional<NamespaceType> NamespaceTypeFromName(std::string_view name) {
  static constexpr std::pair<std::string_view, NamespaceType> kNames[] = {
      {"pid", NamespaceType::kPid},       {"network", NamespaceType::kNetwork},
      {"mount", NamespaceType::kMount},   {"ipc", NamespaceType::kIpc},
      {"uts", NamespaceType::kUts},       {"user", NamespaceType::kUser},
      {"cgroup", NamespaceType::kCgroup},
  };
  for (const auto& [n, t] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

}  // namespace berth::spec
