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

std::string BuildDir() {
  const char* d = std::getenv("BERTH_BUILD_DIR");
  return d ? d : BERTH_DEFAULT_BUILD_DIR;
}

std::string SourceDir() {
  const char* d = std::getenv("BERTH_SOURCE_DIR");
  return d ? d : BERTH_DEFAULT_SOURCE_DIR;
}

}  // namespace berth::testing
