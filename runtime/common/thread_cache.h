// Runs tasks on threads kept from earlier tasks. Starting a thread costs its starter
// ~0.06-0.13 ms on this kind of VM (clone, a stack mapped); handing a task to a kept one
// costs a wake-up. berthd's spawn starts four background tasks (its cgroup, the fsyncs of
// its record), all on the spawn's critical path when started with std::async.
//
// A task never waits for a free thread: when none is idle, one is started. So tasks may
// wait for each other (the record's publication waits for its staging) without a deadlock,
// and the number of threads is the most tasks ever run at once. They end with the cache.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace berth {

// A task's result. Like std::async's future, destroying it waits for the task: a task may
// refer to its starter's locals.
template <class T>
class Pending {
 public:
  Pending() = default;
  explicit Pending(std::future<T> future) : future_(std::move(future)) {}
  Pending(Pending&&) noexcept = default;
  Pending& operator=(Pending&& other) noexcept {
    Wait();
    future_ = std::move(other.future_);
    return *this;
  }
  ~Pending() { Wait(); }

  bool valid() const { return future_.valid(); }
  void wait() const { future_.wait(); }
  T get() { return future_.get(); }

 private:
  void Wait() noexcept {
    if (future_.valid()) future_.wait();
  }
  std::future<T> future_;
};

class ThreadCache {
 public:
  ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  // Waits for the tasks queued or running, then ends the threads.
  ~ThreadCache();

  template <class F>
  auto Run(F&& task) -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    using Result = std::invoke_result_t<std::decay_t<F>>;
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> result = promise->get_future();
    // The thread counts as free before the result is published: a caller that posts its
    // next task as soon as it has this one's result finds it free.
    Post([promise, fn = std::forward<F>(task)](const std::function<void()>& free) mutable {
      try {
        if constexpr (std::is_void_v<Result>) {
          fn();
          free();
          promise->set_value();
        } else {
          Result value = fn();
          free();
          promise->set_value(std::move(value));
        }
      } catch (...) {
        free();
        promise->set_exception(std::current_exception());
      }
    });
    return result;
  }

  // As Run, with a result that waits for the task when destroyed.
  template <class F>
  auto Start(F&& task) -> Pending<std::invoke_result_t<std::decay_t<F>>> {
    return Pending<std::invoke_result_t<std::decay_t<F>>>(Run(std::forward<F>(task)));
  }

  size_t threads() const;

 private:
  using Task = std::function<void(const std::function<void()>& free)>;
  void Post(Task task);
  void Work();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<Task> queue_;
  size_t free_ = 0;  // threads that will take a queued task: idle, or done with their own
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace berth
