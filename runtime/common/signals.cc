#include "runtime/common/signals.h"

#include <signal.h>

#include <cctype>
#include <cstring>

#include "runtime/common/error.h"

namespace berth {

int ParseSignal(const std::string& text) {
  auto unknown = [&text] {
    return Error(ErrorKind::kInvalidArgument, "unknown signal \"" + text + "\"");
  };
  auto out_of_range = [&text] {
    return Error(ErrorKind::kInvalidArgument, "signal " + text + " out of range");
  };
  if (text.empty()) throw unknown();
  std::string s;
  for (char c : text) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto number = [](const std::string& digits) -> long {
    if (digits.empty() || digits.size() > 4) return -1;
    for (char c : digits) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
    }
    return std::strtol(digits.c_str(), nullptr, 10);
  };
  if (std::isdigit(static_cast<unsigned char>(s[0]))) {
    long n = number(s);
    if (n < 0) throw unknown();
    if (n < 1 || n > SIGRTMAX) throw out_of_range();
    return static_cast<int>(n);
  }
  if (s.rfind("SIG", 0) == 0) s = s.substr(3);
  if (s.rfind("RTMIN", 0) == 0) {
    std::string rest = s.substr(5);
    long off = 0;
    if (!rest.empty()) {
      if (rest[0] != '+' || (off = number(rest.substr(1))) < 0) throw unknown();
    }
    if (SIGRTMIN + off > SIGRTMAX) throw out_of_range();
    return static_cast<int>(SIGRTMIN + off);
  }
  for (int n = 1; n < SIGRTMIN; ++n) {
    const char* abbrev = sigabbrev_np(n);
    if (abbrev && s == abbrev) return n;
  }
  throw unknown();
}

}  // namespace berth
