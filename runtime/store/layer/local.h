// The part of the overlay and vfs drivers that is the same: snapshot metadata kept in one
// JSON file (<root>/metadata.json, replaced atomically under an flock on <root>/lock),
// numeric snapshot directories <root>/snapshots/<id>/, parent checks, removal rules.
// Drivers fill in the directory work through the hooks below.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/layer/snapshotter.h"

namespace berth::store {

struct SnapshotRecord {
  std::string id;    // directory name under snapshots/
  std::string link;  // driver-specific short name (overlay: the l/ link), may be empty
  SnapshotInfo info;
};

struct SnapshotDb {
  uint64_t next_id = 1;
  std::map<std::string, SnapshotRecord> records;  // by key/name
};

class LocalSnapshotter : public Snapshotter {
 public:
  std::vector<Mount> Prepare(const std::string& key, const std::string& parent) override;
  std::vector<Mount> View(const std::string& key, const std::string& parent) override;
  std::vector<Mount> Mounts(const std::string& key) const override;
  void Commit(const std::string& name, const std::string& key) override;
  void Remove(const std::string& key) override;
  SnapshotInfo Stat(const std::string& key) const override;
  void Walk(const std::function<void(const SnapshotInfo&)>& fn) const override;
  SnapshotUsage Usage(const std::string& key) const override;
  std::string ApplyDir(const std::string& key) const override;
  std::vector<DiffEntry> Changes(const std::string& key) const override;
  size_t RemoveOrphans() override;

  const std::string& root() const { return root_; }
  std::string SnapshotDir(const std::string& id) const { return root_ + "/snapshots/" + id; }

 protected:
  explicit LocalSnapshotter(std::string root);

  // chain: the committed ancestors, nearest first (chain[0] is the parent).
  virtual void CreateDirs(SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain,
                          const SnapshotDb& db) = 0;
  virtual std::vector<Mount> MountsFor(const SnapshotRecord& rec,
                                       const std::vector<const SnapshotRecord*>& chain) const = 0;
  virtual std::vector<DiffEntry> ChangesFor(
      const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const = 0;
  virtual void OnCommit(const SnapshotRecord& /*rec*/) {}
  virtual void RemoveDirs(const SnapshotRecord& rec);
  // Removes one snapshot directory whatever it holds (btrfs: subvolumes, which a plain
  // recursive removal cannot cross).
  virtual void RemoveSnapshotDir(const std::string& dir) { RemoveTree(dir); }
  // Driver-specific leftovers (overlay: dangling short links).
  virtual size_t RemoveOrphanLinks() { return 0; }
  // The directory whose content is this snapshot's own data (Usage, ApplyDir).
  std::string FsDir(const SnapshotRecord& rec) const { return SnapshotDir(rec.id) + "/fs"; }

 private:
  std::vector<Mount> Create(const std::string& key, const std::string& parent, SnapshotKind kind);
  UniqueFd Lock(bool exclusive) const;
  SnapshotDb Load() const;
  void Save(const SnapshotDb& db) const;
  static std::vector<const SnapshotRecord*> Chain(const SnapshotDb& db, const std::string& parent);
  static const SnapshotRecord& Find(const SnapshotDb& db, const std::string& key);

  std::string root_;
};

// Exposed for tests: the metadata file format.
std::string SerializeSnapshotDb(const SnapshotDb& db);
SnapshotDb ParseSnapshotDb(const std::string& json, const std::string& path);

}  // namespace berth::store
