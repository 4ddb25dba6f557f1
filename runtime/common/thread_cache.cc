#include "runtime/common/thread_cache.h"

namespace berth {

ThreadCache::~ThreadCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

size_t ThreadCache::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

void ThreadCache::Post(Task task) {
  std::unique_lock lock(mu_);
  queue_.push_back(std::move(task));
  // Each free thread takes one queued task; the rest need a thread of their own.
  if (free_ >= queue_.size()) {
    lock.unlock();
    work_cv_.notify_one();
    return;
  }
  threads_.emplace_back([this] { Work(); });
}

void ThreadCache::Work() {
  std::unique_lock lock(mu_);
  bool counted_free = false;  // started for a queued task: not counted until it is done
  const std::function<void()> free = [this, &counted_free] {
    std::lock_guard free_lock(mu_);
    ++free_;
    counted_free = true;
  };
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (counted_free) {
      --free_;
      counted_free = false;
    }
    if (queue_.empty()) return;  // stopping, and nothing left to run
    Task task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task(free);  // marks this thread free, then publishes the result or the exception
    task = nullptr;
    lock.lock();
  }
}

}  // namespace berth
