// LoadBundle: finding config.json and the rootfs on disk.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/spec/parser.h"
#include "tests/support/test_env.h"

namespace berth::spec {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr const char* kConfig = R"({"ociVersion": "1.0.0", "root": {"path": "%s"},
    "process": {"args": ["sh"]}})";

std::string ConfigWithRoot(const std::string& root) {
  std::string out = kConfig;
  out.replace(out.find("%s"), 2, root);
  return out;
}

class LoadBundleTest : public ::testing::Test {
 protected:
  void WriteConfig(const std::string& json) { WriteFileAtomic(dir_.Sub("config.json"), json); }
  Error LoadError(const std::string& bundle) {
    try {
      LoadBundle(bundle);
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "LoadBundle(" << bundle << ") did not throw";
    return Error(ErrorKind::kInternal, "no error");
  }
  berth::testing::TempDir dir_;
};

TEST_F(LoadBundleTest, ResolvesRelativeRootAgainstBundle) {
  MakeDirs(dir_.Sub("rootfs"));
  WriteConfig(ConfigWithRoot("rootfs"));
  Spec s = LoadBundle(dir_.path());
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir_.Sub("rootfs").c_str(), real), nullptr);
  EXPECT_EQ(s.root.path, real);
  EXPECT_EQ(s.root.path[0], '/');
}

TEST_F(LoadBundleTest, KeepsAbsoluteRoot) {
  MakeDirs(dir_.Sub("elsewhere/root"));
  WriteConfig(ConfigWithRoot(dir_.Sub("elsewhere/root")));
  Spec s = LoadBundle(dir_.path());
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir_.Sub("elsewhere/root").c_str(), real), nullptr);
  EXPECT_EQ(s.root.path, real);
}

TEST_F(LoadBundleTest, RelativeBundleDirIsMadeAbsolute) {
  MakeDirs(dir_.Sub("b/rootfs"));
  WriteFileAtomic(dir_.Sub("b/config.json"), ConfigWithRoot("rootfs"));
  char old_cwd[PATH_MAX];
  ASSERT_NE(::getcwd(old_cwd, sizeof(old_cwd)), nullptr);
  ASSERT_EQ(::chdir(dir_.path().c_str()), 0);
  Spec s;
  EXPECT_NO_THROW(s = LoadBundle("b"));
  ASSERT_EQ(::chdir(old_cwd), 0);
  EXPECT_EQ(s.root.path[0], '/');
  EXPECT_THAT(s.root.path, ::testing::EndsWith("/b/rootfs"));
}

TEST_F(LoadBundleTest, MissingConfigIsNotFoundNamingThePath) {
  Error e = LoadError(dir_.path());
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(e.message(), HasSubstr(dir_.Sub("config.json")));
}

TEST_F(LoadBundleTest, MissingBundleIsNotFound) {
  Error e = LoadError(dir_.Sub("nope"));
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(e.message(), HasSubstr(dir_.Sub("nope/config.json")));
}

TEST_F(LoadBundleTest, MissingRootfsIsNotFoundNamingRootPath) {
  WriteConfig(ConfigWithRoot("rootfs"));
  Error e = LoadError(dir_.path());
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  EXPECT_THAT(e.message(), HasSubstr("root.path: " + dir_.Sub("rootfs")));
  EXPECT_THAT(e.message(), StartsWith(dir_.Sub("config.json") + ": "));
}

TEST_F(LoadBundleTest, RootfsThatIsAFileIsInvalid) {
  WriteFileAtomic(dir_.Sub("rootfs"), "not a dir");
  WriteConfig(ConfigWithRoot("rootfs"));
  Error e = LoadError(dir_.path());
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(e.message(), HasSubstr("root.path: " + dir_.Sub("rootfs") + ": not a directory"));
}

TEST_F(LoadBundleTest, BadConfigNamesFileAndField) {
  MakeDirs(dir_.Sub("rootfs"));
  WriteConfig(
      R"({"root": {"path": "rootfs"}, "process": {"args": ["sh"], "user": {"uid": -1, "gid": 0}}})");
  Error e = LoadError(dir_.path());
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_EQ(e.message(),
            dir_.Sub("config.json") + ": process.user.uid: expected an unsigned 32-bit integer");
}

TEST_F(LoadBundleTest, MalformedConfigNamesFile) {
  WriteConfig("{\"root\": ");
  Error e = LoadError(dir_.path());
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_THAT(e.message(), StartsWith(dir_.Sub("config.json") + ": malformed JSON at offset 9: "));
}

}  // namespace
}  // namespace berth::spec
