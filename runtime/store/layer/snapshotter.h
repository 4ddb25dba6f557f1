// The layer store's driver interface, in containerd's snapshotter vocabulary
// (core/snapshots/snapshotter.go):
//
//   Importing a layer:  Prepare("extract-x", parent_chain) gives an Active snapshot; the
//   importer applies the layer tar into ApplyDir("extract-x") in the driver's WhiteoutStyle,
//   then Commit(chain_id, "extract-x") turns it into a read-only Committed snapshot that
//   children can name as parent.
//   Running a container: Prepare(container_key, image_top_chain) and perform Mounts(key) on
//   the root; View(key, parent) gives a read-only root instead. Remove(key) when done.
//
// Mounts are returned as data; PerformMounts (mount.h) is the one function that carries
// them out, so everything but that function is testable without privileges.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/store/layer/diff.h"

namespace berth::store {

enum class SnapshotKind { kActive, kView, kCommitted };
std::string_view SnapshotKindName(SnapshotKind kind);

struct SnapshotInfo {
  std::string name;    // the key (Active/View) or the committed name
  std::string parent;  // committed parent name, empty for a base layer
  SnapshotKind kind = SnapshotKind::kActive;
  int64_t created = 0;  // unix seconds
  int64_t updated = 0;
};

struct SnapshotUsage {
  int64_t size = 0;    // bytes on disk (allocated blocks) of this snapshot's own data
  int64_t inodes = 0;  // distinct inodes
};

struct Mount {
  std::string type;                  // "overlay", "bind"
  std::string source;                // "overlay" or a directory
  std::vector<std::string> options;  // "ro", "rbind", "nodev", "lowerdir=a:b", ...
  friend bool operator==(const Mount&, const Mount&) = default;
};

// How whiteouts from a layer tar become real in this driver's apply directory.
enum class WhiteoutStyle {
  kOverlay,  // 0/0 character device; opaque dirs get trusted.overlay.opaque=y
  kDelete,   // the apply dir is a full copy of the parent: delete for real
};

class Snapshotter {
 public:
  virtual ~Snapshotter() = default;

  virtual std::string name() const = 0;
  virtual WhiteoutStyle whiteout_style() const = 0;

  // parent must be a Committed snapshot or empty. kAlreadyExists when key is taken,
  // kNotFound when parent is unknown, kInvalidArgument when parent is not committed.
  virtual std::vector<Mount> Prepare(const std::string& key, const std::string& parent) = 0;
  virtual std::vector<Mount> View(const std::string& key, const std::string& parent) = 0;
  virtual std::vector<Mount> Mounts(const std::string& key) const = 0;
  // Active `key` becomes Committed `name`. The snapshot must not be mounted.
  virtual void Commit(const std::string& name, const std::string& key) = 0;
  // kConflict when other snapshots name it as parent.
  virtual void Remove(const std::string& key) = 0;
  virtual SnapshotInfo Stat(const std::string& key) const = 0;
  virtual void Walk(const std::function<void(const SnapshotInfo&)>& fn) const = 0;
  virtual SnapshotUsage Usage(const std::string& key) const = 0;

  // The changes of an Active or Committed snapshot against its parent, in tar order
  // (diff.h). For an Active one the caller keeps writers away (berthd freezes the container).
  virtual std::vector<DiffEntry> Changes(const std::string& key) const = 0;

  // Removes snapshot data no metadata names (a crash between Remove's metadata update and
  // its directory removal). Returns how many were removed.
  virtual size_t RemoveOrphans() = 0;

  // The host directory where a layer diff is applied for an Active snapshot (overlay: the
  // upper dir; vfs: the full copy).
  virtual std::string ApplyDir(const std::string& key) const = 0;
};

// "overlay" (default), "vfs" or "btrfs"; anything else is kUnsupported. overlay checks at
// construction that the kernel supports it, btrfs that root is on btrfs.
std::unique_ptr<Snapshotter> OpenSnapshotter(const std::string& driver, const std::string& root);

// Deepest parent chain accepted (Docker's limit); checked before storage is touched.
constexpr size_t kMaxLayers = 128;

}  // namespace berth::store
