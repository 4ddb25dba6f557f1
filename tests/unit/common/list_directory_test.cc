// ListDirectory: every name but "." and "..", sorted; a missing directory is empty or an
// error as the caller asks; other failures are errors naming the path.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth {
namespace {

TEST(ListDirectory, SortedNamesWithoutDotsIncludingHiddenOnes) {
  testing::TempDir dir;
  WriteFileAtomic(dir.Sub("b"), "");
  WriteFileAtomic(dir.Sub(".hidden"), "");
  MakeDirs(dir.Sub("a"));
  ASSERT_EQ(::symlink("nowhere", dir.Sub("c").c_str()), 0);
  EXPECT_EQ(ListDirectory(dir.path()), (std::vector<std::string>{".hidden", "a", "b", "c"}));
  EXPECT_TRUE(ListDirectory(dir.Sub("a")).empty());
}

TEST(ListDirectory, MissingIsEmptyOrNotFoundAsAsked) {
  testing::TempDir dir;
  WriteFileAtomic(dir.Sub("file"), "x");
  EXPECT_TRUE(ListDirectory(dir.Sub("missing")).empty());
  EXPECT_TRUE(ListDirectory(dir.Sub("file")).empty());  // not a directory: nothing in it
  try {
    ListDirectory(dir.Sub("missing"), IfMissing::kThrow);
    FAIL() << "no error for a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(e.message().find(dir.Sub("missing")), std::string::npos) << e.message();
  }
}

TEST(ListDirectory, UnreadableIsAnErrorEvenWhenMissingWouldBeFine) {
  if (!testing::IsRoot()) GTEST_SKIP() << "needs root to drop to another user";
  testing::TempDir dir;
  MakeDirs(dir.Sub("locked"), 0700);
  // Root reads any directory: drop to an unprivileged user in a child to see EACCES.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::chmod(dir.path().c_str(), 0755);
    ::chmod(dir.Sub("locked").c_str(), 0000);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);
    try {
      ListDirectory(dir.Sub("locked"));
    } catch (const Error& e) {
      ::_exit(e.message().find("opendir") != std::string::npos ? 0 : 2);
    }
    ::_exit(1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error, 2: error without the syscall, 3: setuid";
}

}  // namespace
}  // namespace berth
