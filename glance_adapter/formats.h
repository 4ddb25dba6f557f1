// Which Glance images Berth can run, and as what. Glance describes an image by
// container_format and disk_format (and free-form properties); the layer store imports a
// docker-archive, an OCI archive or a plain rootfs tarball.
//
//   container_format=docker (any disk_format)                        -> docker-archive
//   property berth_image_format=docker-archive|oci-archive|rootfs-tar -> that format
//     (with container_format bare or compressed; the property wins over disk_format)
//   disk_format=root-tar (container_format bare)                     -> rootfs tarball
//   container_format=bare, disk_format=raw                            -> rootfs tarball,
//     checked by its first bytes: a raw disk image is refused, not unpacked
//   container_format=ova|ovf|ami|aki|ari, disk_format=qcow2|vmdk|vdi|vhd|vhdx|iso|ploop|
//     ami|aki|ari                                                       -> refused
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace berth::glance {

// The property that names the archive format of a bare/compressed image.
inline constexpr const char* kFormatProperty = "berth_image_format";

enum class ArchiveKind { kDockerArchive, kOciArchive, kRootfsTar };
std::string_view ArchiveKindName(ArchiveKind k);  // docker-archive | oci-archive | rootfs-tar

struct FormatDecision {
  bool ok = false;
  ArchiveKind kind = ArchiveKind::kRootfsTar;
  // A rootfs tarball guessed from container_format=bare + disk_format=raw: its first bytes
  // must look like a tar (or a compressed stream) before anything is unpacked.
  bool sniff = false;
  std::string error;  // when !ok: why, and what to upload instead
};

FormatDecision DecideFormat(const std::string& container_format, const std::string& disk_format,
                            const std::map<std::string, std::string>& properties);

// What Berth can boot, for error messages.
const char* WhatToUpload();

// True when the first bytes of the data (up to 512) are a tar header or a gzip, zstd, xz
// or bzip2 stream; false for a disk image (MBR, GPT, qcow2, ...) or anything else.
bool LooksLikeArchive(std::string_view head);

}  // namespace berth::glance
