#include "runtime/store/archive/background_hasher.h"

#include <gtest/gtest.h>

#include <string>

#include "runtime/store/blob/digest.h"

namespace berth::store {
namespace {

TEST(BackgroundHasherTest, InterleavedJobsHashInSubmitOrder) {
  std::string a, b;
  BackgroundHasher hasher;
  Sha256 ha, hb;
  BufferRing ring(hasher, 2, 4096);
  for (int i = 0; i < 500; ++i) {
    // Each buffer is rewritten as soon as the ring hands it out again: a hash that read a
    // buffer after its reuse would differ from the reference digest.
    for (Sha256* h : {&ha, &hb}) {
      char* buf = ring.Next();
      std::string chunk =
          (h == &ha ? "a" : "b") + std::to_string(i * 7919) + std::string(i % 97, 'x');
      chunk.copy(buf, chunk.size());
      (h == &ha ? a : b) += chunk;
      ring.Hashing(hasher.Submit(*h, buf, chunk.size()));
    }
  }
  hasher.Drain();
  EXPECT_EQ(ha.Final(), Digest::Of(a));
  EXPECT_EQ(hb.Final(), Digest::Of(b));
}

TEST(BackgroundHasherTest, StopWithPendingJobsReturns) {
  std::string big(8 << 20, 'z');
  Sha256 h;
  BackgroundHasher hasher;
  for (int i = 0; i < 16; ++i) hasher.Submit(h, big.data(), big.size());
  hasher.Stop();
  hasher.Stop();  // idempotent, and the destructor calls it again
}

TEST(BackgroundHasherTest, WaitForZeroReturnsAtOnce) {
  BackgroundHasher hasher;
  hasher.WaitFor(0);
  hasher.Drain();
}

}  // namespace
}  // namespace berth::store
