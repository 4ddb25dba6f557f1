#include "runtime/monitor/console_rotation.h"

#include <gtest/gtest.h>

#include <vector>

namespace berth::monitor {
namespace {

// Replays PlanConsoleWrite over a sequence of chunk sizes, like the monitor does, and
// returns the size of console.log after each rotation plus the final one.
struct Replay {
  std::vector<unsigned long long> rotated_sizes;  // console.log.1's size at each rotation
  unsigned long long current = 0;
  unsigned long long total_written = 0;
};

Replay ReplayWrites(unsigned long long start, const std::vector<unsigned long long>& chunks,
                    unsigned long long max) {
  Replay r;
  r.current = start;
  for (unsigned long long pending : chunks) {
    while (pending > 0) {
      ConsoleStep step = PlanConsoleWrite(r.current, pending, max);
      if (step.rotate_first) {
        r.rotated_sizes.push_back(r.current);
        r.current = 0;
      }
      EXPECT_GT(step.write_len, 0u);
      r.current += step.write_len;
      r.total_written += step.write_len;
      pending -= step.write_len;
    }
  }
  return r;
}

TEST(ConsoleRotation, SmallWritesDoNotRotate) {
  ConsoleStep step = PlanConsoleWrite(10, 20, 100);
  EXPECT_FALSE(step.rotate_first);
  EXPECT_EQ(step.write_len, 20u);
}

TEST(ConsoleRotation, WriteThatWouldPassHalfIsSplit) {
  ConsoleStep step = PlanConsoleWrite(40, 30, 100);
  EXPECT_FALSE(step.rotate_first);
  EXPECT_EQ(step.write_len, 10u);  // up to exactly max/2
  step = PlanConsoleWrite(50, 20, 100);
  EXPECT_TRUE(step.rotate_first);
  EXPECT_EQ(step.write_len, 20u);
}

TEST(ConsoleRotation, FileAlreadyOverHalfRotatesFirst) {
  // A console.log left by an earlier run with a larger bound.
  ConsoleStep step = PlanConsoleWrite(500, 5, 100);
  EXPECT_TRUE(step.rotate_first);
  EXPECT_EQ(step.write_len, 5u);
}

TEST(ConsoleRotation, HugeChunkIsCutIntoHalves) {
  ConsoleStep step = PlanConsoleWrite(0, 1000, 100);
  EXPECT_FALSE(step.rotate_first);
  EXPECT_EQ(step.write_len, 50u);
}

TEST(ConsoleRotation, NeverMoreThanMaxOnDiskAndNothingLostBeforeTheTail) {
  const unsigned long long max = 64 * 1024;
  std::vector<unsigned long long> chunks;
  for (int i = 0; i < 1000; ++i) chunks.push_back(1 + (i * 7919) % 20000);
  Replay r = ReplayWrites(0, chunks, max);
  unsigned long long sum = 0;
  for (auto c : chunks) sum += c;
  EXPECT_EQ(r.total_written, sum);
  ASSERT_FALSE(r.rotated_sizes.empty());
  for (auto s : r.rotated_sizes) EXPECT_EQ(s, max / 2);  // each rotated file is full
  EXPECT_LE(r.current, max / 2);
  EXPECT_LE(r.rotated_sizes.back() + r.current, max);
}

TEST(ConsoleRotation, OddAndTinyBounds) {
  Replay r = ReplayWrites(0, {5, 5, 5}, 3);  // half is 1 byte
  EXPECT_EQ(r.current, 1u);
  EXPECT_EQ(r.rotated_sizes.size(), 14u);
  r = ReplayWrites(0, {7}, 2);
  EXPECT_EQ(r.current, 1u);
}

}  // namespace
}  // namespace berth::monitor
