// BERTH_TIMING=1 in the environment makes a PhaseTimer print how long each named phase
// took to stderr: a profiling aid for the hot paths (container create, run, spawn).
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace berth {

class PhaseTimer {
 public:
  explicit PhaseTimer(const char* scope) : scope_(scope), enabled_(std::getenv("BERTH_TIMING")) {}
  void Mark(const char* phase) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "%s: %-14s %7.2f ms\n", scope_, phase,
                 std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  const char* scope_;
  bool enabled_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace berth
