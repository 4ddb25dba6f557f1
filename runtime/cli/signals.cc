#include <signal.h>
#include <sys/wait.h>

#include <cctype>
#include <cstring>

#include "runtime/cli/commands.h"
#include "runtime/common/error.h"

namespace berth::cli {

int ParseSignal(const std::string& text) {
  std::string s;
  for (char c : text) s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) {
    int n = std::atoi(s.c_str());
    if (n > 0 && n < 65 && std::to_string(n) == s) return n;
  } else {
    if (s.rfind("SIG", 0) == 0) s = s.substr(3);
    for (int n = 1; n < 65; ++n) {
      const char* abbrev = sigabbrev_np(n);
      if (abbrev && s == abbrev) return n;
    }
    if (s.rfind("RTMIN+", 0) == 0) {
      int n = SIGRTMIN + std::atoi(s.c_str() + 6);
      if (n <= SIGRTMAX) return n;
    }
  }
  throw Error(ErrorKind::kInvalidArgument, "unknown signal \"" + text + "\"");
}

int ShellStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace berth::cli
