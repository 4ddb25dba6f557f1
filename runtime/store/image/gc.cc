// ImageStore::Gc: reference counting by reachability. Roots are the image records and the
// active snapshots and views (which pin their parent chains); everything else in the layer
// store, layerdb and blob store is garbage. Holding the store lock exclusively means no
// import, commit or rm is half-way through, so their scratch snapshots and ingest files
// are leftovers of a crash too.
#include <unistd.h>

#include <map>
#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/image/image_store.h"

namespace berth::store {
namespace {

bool ScratchKey(const std::string& key) {
  return key.rfind("extract-", 0) == 0 || key.rfind("commit-", 0) == 0;
}

}  // namespace

GcResult ImageStore::Gc() {
  UniqueFd lock = LockStore(true);
  GcResult result;
  for (const std::string& n : ListDirectory(root_ + "/images")) {
    if (n.size() > 9 && n.compare(n.size() - 9, 9, ".removing") == 0) {
      FinishRemoval(root_ + "/images/" + n);
      result.removals_finished++;
    }
  }

  std::map<std::string, SnapshotInfo> snapshots;
  layers_->Walk([&](const SnapshotInfo& i) { snapshots[i.name] = i; });
  for (const auto& [key, info] : snapshots) {
    if (info.kind == SnapshotKind::kActive && ScratchKey(key)) {
      layers_->Remove(key);
      result.snapshots++;
    }
  }
  snapshots.clear();
  layers_->Walk([&](const SnapshotInfo& i) { snapshots[i.name] = i; });

  std::set<std::string> live;
  std::set<Digest> live_blobs;
  auto pin = [&](std::string name) {
    while (!name.empty() && live.insert(name).second) {
      auto it = snapshots.find(name);
      if (it == snapshots.end()) break;
      name = it->second.parent;
    }
  };
  for (const ImageRecord& r : List()) {
    live_blobs.insert(r.id);
    pin(r.top_chain().str());
  }
  for (const auto& [key, info] : snapshots) {
    if (info.kind != SnapshotKind::kCommitted) pin(info.parent);
  }
  // Dead committed layers, children before parents.
  for (bool progress = true; progress;) {
    progress = false;
    std::set<std::string> parents;
    for (const auto& [key, info] : snapshots) parents.insert(info.parent);
    for (auto it = snapshots.begin(); it != snapshots.end();) {
      const SnapshotInfo& info = it->second;
      if (info.kind == SnapshotKind::kCommitted && !live.count(info.name) &&
          !parents.count(info.name)) {
        layers_->Remove(info.name);
        result.layers++;
        progress = true;
        it = snapshots.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const std::string& n : ListDirectory(root_ + "/layerdb")) {
    std::string hex = n.size() == 69 ? n.substr(0, 64) : "";
    if (!Digest::IsValid("sha256:" + hex) || !snapshots.count("sha256:" + hex)) {
      if (::unlink((root_ + "/layerdb/" + n).c_str()) == 0) result.layer_records++;
    }
  }
  for (const Digest& d : blobs_.List()) {
    if (!live_blobs.count(d)) {
      blobs_.Delete(d);
      result.blobs++;
    }
  }
  for (const std::string& n : ListDirectory(root_ + "/ingest")) {
    if (::unlink((root_ + "/ingest/" + n).c_str()) == 0) result.blobs++;
  }
  result.dirs = layers_->RemoveOrphans();
  return result;
}

}  // namespace berth::store
