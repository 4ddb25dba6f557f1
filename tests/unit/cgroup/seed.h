// Seeding fake cgroup hierarchies in temp directories: the files the kernel would have.
#pragma once

#include <cstdio>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <utility>

#include "runtime/common/file_util.h"

namespace berth::cgroup::testing {

// Creates dir (and parents) and writes each file with its content.
inline void Seed(const std::string& dir,
                 std::initializer_list<std::pair<const char*, const char*>> files) {
  MakeDirs(dir);
  for (const auto& [name, content] : files) {
    // Plain writes: these are throwaway files and fsync would only slow the suite.
    std::string path = JoinPath(dir, name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("seed " + path);
    std::fputs(content, f);
    std::fclose(f);
  }
}

inline std::string Read(const std::string& dir, const std::string& file) {
  return ReadFileIfExists(JoinPath(dir, file)).value_or("<missing>");
}

}  // namespace berth::cgroup::testing
