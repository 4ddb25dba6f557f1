// ThreadCache: tasks on kept threads, never queued behind a busy one.
#include "runtime/common/thread_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace berth {
namespace {

TEST(ThreadCache, ReturnsResultsAndExceptions) {
  ThreadCache cache;
  EXPECT_EQ(cache.Run([] { return 42; }).get(), 42);
  auto failed = cache.Run([]() -> std::string { throw std::runtime_error("disk full"); });
  try {
    failed.get();
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk full");
  }
}

TEST(ThreadCache, KeepsItsThreadsForLaterTasks) {
  ThreadCache cache;
  for (int i = 0; i < 50; ++i) cache.Run([] {}).get();
  // One task at a time: one thread, kept, however many tasks ran.
  EXPECT_EQ(cache.threads(), 1u);
}

// A chain of tasks each waiting for the one started after it (as the spawn's record
// publication waits for its staging): every task gets a thread, so none waits forever.
TEST(ThreadCache, TasksWaitingForLaterTasksDoNotDeadlock) {
  ThreadCache cache;
  constexpr int kChain = 16;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::vector<std::future<int>> chain;
  std::vector<std::shared_future<int>> links(kChain + 1);
  links[kChain] = cache
                      .Run([released] {
                        released.wait();
                        return 0;
                      })
                      .share();
  for (int i = kChain - 1; i >= 0; --i) {
    links[i] = cache.Run([next = links[i + 1]] { return next.get() + 1; }).share();
  }
  release.set_value();
  ASSERT_EQ(links[0].wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(links[0].get(), kChain);
  EXPECT_EQ(cache.threads(), static_cast<size_t>(kChain + 1));
}

// Like std::async's future: a Pending that goes out of scope waits for its task, so a task
// may use its starter's locals.
TEST(ThreadCache, APendingResultWaitsForItsTaskWhenDestroyed) {
  ThreadCache cache;
  std::atomic<bool> done{false};
  {
    Pending<void> pending = cache.Start([&done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      done = true;
    });
  }
  EXPECT_TRUE(done);
}

TEST(ThreadCache, EndingWaitsForQueuedAndRunningTasks) {
  std::atomic<int> ran{0};
  {
    ThreadCache cache;
    for (int i = 0; i < 8; ++i) {
      cache.Run([&ran] {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        ++ran;
      });
    }
  }
  EXPECT_EQ(ran, 8);
}

}  // namespace
}  // namespace berth
