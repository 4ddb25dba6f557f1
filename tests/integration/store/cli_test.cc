// berth-image end to end: import, list, inspect, prepare, mount, umount, rm.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/tar_builder.h"

namespace berth::store {
namespace {

struct CliRun {
  int status;
  std::string out;
};

CliRun BerthImage(const std::string& root, const std::string& args) {
  std::string cmd = berth::testing::BuildDir() + "/runtime/store/berth-image --root " + root + " " +
                    args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {-1, ""};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(BerthImageCliTest, ImportListInspectPrepareMountRm) {
  if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
  berth::testing::TempDir tmp;
  std::string layer = testing::TarBuilder().File("hello", "cli").Build();
  WriteFileAtomic(tmp.Sub("img.tar"), testing::DockerArchive({layer}, "cli:1"));
  std::string root = tmp.Sub("store");

  CliRun r = BerthImage(root, "import " + tmp.Sub("img.tar") + " --name mine");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("sha256:", 0), 0u) << r.out;

  r = BerthImage(root, "list");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("cli:1,mine"), std::string::npos) << r.out;

  r = BerthImage(root, "inspect mine");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("\"Cmd\":[\"/bin/sh\"]"), std::string::npos) << r.out;

  r = BerthImage(root, "prepare mine c1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("type=overlay"), std::string::npos) << r.out;

  MakeDirs(tmp.Sub("mnt"));
  r = BerthImage(root, "mount c1 " + tmp.Sub("mnt"));
  ASSERT_EQ(r.status, 0) << r.out;
  std::string content = ReadFileIfExists(tmp.Sub("mnt/hello")).value_or("");
  r = BerthImage(root, "umount " + tmp.Sub("mnt"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(content, "cli");

  r = BerthImage(root, "rm mine");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("in use by snapshot \"c1\""), std::string::npos) << r.out;
  EXPECT_EQ(BerthImage(root, "snapshot-rm c1").status, 0);
  r = BerthImage(root, "rm mine");
  EXPECT_EQ(r.status, 0) << r.out;
  r = BerthImage(root, "list");
  EXPECT_EQ(r.out.find("cli:1"), std::string::npos) << r.out;
  r = BerthImage(root, "inspect nothing-here");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("not found"), std::string::npos) << r.out;
  r = BerthImage(root, "import " + tmp.Sub("missing.tar"));
  EXPECT_NE(r.status, 0);
  r = BerthImage(root, "--driver zfs list");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("not supported"), std::string::npos) << r.out;
}

TEST(BerthImageCliTest, DiffCommitExportGc) {
  if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
  berth::testing::TempDir tmp;
  std::string layer = testing::TarBuilder().File("keep", "k").File("gone", "g").Build();
  WriteFileAtomic(tmp.Sub("img.tar"), testing::DockerArchive({layer}, "cli:1"));
  std::string root = tmp.Sub("store");
  ASSERT_EQ(BerthImage(root, "import " + tmp.Sub("img.tar")).status, 0);
  ASSERT_EQ(BerthImage(root, "prepare cli:1 c1").status, 0);
  MakeDirs(tmp.Sub("mnt"));
  CliRun r = BerthImage(root, "mount c1 " + tmp.Sub("mnt"));
  ASSERT_EQ(r.status, 0) << r.out;
  WriteFileAtomic(tmp.Sub("mnt/added"), "a");
  ::unlink(tmp.Sub("mnt/gone").c_str());
  EXPECT_EQ(BerthImage(root, "umount " + tmp.Sub("mnt")).status, 0);

  r = BerthImage(root, "diff c1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out, "A /added\nD /gone\n");
  r = BerthImage(root, "commit c1 --name cli:2 -m msg");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.rfind("sha256:", 0), 0u) << r.out;
  r = BerthImage(root, "export cli:2 --format oci " + tmp.Sub("out.tar"));
  ASSERT_EQ(r.status, 0) << r.out;
  r = BerthImage(tmp.Sub("store2"), "import " + tmp.Sub("out.tar") + " --name back");
  ASSERT_EQ(r.status, 0) << r.out;
  r = BerthImage(root, "export cli:2 --format tarball " + tmp.Sub("x.tar"));
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("unknown export format"), std::string::npos) << r.out;

  EXPECT_EQ(BerthImage(root, "snapshot-rm c1").status, 0);
  EXPECT_EQ(BerthImage(root, "rm cli:1").status, 0);
  EXPECT_EQ(BerthImage(root, "rm cli:2").status, 0);
  r = BerthImage(root, "gc");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("removed:"), std::string::npos) << r.out;
  r = BerthImage(root, "list");
  EXPECT_EQ(r.out.find("cli:"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace berth::store
