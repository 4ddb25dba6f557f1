// Signal names as users, OCI specs and image configs write them.
#pragma once

#include <string>

namespace berth {

// "SIGKILL", "KILL", "kill", "9", "SIGRTMIN+3" or "RTMIN" -> the signal number;
// kInvalidArgument ("unknown signal \"X\"", "signal N out of range") otherwise.
int ParseSignal(const std::string& text);

}  // namespace berth
