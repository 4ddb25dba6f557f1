#include "driver/server/request_pool.h"

namespace berth::server {

RequestPool::RequestPool(size_t threads) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back(Work, state_);
}

RequestPool::~RequestPool() { Stop(std::chrono::milliseconds(0)); }

bool RequestPool::Post(std::function<void()> task) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return false;
    state_->queue.push_back(std::move(task));
  }
  state_->wake.notify_one();
  return true;
}

size_t RequestPool::busy() const {
  std::lock_guard lock(state_->mu);
  return state_->running + state_->queue.size();
}

bool RequestPool::Stop(std::chrono::milliseconds wait) {
  bool all_done;
  {
    std::unique_lock lock(state_->mu);
    state_->stopping = true;
    state_->wake.notify_all();
    all_done = state_->idle.wait_for(
        lock, wait, [this] { return state_->running == 0 && state_->queue.empty(); });
  }
  for (auto& t : threads_) {
    if (!t.joinable()) continue;
    if (all_done) {
      t.join();
    } else {
      t.detach();
    }
  }
  threads_.clear();
  return all_done;
}

void RequestPool::Work(std::shared_ptr<State> state) {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(state->mu);
      state->wake.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      // Queued work is still done when stopping: each task holds a client's answer.
      if (state->queue.empty()) return;
      task = std::move(state->queue.front());
      state->queue.pop_front();
      ++state->running;
    }
    task();
    {
      std::lock_guard lock(state->mu);
      --state->running;
      if (state->running == 0 && state->queue.empty()) state->idle.notify_all();
    }
  }
}

}  // namespace berth::server
