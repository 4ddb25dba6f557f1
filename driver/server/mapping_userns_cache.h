// User namespaces that carry one slot's uid/gid mapping, kept open for idmapped mounts.
// Making one costs a clone and two map writes (about a third of a spawn's idmapped-mount
// step), so berthd keeps the namespace of every slot it has used and makes the next slot's
// ahead of time, on a thread of its own, while the current spawn goes on.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>

#include "driver/server/userns_ranges.h"
#include "runtime/common/unique_fd.h"

namespace berth::server {

class MappingUsernsCache {
 public:
  using Maker = std::function<UniqueFd(const IdRange&)>;
  // `make` defaults to container::MakeMappingUserns; tests count calls through their own.
  explicit MappingUsernsCache(Maker make = {}, size_t capacity = 256);
  ~MappingUsernsCache();
  MappingUsernsCache(const MappingUsernsCache&) = delete;
  MappingUsernsCache& operator=(const MappingUsernsCache&) = delete;

  // The namespace for `range`, made now when it is not cached. Shared: eviction never closes
  // an fd a mount is still being made with.
  std::shared_ptr<const UniqueFd> Get(const IdRange& range);
  // Makes `range`'s namespace on the background thread unless it is cached or queued.
  // Failures there are dropped: Get() makes it again and reports the error then.
  void Prewarm(const IdRange& range);
  // Blocks until the background queue is empty (tests).
  void Drain();
  size_t size();

 private:
  using Key = std::tuple<uint32_t, uint32_t, uint32_t>;
  static Key KeyOf(const IdRange& r) { return {r.uid, r.gid, r.size}; }
  void Insert(const Key& key, std::shared_ptr<const UniqueFd> fd);  // mu_ held
  void Run();

  Maker make_;
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::shared_ptr<const UniqueFd>> fds_;
  std::deque<Key> order_;  // insertion order, for eviction
  std::deque<IdRange> queue_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace berth::server
