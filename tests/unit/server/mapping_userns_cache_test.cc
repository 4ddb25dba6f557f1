#include "driver/server/mapping_userns_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>

namespace berth::server {
namespace {

IdRange Slot(uint32_t n) { return IdRange{100000 + n * 65536, 200000 + n * 65536, 65536}; }

// Stands in for a namespace: any fd that is really open.
struct CountingMaker {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  bool fail = false;
  MappingUsernsCache::Maker Fn() {
    return [c = calls, f = fail](const IdRange&) {
      ++*c;
      if (f) throw std::runtime_error("clone CLONE_NEWUSER: EPERM");
      return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    };
  }
};

TEST(MappingUsernsCache, MakesEachSlotsNamespaceOnce) {
  CountingMaker m;
  MappingUsernsCache cache(m.Fn());
  auto a = cache.Get(Slot(0));
  auto b = cache.Get(Slot(0));
  auto c = cache.Get(Slot(1));
  EXPECT_EQ(*m.calls, 2);
  EXPECT_EQ(a.get(), b.get());
  EXPECT_NE(a->get(), c->get());
  EXPECT_GE(a->get(), 0);
}

TEST(MappingUsernsCache, PrewarmedSlotCostsTheSpawnNothing) {
  CountingMaker m;
  MappingUsernsCache cache(m.Fn());
  cache.Prewarm(Slot(3));
  cache.Prewarm(Slot(3));  // queued once
  cache.Drain();
  EXPECT_EQ(*m.calls, 1);
  EXPECT_EQ(cache.size(), 1u);
  cache.Get(Slot(3));
  EXPECT_EQ(*m.calls, 1);
  cache.Prewarm(Slot(3));  // already there: nothing queued
  cache.Drain();
  EXPECT_EQ(*m.calls, 1);
}

TEST(MappingUsernsCache, EvictsTheOldestButKeepsFdsInUseOpen) {
  CountingMaker m;
  MappingUsernsCache cache(m.Fn(), 2);
  auto first = cache.Get(Slot(0));
  cache.Get(Slot(1));
  cache.Get(Slot(2));  // evicts slot 0
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_GE(::fcntl(first->get(), F_GETFD), 0) << "evicted while a mount still used it";
  cache.Get(Slot(0));
  EXPECT_EQ(*m.calls, 4);
}

TEST(MappingUsernsCache, FailedPrewarmIsReportedByTheSpawnThatNeedsIt) {
  CountingMaker m;
  m.fail = true;
  MappingUsernsCache cache(m.Fn());
  cache.Prewarm(Slot(0));
  cache.Drain();
  EXPECT_EQ(cache.size(), 0u);
  try {
    cache.Get(Slot(0));
    FAIL() << "expected the maker's error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("EPERM"), std::string::npos);
  }
}

}  // namespace
}  // namespace berth::server
