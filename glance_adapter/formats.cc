#include "glance_adapter/formats.h"

#include <algorithm>
#include <array>

namespace berth::glance {
namespace {

constexpr const char* kWhatToUpload =
    "Berth runs containers: upload a docker-archive (`docker save`, container_format=docker, "
    "disk_format=raw), an OCI archive (container_format=bare, disk_format=raw, property "
    "berth_image_format=oci-archive) or a root filesystem tarball (disk_format=root-tar, or "
    "container_format=bare with berth_image_format=rootfs-tar)";

bool OneOf(const std::string& v, std::initializer_list<const char*> set) {
  return std::any_of(set.begin(), set.end(), [&](const char* s) { return v == s; });
}

FormatDecision Refuse(std::string why) {
  FormatDecision d;
  d.error = std::move(why) + "; " + kWhatToUpload;
  return d;
}

FormatDecision Accept(ArchiveKind kind, bool sniff = false) {
  FormatDecision d;
  d.ok = true;
  d.kind = kind;
  d.sniff = sniff;
  return d;
}

}  // namespace

const char* WhatToUpload() { return kWhatToUpload; }

std::string_view ArchiveKindName(ArchiveKind k) {
  switch (k) {
    case ArchiveKind::kDockerArchive:
      return "docker-archive";
    case ArchiveKind::kOciArchive:
      return "oci-archive";
    case ArchiveKind::kRootfsTar:
      return "rootfs-tar";
  }
  return "unknown";
}

FormatDecision DecideFormat(const std::string& container_format, const std::string& disk_format,
                            const std::map<std::string, std::string>& properties) {
  const std::string cf = container_format;
  const std::string df = disk_format;
  if (OneOf(cf, {"ova", "ovf", "ami", "aki", "ari"})) {
    return Refuse("container_format " + cf + " holds a virtual machine");
  }
  if (OneOf(df, {"qcow2", "vmdk", "vdi", "vhd", "vhdx", "iso", "ploop", "ami", "aki", "ari"})) {
    return Refuse("disk_format " + df + " is a virtual machine disk");
  }
  if (auto it = properties.find(kFormatProperty); it != properties.end()) {
    const std::string& f = it->second;
    if (cf == "docker" && f != "docker-archive") {
      return Refuse("container_format docker contradicts " + std::string(kFormatProperty) + "=" +
                    f);
    }
    if (!cf.empty() && !OneOf(cf, {"bare", "compressed", "docker"})) {
      return Refuse("container_format " + cf + " is not one Berth reads");
    }
    if (f == "docker-archive") return Accept(ArchiveKind::kDockerArchive);
    if (f == "oci-archive" || f == "oci") return Accept(ArchiveKind::kOciArchive);
    if (f == "rootfs-tar") return Accept(ArchiveKind::kRootfsTar);
    return Refuse(std::string(kFormatProperty) + "=" + f +
                  " is unknown (docker-archive, oci-archive, rootfs-tar)");
  }
  if (cf == "docker") return Accept(ArchiveKind::kDockerArchive);
  if (df == "root-tar") {
    if (!cf.empty() && !OneOf(cf, {"bare", "compressed"})) {
      return Refuse("disk_format root-tar in container_format " + cf + " is not one Berth reads");
    }
    return Accept(ArchiveKind::kRootfsTar);
  }
  if (cf == "bare" && df == "raw") return Accept(ArchiveKind::kRootfsTar, /*sniff=*/true);
  if (cf == "compressed") {
    return Refuse("container_format compressed needs the property " + std::string(kFormatProperty) +
                  " to say what the archive is");
  }
  return Refuse("container_format " + (cf.empty() ? std::string("(none)") : cf) +
                " with disk_format " + (df.empty() ? std::string("(none)") : df) +
                " is not a container image");
}

bool LooksLikeArchive(std::string_view head) {
  auto starts = [&](std::string_view magic) { return head.substr(0, magic.size()) == magic; };
  if (starts("\x1f\x8b")) return true;                               // gzip
  if (starts(std::string_view("\x28\xb5\x2f\xfd", 4))) return true;  // zstd
  if (starts(std::string_view("\xfd"
                              "7zXZ\x00",
                              6)))
    return true;                   // xz
  if (starts("BZh")) return true;  // bzip2
  // POSIX/GNU tar: "ustar" at offset 257 of the first header.
  return head.size() >= 262 && head.substr(257, 5) == "ustar";
}

}  // namespace berth::glance
