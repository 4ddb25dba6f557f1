// Runs a helper program (ovs-vsctl) from a multi-threaded daemon: posix_spawn (no
// allocation between fork and exec; glibc uses CLONE_VFORK), stdout and stderr captured,
// a hard deadline after which the child is killed by its pid.
#pragma once

#include <string>
#include <vector>

namespace berth::net {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;
  std::string err;
};

// argv[0] is looked up in PATH. kNotFound when it cannot be found, kSystem when the
// deadline passes (the child is SIGKILLed and reaped first). Does not throw for a non-zero
// exit: the caller decides what that means.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms);

// "ovs-vsctl --db=... add-port br-int tap1": argv joined for error messages.
std::string FormatArgv(const std::vector<std::string>& argv);

}  // namespace berth::net
