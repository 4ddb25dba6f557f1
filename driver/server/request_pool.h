// Threads for the requests that can take long (image import and export, spawn with a Glance
// download, stop with its timeout, exec, snapshot, diff), so that they never hold one of
// Pistache's threads: Pistache gives each connection to one of its threads for good, so a
// long handler there stalls every other connection that thread serves.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace berth::server {

class RequestPool {
 public:
  explicit RequestPool(size_t threads);
  ~RequestPool();  // Stop() without waiting
  RequestPool(const RequestPool&) = delete;
  RequestPool& operator=(const RequestPool&) = delete;

  // Runs `task` on a pool thread; tasks beyond the threads wait in order. False once stopped.
  bool Post(std::function<void()> task);
  // Refuses new tasks, waits up to `wait` for the queued and running ones, then leaves any
  // still running to end with the process (a paused or stuck handler must not hold up a
  // shutdown). Returns whether all finished.
  bool Stop(std::chrono::milliseconds wait);

  size_t busy() const;

 private:
  // Shared with the threads: one left running after Stop() must not outlive it.
  struct State {
    std::mutex mu;
    std::condition_variable wake;
    std::condition_variable idle;
    std::deque<std::function<void()>> queue;
    size_t running = 0;
    bool stopping = false;
  };
  static void Work(std::shared_ptr<State> state);

  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::vector<std::thread> threads_;
};

}  // namespace berth::server
