// Capability names <-> bitmasks. libcap knows the names; the running kernel decides which
// of them exist here (/proc/sys/kernel/cap_last_cap), so a spec written for a newer kernel
// still runs on an older one, as crun and runc allow.
#include <sys/capability.h>

#include <cctype>
#include <charconv>
#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

int ReadLastCapability() {
  // Older kernels lack the file; libcap's compiled-in table is the best guess then.
  std::optional<std::string> text = ReadFileIfExists("/proc/sys/kernel/cap_last_cap");
  int value = -1;
  if (text) {
    const char* end = text->data() + text->size();
    auto [ptr, ec] = std::from_chars(text->data(), end, value);
    if (ec != std::errc() || value < 0 || value > 63) value = -1;
  }
  if (value < 0) value = static_cast<int>(cap_max_bits()) - 1;
  return value;
}

// The index of one name, or nullopt when this kernel does not have it. Throws for a name
// no kernel has (a typo), naming the field.
std::optional<int> ParseCapabilityName(const std::string& name, const std::string& field) {
  // cap_from_name would also take "40" or "cap_chown"; the spec only allows "CAP_CHOWN".
  bool well_formed = name.size() > 4 && name.compare(0, 4, "CAP_") == 0;
  cap_value_t value = -1;
  if (!well_formed || cap_from_name(name.c_str(), &value) != 0 || value < 0) {
    throw Error(ErrorKind::kInvalidArgument, field + ": unknown capability \"" + name + "\"");
  }
  if (value > LastCapability()) return std::nullopt;
  return static_cast<int>(value);
}

uint64_t ParseSet(const std::vector<std::string>& names, const char* set_name) {
  uint64_t mask = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    std::string field =
        std::string("process.capabilities.") + set_name + "[" + std::to_string(i) + "]";
    if (std::optional<int> cap = ParseCapabilityName(names[i], field)) mask |= uint64_t{1} << *cap;
  }
  return mask;
}

}  // namespace

int LastCapability() {
  static const int last = ReadLastCapability();
  return last;
}

CapabilitySets ParseCapabilities(const spec::Capabilities& caps) {
  CapabilitySets sets;
  sets.bounding = ParseSet(caps.bounding, "bounding");
  sets.effective = ParseSet(caps.effective, "effective");
  sets.permitted = ParseSet(caps.permitted, "permitted");
  sets.inheritable = ParseSet(caps.inheritable, "inheritable");
  sets.ambient = ParseSet(caps.ambient, "ambient");
  return sets;
}

spec::Capabilities DefaultCapabilities() {
  // Docker's default set. Inheritable stays empty: since CVE-2022-24769 Docker, runc and
  // containerd no longer fill it, so file capabilities of an exec'd binary cannot be
  // combined with inherited ones to gain more than the container was given.
  std::vector<std::string> names = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE",
  };
  spec::Capabilities caps;
  caps.bounding = names;
  caps.effective = names;
  caps.permitted = names;
  return caps;
}

std::vector<std::string> CapabilityNames(uint64_t mask) {
  std::vector<std::string> names;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(mask & (uint64_t{1} << cap))) continue;
    // libcap spells known capabilities "cap_chown" and unknown ones as the number.
    char* raw = cap_to_name(cap);
    std::string name = raw ? raw : std::to_string(cap);
    if (raw) cap_free(raw);
    for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (name.compare(0, 4, "CAP_") != 0) name = "CAP_" + name;
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace berth::security
