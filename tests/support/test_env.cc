#include "tests/support/test_env.h"

#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "runtime/common/file_util.h"

namespace berth::testing {

TempDir::TempDir() {
  std::string tmpl = "/tmp/berth-test.XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  try {
    RemoveTree(path_);
  } catch (...) {
  }
}

bool IsRoot() { return ::geteuid() == 0; }

std::set<std::string> DirNames(const std::string& dir) {
  auto names = ListDirectory(dir);
  return {names.begin(), names.end()};
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  auto stat = ReadFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return std::nullopt;
  // The command name may hold spaces and parentheses: it ends at the last ')'.
  auto open = stat->find('(');
  auto close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 4 > stat->size()) {
    return std::nullopt;
  }
  ProcStat s;
  s.comm = stat->substr(open + 1, close - open - 1);
  s.state = (*stat)[close + 2];
  s.ppid = static_cast<pid_t>(std::strtol(stat->c_str() + close + 4, nullptr, 10));
  return s;
}

bool WaitForSignalHandler(int pid, int sig, int timeout_ms) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    if (auto status = ReadFileIfExists(path)) {
      auto at = status->find("SigCgt:\t");
      if (at != std::string::npos) {
        unsigned long long caught = std::strtoull(status->c_str() + at + 8, nullptr, 16);
        if (caught & (1ull << (sig - 1))) return true;
      }
    }
    ::usleep(10000);
  }
  return false;
}

std::string BuildDir() {
  const char* d = std::getenv("BERTH_BUILD_DIR");
  return d ? d : BERTH_DEFAULT_BUILD_DIR;
}

std::string SourceDir() {
  const char* d = std::getenv("BERTH_SOURCE_DIR");
  return d ? d : BERTH_DEFAULT_SOURCE_DIR;
}

}  // namespace berth::testing
