#include "runtime/common/signals.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "runtime/common/error.h"

namespace berth {
namespace {

TEST(SignalsTest, NamesNumbersAndRealtime) {
  EXPECT_EQ(ParseSignal("SIGKILL"), SIGKILL);
  EXPECT_EQ(ParseSignal("term"), SIGTERM);
  EXPECT_EQ(ParseSignal("PWR"), SIGPWR);
  EXPECT_EQ(ParseSignal("9"), SIGKILL);
  EXPECT_EQ(ParseSignal("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(ParseSignal("RTMIN+4"), SIGRTMIN + 4);
}

TEST(SignalsTest, BadNamesAreInvalidArgument) {
  for (const char* bad : {"", "SIGNOPE", "99", "RTMIN+99", "RTMIN-1", "1x"}) {
    try {
      ParseSignal(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument) << bad;
    }
  }
}

}  // namespace
}  // namespace berth
