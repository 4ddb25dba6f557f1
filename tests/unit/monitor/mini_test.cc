// The monitor's allocation-free helpers: time and number formatting, keyed files.
#include "runtime/monitor/mini.h"

#include <gtest/gtest.h>

#include "runtime/monitor/freezer.h"

namespace berth::monitor::mini {
namespace {

TEST(Text, FormatsTimesAsRfc3339Utc) {
  FixedText<64> t;
  t.AddTime({0, 0});
  EXPECT_STREQ(t.c_str(), "1970-01-01T00:00:00.000000000Z");
  t.Clear();
  t.AddTime({951782400 + 86399, 5});  // 2000-02-29, a leap day in a century year
  EXPECT_STREQ(t.c_str(), "2000-02-29T23:59:59.000000005Z");
  t.Clear();
  t.AddTime({1795834298, 123456789});
  EXPECT_STREQ(t.c_str(), "2026-11-28T02:51:38.123456789Z");
}

TEST(Text, NumbersAndOverflow) {
  FixedText<8> t;
  t.AddSigned(-12).AddChar(' ').AddUnsigned(0);
  EXPECT_STREQ(t.c_str(), "-12 0");
  EXPECT_FALSE(t.overflow());
  t.Add("abc");
  EXPECT_TRUE(t.overflow());
  EXPECT_STREQ(t.c_str(), "-12 0");  // nothing half-appended
}

TEST(ParseUnsigned, Bounds) {
  unsigned long long v = 0;
  EXPECT_TRUE(ParseUnsigned("64", 64, &v));
  EXPECT_EQ(v, 64u);
  EXPECT_FALSE(ParseUnsigned("65", 64, &v));
  EXPECT_FALSE(ParseUnsigned("", 64, &v));
  EXPECT_FALSE(ParseUnsigned("-1", 64, &v));
  EXPECT_FALSE(ParseUnsigned("1x", 64, &v));
  EXPECT_FALSE(ParseUnsigned("99999999999999999999999", ~0ull, &v));
}

TEST(FindKeyedValue, MemoryEventsAndOomControl) {
  EXPECT_EQ(FindKeyedValue("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n", "oom_kill"), 1);
  EXPECT_EQ(FindKeyedValue("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n", "oom_kill"), 4);
  EXPECT_EQ(FindKeyedValue("oom_kill_disable 0\n", "oom_kill"), -1);
  EXPECT_EQ(FindKeyedValue("populated 1\nfrozen 1\n", "frozen"), 1);
}

TEST(Freezer, KindFollowsTheFileName) {
  EXPECT_EQ(FreezerKindFor("/sys/fs/cgroup/freezer/x/freezer.state"), FreezerKind::kV1);
  EXPECT_EQ(FreezerKindFor("/sys/fs/cgroup/x/cgroup.freeze"), FreezerKind::kV2);
  EXPECT_EQ(FreezerKindFor("/sys/fs/cgroup/x/cgroup.procs"), FreezerKind::kNone);
}

}  // namespace
}  // namespace berth::monitor::mini
