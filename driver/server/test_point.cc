#include "driver/server/test_point.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace berth::server {

bool TestPauseWanted(const char* name) {
  static const char* wanted = std::getenv("BERTH_TEST_PAUSE_AT");
  return wanted && std::strcmp(wanted, name) == 0;
}

void TestPausePoint(const char* name) {
  if (!TestPauseWanted(name)) return;
  std::printf("paused at %s\n", name);
  std::fflush(stdout);
  for (;;) ::pause();
}

}  // namespace berth::server
