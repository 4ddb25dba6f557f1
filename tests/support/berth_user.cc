#include "tests/support/berth_user.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "tests/support/test_env.h"

namespace berth::testing {

void EnsureBerthUser() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::string cmd = SourceDir() + "/scripts/berth_user.sh";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  });
}

}  // namespace berth::testing
