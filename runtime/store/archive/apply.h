// Extracts one layer tar into a directory, securely: every member path is sanitised
// (path.h), every directory on the way is opened with O_NOFOLLOW relative to the layer root
// (so a symlink in the tree — from this tar or already there — is never followed), files
// are created with O_CREAT|O_EXCL|O_NOFOLLOW after removing whatever was at the name, and
// hardlinks must point at an entry inside the same tree. Whiteouts become the driver's form.
//
// Decisions for what images carry:
// - character and block devices are skipped and counted, never created (containers get
//   their /dev from the runtime; layers are mounted nodev anyway);
// - fifos are created; sockets are skipped;
// - xattrs in the user.* and security.* namespaces are kept; others (trusted.*, including
//   trusted.overlay.*, which would let a tenant forge whiteouts or redirects) are skipped
//   and counted;
// - a member whose path goes through a symlink is refused (kInvalidArgument), as Docker and
//   containerd never write such members.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/store/archive/layer_stream.h"
#include "runtime/store/layer/snapshotter.h"

namespace berth::store {

struct ApplyOptions {
  WhiteoutStyle style = WhiteoutStyle::kOverlay;
  // chown to the archive's owners; needs CAP_CHOWN (true by default when root).
  bool preserve_owners = true;
};

struct ApplyStats {
  uint64_t entries = 0;
  uint64_t files = 0;
  uint64_t bytes = 0;  // file data written
  uint64_t whiteouts = 0;
  uint64_t skipped_devices = 0;
  uint64_t skipped_xattrs = 0;
};

ApplyStats ApplyLayer(LayerStream& stream, const std::string& dir, const ApplyOptions& options);

}  // namespace berth::store
