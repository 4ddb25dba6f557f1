// DeferredFsyncs: durable writes on the thread that holds one are in place at once, and
// owe their fsyncs until Release() hands them over.
#include <gtest/gtest.h>

#include <thread>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth {
namespace {

TEST(DeferredFsyncs, WritesAreInPlaceAndOwedOnceInOrder) {
  testing::TempDir dir;
  const std::string a = dir.Sub("a.json"), b = dir.Sub("b.json");
  DeferredFsyncs deferred;
  WriteFileAtomic(a, "1");
  WriteFileAtomic(b, "2");
  WriteFileAtomic(a, "3");                                                   // owed once
  WriteFileAtomic(dir.Sub("run.json"), "x", 0600, Durability::kAtomicOnly);  // owes nothing
  EXPECT_EQ(ReadFile(a), "3");
  EXPECT_EQ(ReadFile(b), "2");
  EXPECT_EQ(deferred.Release(), (std::vector<std::string>{a, b}));
  // Released: durable again, nothing more owed.
  WriteFileAtomic(dir.Sub("c.json"), "4");
  EXPECT_TRUE(deferred.Release().empty());
  FsyncFilesAndDirs({a, b});
  EXPECT_THROW(FsyncFilesAndDirs({dir.Sub("missing.json")}), Error);
}

TEST(DeferredFsyncs, OnlyTheHoldingThreadDefersAndScopesNest) {
  testing::TempDir dir;
  DeferredFsyncs outer;
  std::thread([&] { WriteFileAtomic(dir.Sub("other-thread.json"), "t"); }).join();
  {
    DeferredFsyncs inner;
    WriteFileAtomic(dir.Sub("inner.json"), "i");
    EXPECT_EQ(inner.Release(), (std::vector<std::string>{dir.Sub("inner.json")}));
  }
  WriteFileAtomic(dir.Sub("outer.json"), "o");
  EXPECT_EQ(outer.Release(), (std::vector<std::string>{dir.Sub("outer.json")}));
}

}  // namespace
}  // namespace berth
