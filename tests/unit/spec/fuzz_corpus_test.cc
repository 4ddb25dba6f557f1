// Replays the spec fuzz target's corpus in the normal suite: each input must parse or be
// refused with berth::Error, and what parses must round-trip (the target aborts otherwise).
#include <dirent.h>
#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/fuzz/spec/spec_fuzz.cc"
#include "tests/support/test_env.h"

namespace {

TEST(FuzzCorpusTest, SpecCorpusReplays) {
  std::string dir = berth::testing::SourceDir() + "/tests/fuzz/spec/corpus";
  DIR* d = ::opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  int count = 0;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string input = berth::ReadFile(dir + "/" + e->d_name);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++count;
  }
  ::closedir(d);
  EXPECT_GE(count, 5);
}

}  // namespace
