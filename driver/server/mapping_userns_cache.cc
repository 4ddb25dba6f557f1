#include "driver/server/mapping_userns_cache.h"

#include <algorithm>

#include "runtime/common/error.h"
#include "runtime/linux/idmap_mount.h"

namespace berth::server {

MappingUsernsCache::MappingUsernsCache(Maker make, size_t capacity)
    : make_(
          make
              ? std::move(make)
              : [](const IdRange&
                       r) { return container::MakeMappingUserns(r.UidMappings(), r.GidMappings()); }),
      capacity_(std::max<size_t>(capacity, 1)),
      worker_([this] { Run(); }) {}

MappingUsernsCache::~MappingUsernsCache() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void MappingUsernsCache::Insert(const Key& key, std::shared_ptr<const UniqueFd> fd) {
  if (fds_.count(key)) return;
  while (fds_.size() >= capacity_ && !order_.empty()) {
    fds_.erase(order_.front());
    order_.pop_front();
  }
  fds_.emplace(key, std::move(fd));
  order_.push_back(key);
}

std::shared_ptr<const UniqueFd> MappingUsernsCache::Get(const IdRange& range) {
  const Key key = KeyOf(range);
  {
    std::lock_guard lock(mu_);
    if (auto it = fds_.find(key); it != fds_.end()) return it->second;
  }
  // Made outside the lock: two spawns of different slots do not wait for each other. Two of
  // the same slot cannot happen (a slot belongs to one instance); a prewarm racing this one
  // only wastes a namespace.
  auto fd = std::make_shared<const UniqueFd>(make_(range));
  std::lock_guard lock(mu_);
  Insert(key, fd);
  return fd;
}

void MappingUsernsCache::Prewarm(const IdRange& range) {
  {
    std::lock_guard lock(mu_);
    if (fds_.count(KeyOf(range))) return;
    for (const auto& q : queue_) {
      if (q == range) return;
    }
    queue_.push_back(range);
  }
  cv_.notify_all();
}

void MappingUsernsCache::Drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return queue_.empty() && !busy_; });
}

size_t MappingUsernsCache::size() {
  std::lock_guard lock(mu_);
  return fds_.size();
}

void MappingUsernsCache::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    IdRange range = queue_.front();
    queue_.pop_front();
    if (fds_.count(KeyOf(range))) {
      cv_.notify_all();  // Drain() may wait for this queue to empty
      continue;
    }
    busy_ = true;
    lock.unlock();
    std::shared_ptr<const UniqueFd> fd;
    try {
      fd = std::make_shared<const UniqueFd>(make_(range));
    } catch (const std::exception&) {
    }
    lock.lock();
    busy_ = false;
    if (fd) Insert(KeyOf(range), std::move(fd));
    cv_.notify_all();
  }
}

}  // namespace berth::server
