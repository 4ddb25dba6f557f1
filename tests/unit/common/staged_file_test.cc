// StageFile / PublishStagedFile: a file's content written and synced ahead under a temp
// name, appearing under its own name only when published.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth {
namespace {

TEST(StagedFile, AppearsOnlyWhenPublished) {
  testing::TempDir dir;
  const std::string path = dir.Sub("record.json");
  WriteFileAtomic(path, "old");
  StagedFile staged = StageFile(path, "new", 0600);
  EXPECT_EQ(ReadFile(path), "old");
  EXPECT_EQ(ListDirectory(dir.path()).size(), 2u);
  PublishStagedFile(staged);
  EXPECT_EQ(ReadFile(path), "new");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ListDirectory(dir.path()), (std::vector<std::string>{"record.json"}));
}

TEST(StagedFile, DiscardedLeavesNothing) {
  testing::TempDir dir;
  StagedFile staged = StageFile(dir.Sub("record.json"), "x", 0600);
  DiscardStagedFile(staged);
  EXPECT_TRUE(ListDirectory(dir.path()).empty());
}

TEST(StagedFile, ErrorsNameThePath) {
  testing::TempDir dir;
  try {
    StageFile(dir.Sub("missing/record.json"), "x", 0600);
    FAIL() << "staged into a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/record.json"), std::string::npos) << e.what();
  }
  StagedFile staged = StageFile(dir.Sub("record.json"), "x", 0600);
  DiscardStagedFile(staged);
  EXPECT_THROW(PublishStagedFile(staged), Error);  // gone: the rename fails, named
}

}  // namespace
}  // namespace berth
