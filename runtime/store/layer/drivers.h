// The local layer drivers.
//
// overlay: <root>/snapshots/<id>/{fs,work}; fs is the layer's own content (the upper dir
// while active). Every snapshot also gets a short link <root>/l/<12 chars> -> its fs, as
// Docker's overlay2 does, so a lowerdir list stays short: with the default root a 4 KiB page
// holds about 60 layers, and PerformMounts switches to the new mount API (one "lowerdir+"
// per layer, no page limit) beyond that. Whiteouts are overlay's own form.
//
// vfs: <root>/snapshots/<id>/fs is a full copy of the parent plus this layer's changes.
// Works on any filesystem; costs a copy per Prepare.
//
// btrfs: <root>/snapshots/<id>/fs is a btrfs subvolume. A base layer is a new subvolume;
// Prepare/View on a parent is one snapshot ioctl of the parent's subvolume (O(1), extents
// shared copy-on-write), read-only for views; Commit sets the subvolume read-only; Remove
// destroys it. Whiteouts are real deletions, as in vfs. Needs <root> on btrfs (statfs).
#pragma once

#include <memory>
#include <string>

#include "runtime/store/layer/local.h"

namespace berth::store {

class OverlaySnapshotter : public LocalSnapshotter {
 public:
  explicit OverlaySnapshotter(std::string root);
  std::string name() const override { return "overlay"; }
  WhiteoutStyle whiteout_style() const override { return WhiteoutStyle::kOverlay; }

 protected:
  void CreateDirs(SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain,
                  const SnapshotDb& db) override;
  std::vector<Mount> MountsFor(const SnapshotRecord& rec,
                               const std::vector<const SnapshotRecord*>& chain) const override;
  std::vector<DiffEntry> ChangesFor(const SnapshotRecord& rec,
                                    const std::vector<const SnapshotRecord*>& chain) const override;
  void OnCommit(const SnapshotRecord& rec) override;
  void RemoveDirs(const SnapshotRecord& rec) override;
  size_t RemoveOrphanLinks() override;

 private:
  std::string LinkPath(const SnapshotRecord& rec) const { return root() + "/l/" + rec.link; }
};

class VfsSnapshotter : public LocalSnapshotter {
 public:
  explicit VfsSnapshotter(std::string root);
  std::string name() const override { return "vfs"; }
  WhiteoutStyle whiteout_style() const override { return WhiteoutStyle::kDelete; }

 protected:
  void CreateDirs(SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain,
                  const SnapshotDb& db) override;
  std::vector<Mount> MountsFor(const SnapshotRecord& rec,
                               const std::vector<const SnapshotRecord*>& chain) const override;
  std::vector<DiffEntry> ChangesFor(const SnapshotRecord& rec,
                                    const std::vector<const SnapshotRecord*>& chain) const override;
};

class BtrfsSnapshotter : public LocalSnapshotter {
 public:
  // kUnsupported, naming root and the filesystem found, unless root (or, while it does not
  // exist yet, its nearest existing ancestor) is on btrfs.
  explicit BtrfsSnapshotter(std::string root);
  std::string name() const override { return "btrfs"; }
  WhiteoutStyle whiteout_style() const override { return WhiteoutStyle::kDelete; }

 protected:
  void CreateDirs(SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain,
                  const SnapshotDb& db) override;
  std::vector<Mount> MountsFor(const SnapshotRecord& rec,
                               const std::vector<const SnapshotRecord*>& chain) const override;
  std::vector<DiffEntry> ChangesFor(const SnapshotRecord& rec,
                                    const std::vector<const SnapshotRecord*>& chain) const override;
  void OnCommit(const SnapshotRecord& rec) override;
  void RemoveSnapshotDir(const std::string& dir) override;
};

// True when the running kernel lists overlay in /proc/filesystems.
bool KernelHasOverlay();

}  // namespace berth::store
