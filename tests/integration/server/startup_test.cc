// berthd refuses at start-up what would make every spawn fail later.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/berth_user.h"

namespace berth::testing {
namespace {

TEST(StartupTest, StateDirUnderADirectoryOthersCannotSearchIsRefused) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  EnsureBerthUser();
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  Daemon config_writer(dir.path());  // state_dir = <dir>/state
  std::string err = dir.Sub("startup.err");
  std::string cmd = "timeout 20 " + BuildDir() + "/driver/server/berthd --config " +
                    config_writer.config_path() + " >/dev/null 2>" + err;
  int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 124)
      << "berthd started (or hung) with a state_dir its instances cannot reach";
  std::string text = ReadFileIfExists(err).value_or("");
  EXPECT_NE(text.find(dir.path() + " (above state_dir"), std::string::npos) << text;
  EXPECT_NE(text.find("not searchable by others"), std::string::npos) << text;
  EXPECT_NE(text.find("userns = false"), std::string::npos) << text;
}

}  // namespace
}  // namespace berth::testing
