// ReadConsole over files laid out as berth-monitor rotates them: a reader that follows
// with cursors gets every byte once, across rotations; a cursor whose file rotated away
// twice is reported lost.
#include "driver/server/console_follow.h"

#include <gtest/gtest.h>
#include <stdio.h>

#include <fstream>
#include <string>

#include "runtime/common/error.h"
#include "tests/support/test_env.h"

namespace berth::server {
namespace {

class ConsoleLog {
 public:
  explicit ConsoleLog(const std::string& dir) : dir_(dir) {}
  void Append(const std::string& text) {
    std::ofstream(dir_ + "/console.log", std::ios::app) << text;
  }
  // As the monitor does: console.log becomes console.log.1, a new console.log starts.
  void Rotate() {
    ASSERT_EQ(::rename((dir_ + "/console.log").c_str(), (dir_ + "/console.log.1").c_str()), 0);
  }

 private:
  std::string dir_;
};

TEST(ConsoleReadTest, TailThenEveryByteOnceAcrossRotations) {
  berth::testing::TempDir dir;
  ConsoleLog log(dir.path());
  log.Append("a1\na2\n");
  log.Rotate();
  log.Append("b1\nb2\n");
  ConsoleRead first = ReadConsole(dir.path(), std::nullopt, 3, 1 << 20);
  EXPECT_EQ(first.text, "a2\nb1\nb2\n");
  std::string seen;
  ConsoleCursor cur = first.next;
  auto poll = [&] {
    ConsoleRead r = ReadConsole(dir.path(), cur, 0, 1 << 20);
    EXPECT_FALSE(r.lost);
    seen += r.text;
    cur = r.next;
  };
  poll();
  EXPECT_EQ(seen, "");
  log.Append("b3\n");
  log.Rotate();  // the reader's file is now console.log.1
  log.Append("c1\n");
  poll();
  EXPECT_EQ(seen, "b3\nc1\n");
  log.Append("c2\n");
  poll();
  poll();
  EXPECT_EQ(seen, "b3\nc1\nc2\n");
}

TEST(ConsoleReadTest, ABigBacklogComesInBoundedPieces) {
  berth::testing::TempDir dir;
  ConsoleLog log(dir.path());
  ConsoleRead start = ReadConsole(dir.path(), std::nullopt, 10, 1 << 20);
  EXPECT_EQ(start.text, "");
  std::string big;
  for (int i = 0; i < 1000; ++i) big += "line " + std::to_string(i) + "\n";
  log.Append(big);
  std::string seen;
  ConsoleCursor cur = start.next;  // before the file existed
  for (int i = 0; i < 1000 && seen.size() < big.size(); ++i) {
    ConsoleRead r = ReadConsole(dir.path(), cur, 0, 100);
    EXPECT_LE(r.text.size(), 100u);
    EXPECT_FALSE(r.lost);
    seen += r.text;
    cur = r.next;
  }
  EXPECT_EQ(seen, big);
}

TEST(ConsoleReadTest, ACursorRotatedAwayTwiceIsLost) {
  berth::testing::TempDir dir;
  ConsoleLog log(dir.path());
  log.Append("x\n");
  ConsoleCursor cur = ReadConsole(dir.path(), std::nullopt, 10, 1 << 20).next;
  log.Rotate();
  log.Append("y\n");
  log.Rotate();
  log.Append("z\n");
  ConsoleRead r = ReadConsole(dir.path(), cur, 0, 1 << 20);
  EXPECT_TRUE(r.lost);
  EXPECT_EQ(r.text, "y\nz\n");  // everything still kept
}

TEST(ConsoleReadTest, NoFilesMeansNothingNewAndTheSameCursor) {
  berth::testing::TempDir dir;
  ConsoleCursor since{42, 8, 9, 7};
  ConsoleRead r = ReadConsole(dir.path(), since, 0, 1 << 20);
  EXPECT_EQ(r.text, "");
  EXPECT_FALSE(r.lost);
  EXPECT_EQ(r.next.str(), "42-8-9-7");
}

TEST(ConsoleCursorTest, ParsesWhatItPrintsAndNothingElse) {
  EXPECT_EQ(ConsoleCursor::Parse("123-5-789-456").str(), "123-5-789-456");
  for (const char* bad :
       {"", "-", "1-", "-2", "1-2-3", "1-2-3-4-5", "a-1-2", "1- 2-3", "../x", "1_2_3", "1-2-3-"}) {
    EXPECT_THROW(ConsoleCursor::Parse(bad), Error) << bad;
  }
}

TEST(TailLinesTest, LastLines) {
  EXPECT_EQ(TailLines("a\nb\nc\n", 2), "b\nc\n");
  EXPECT_EQ(TailLines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(TailLines("a\n", 5), "a\n");
  EXPECT_EQ(TailLines("a\nb\n", 0), "");
}

}  // namespace
}  // namespace berth::server
