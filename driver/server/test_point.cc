#include "driver/server/test_point.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace berth::server {

void TestPausePoint(const char* name) {
  static const char* wanted = std::getenv("BERTH_TEST_PAUSE_AT");
  if (!wanted || std::strcmp(wanted, name) != 0) return;
  std::printf("paused at %s\n", name);
  std::fflush(stdout);
  for (;;) ::pause();
}

}  // namespace berth::server
