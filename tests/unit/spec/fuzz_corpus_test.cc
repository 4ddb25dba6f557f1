// Replays the spec fuzz target's corpus in the normal suite: each input must parse or be
// refused with berth::Error, and what parses must round-trip (the target aborts otherwise).
#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/fuzz/spec/spec_fuzz.cc"
#include "tests/support/test_env.h"

namespace {

TEST(FuzzCorpusTest, SpecCorpusReplays) {
  std::string dir = berth::testing::SourceDir() + "/tests/fuzz/spec/corpus";
  int count = 0;
  for (const auto& name : berth::ListDirectory(dir, berth::IfMissing::kThrow)) {
    if (name[0] == '.') continue;
    std::string input = berth::ReadFile(dir + "/" + name);
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
    ++count;
  }
  EXPECT_GE(count, 5);
}

}  // namespace
