#include <signal.h>
#include <sys/wait.h>

#include "runtime/cli/commands.h"

namespace berth::cli {

int ShellStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 1;
}

}  // namespace berth::cli
