// Replays the fuzz corpora (tests/fuzz/store/corpus/) through the fuzz target bodies.
#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/fuzz/store/fuzz_targets.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

std::vector<std::string> Files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& name : ListDirectory(dir, IfMissing::kThrow)) {
    if (name[0] != '.') out.push_back(dir + "/" + name);
  }
  return out;
}

TEST(FuzzCorpusTest, Apply) {
  auto files = Files(berth::testing::SourceDir() + "/tests/fuzz/store/corpus/apply");
  EXPECT_FALSE(files.empty());
  for (const auto& f : files) fuzz::ApplyOne(ReadFile(f));
}

TEST(FuzzCorpusTest, Manifest) {
  auto files = Files(berth::testing::SourceDir() + "/tests/fuzz/store/corpus/manifest");
  EXPECT_FALSE(files.empty());
  for (const auto& f : files) fuzz::ManifestOne(ReadFile(f));
}

}  // namespace
}  // namespace berth::store
