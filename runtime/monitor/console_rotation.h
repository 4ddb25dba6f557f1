// The console log's size rule as a pure function, shared by berth-monitor (which must stay
// free of libstdc++) and its unit tests.
//
// console.log grows to half of --console-max; the write that would pass that point is
// split: the part that fits goes to console.log, which is then renamed to console.log.1
// (replacing the older one), and the rest starts a fresh console.log. Each file holds at
// most max/2 bytes, so the two together never exceed --console-max.
#pragma once

namespace berth::monitor {

struct ConsoleStep {
  bool rotate_first;             // rename console.log to console.log.1 and start afresh
  unsigned long long write_len;  // then write this many of the pending bytes
};

// The next step for `pending` bytes arriving while console.log holds `file_size` bytes.
// Callers loop: apply the step, add write_len to the (possibly reset) size, subtract it
// from pending, until nothing is pending. console_max must be at least 2.
constexpr ConsoleStep PlanConsoleWrite(unsigned long long file_size, unsigned long long pending,
                                       unsigned long long console_max) {
  const unsigned long long half = console_max / 2;
  const bool rotate = file_size >= half;
  const unsigned long long room = rotate ? half : half - file_size;
  return ConsoleStep{rotate, pending < room ? pending : room};
}

}  // namespace berth::monitor
