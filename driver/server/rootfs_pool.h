// One instance root filesystem made ahead: a snapshot on an image's top layer and its
// mounts (the overlay over the layers idmapped for a user namespace slot), made on a
// thread of its own after a spawn, for the image just spawned and the slot the next spawn
// gets. A spawn of that image into that slot takes it and skips its snapshot record and
// its rootfs mounts (~3 ms of a ~16 ms spawn, docs/runtime.md).
//
// The root is kept as a detached mount (an open_tree clone, held by an fd): nothing in the
// mount table, and a berthd killed at any moment takes it along. Only while it is being
// made does it sit in <dir>/<key>/ (mounted on rootfs, the layers under idmap-scratch);
// RemoveLeftovers unmounts and removes those at the next start. A snapshot made for the
// pool is named kKeyPrefix + random: berthd's orphan walk at start removes the ones no
// instance record names (a root taken by a spawn keeps its key, recorded as the disk).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "driver/server/mapping_userns_cache.h"
#include "driver/server/userns_ranges.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/image/image_store.h"

namespace berth::server {

class RootfsPool {
 public:
  static constexpr const char* kKeyPrefix = "pool-";

  // What a root is made for: an image's top layer (its chain id) and the user namespace
  // slot whose ids its layers are mapped to (nullopt: not mapped, userns off).
  struct Target {
    std::string image_id;  // for the check that the image still exists; not compared
    std::string top_chain;
    std::optional<IdRange> range;
    bool Matches(const Target& o) const { return top_chain == o.top_chain && range == o.range; }
  };
  // A root made ahead: its snapshot (the taker's from now on) and its detached mount.
  struct Root {
    std::string key;
    Target target;
    UniqueFd mount;
  };

  // `image_mu`: berthd's lock that keeps an image from being removed between being looked
  // up and getting a snapshot; the pool takes it to make its snapshot. `idle`: true when no
  // spawn is in flight (null: always).
  RootfsPool(std::string dir, store::ImageStore& images, std::mutex& image_mu,
             MappingUsernsCache& userns_cache, std::function<bool()> idle = {});
  ~RootfsPool();
  RootfsPool(const RootfsPool&) = delete;
  RootfsPool& operator=(const RootfsPool&) = delete;

  // Start-up, before the worker has made anything: unmounts and removes what a killed
  // berthd left under dir (a root being made). Its snapshots are the orphan walk's.
  void RemoveLeftovers();

  // Asks for a root for `target`, replacing one made for another; returns at once. It is
  // made after kQuiet without another Fill, and only if no spawn is in flight then: a spawn
  // never shares the CPU or the snapshot database with it, and a storm, whose spawns take
  // the slots faster than roots could be made for them, makes none.
  void Fill(const Target& target);
  static constexpr std::chrono::milliseconds kQuiet{50};
  // The root made for `target` when it is ready; never waits for one being made.
  // Call with image_mu held (as a spawn does when it looks up its image).
  std::optional<Root> Take(const Target& target);
  // Drops the root whose top layer `uses` says is the image's (ready, or being made: then
  // it is not made, or destroyed once made; a snapshot the worker holds is waited for), so
  // that the image can be removed. Call with image_mu held. True when a ready one went.
  bool DropIf(const std::function<bool(const std::string& top_chain)>& uses);
  // Ends the worker and drops the root (berthd's shutdown).
  void Stop();

  // Puts the root's mount on `rootfs` (an existing directory). The mount fd is spent.
  static void Attach(Root& root, const std::string& rootfs);

 private:
  void Run();
  // Makes the root for `target`; nullopt when cancelled first or its image is gone.
  std::optional<Root> Make(const Target& target);
  void Destroy(Root& root);

  std::string dir_;
  store::ImageStore& images_;
  std::mutex& image_mu_;
  MappingUsernsCache& userns_cache_;
  std::function<bool()> idle_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Target> wanted_;  // the next root to make
  std::optional<Root> ready_;
  // A root is being made: from the job's start until it is ready or destroyed.
  bool busy_ = false;
  std::string busy_top_chain_;
  // The worker holds a snapshot not in ready_ (one being mounted, or a replaced root being
  // removed); DropIf waits it out. Set true only under image_mu or with no image_mu taken
  // until it is false again, so a DropIf (holding image_mu) never waits on the worker
  // waiting for image_mu.
  bool busy_has_snapshot_ = false;
  bool cancel_ = false;  // DropIf or Stop: the root in making is not wanted any more
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace berth::server
