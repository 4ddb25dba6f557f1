// Images made by real peer tools: buildah builds a three-layer image from scratch (adds,
// changes, deletions, an opaque directory, hardlinks, a setuid file, an xattr, owners) and
// writes it as a docker-archive, an OCI directory and (skopeo) an OCI archive; each is
// imported into Berth with every driver and the merged rootfs is compared file by file with
// `umoci unpack` of the same OCI image. No network: scratch images only. Skips only when
// buildah, skopeo or umoci is not installed (Debian: apt-get install buildah skopeo umoci).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>

#include "runtime/common/file_util.h"
#include "runtime/store/image/image_store.h"
#include "runtime/store/layer/mount.h"
#include "tests/integration/store/tree_compare.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

bool HaveTool(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

class PeerToolsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* tool : {"buildah", "skopeo", "umoci", "unshare"}) {
      if (!HaveTool(tool)) {
        skip_ = std::string(tool) + " not installed (apt-get install buildah skopeo umoci)";
        return;
      }
    }
    if (!berth::testing::IsRoot()) {
      skip_ = "needs root";
      return;
    }
    work_ = new berth::testing::TempDir();
    // A private mount namespace: buildah's mounts end with the script.
    std::string cmd = "unshare -m --propagation private " + berth::testing::SourceDir() +
                      "/tests/integration/store/peer_build.sh " + work_->path() + " > " +
                      work_->Sub("build.log") + " 2>&1";
    int st = std::system(cmd.c_str());
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      build_error_ =
          "peer_build.sh failed:\n" + ReadFileIfExists(work_->Sub("build.log")).value_or("");
    }
  }
  static void TearDownTestSuite() {
    delete work_;
    work_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
    ASSERT_EQ(build_error_, "");
  }

  static inline std::string skip_, build_error_;
  static inline berth::testing::TempDir* work_ = nullptr;
};

TEST_F(PeerToolsTest, MergedRootfsMatchesUmociUnpack) {
  auto reference = testing::DescribeTree(work_->Sub("umoci-bundle/rootfs"));
  // The reference itself shows what the image was built to contain.
  ASSERT_TRUE(reference.count("opq/a") == 0 && reference.count("opq/sub") == 0);
  ASSERT_EQ(reference.count("etc/passwd"), 0u);
  ASSERT_NE(reference["bin/tool"].find("104755"), std::string::npos) << reference["bin/tool"];
  ASSERT_NE(reference["bin/tool-hardlink"].find("link=bin/tool "), std::string::npos);
  ASSERT_NE(reference["etc/twin2"].find("link=etc/twin "), std::string::npos);
  ASSERT_NE(reference["etc/hello"].find("user.color=blue"), std::string::npos);
  ASSERT_NE(reference["home/u/file"].find("1000:1000"), std::string::npos);

  Digest id;
  for (std::string archive : {"image-docker.tar", "image-oci", "image-oci.tar"}) {
    for (std::string driver : {"overlay", "vfs"}) {
      SCOPED_TRACE(archive + " with " + driver);
      berth::testing::TempDir tmp;
      ImageStore store(tmp.Sub("store"), driver);
      ImageRecord img = store.Import(work_->Sub(archive), {}).image;
      EXPECT_EQ(img.layers.size(), 3u);
      if (id.empty()) id = img.id;
      EXPECT_EQ(img.id, id);  // same config in all three containers
      std::string mnt = tmp.Sub("mnt");
      MakeDirs(mnt);
      PerformMounts(store.layers().View("v", img.top_chain().str()), mnt);
      auto tree = testing::DescribeTree(mnt);
      UnmountAll(mnt, true);
      EXPECT_EQ(testing::TreeDifference(reference, tree), "");
    }
  }
}

// Berth's exports load in the peer tools: skopeo copies them into an OCI layout, umoci
// unpacks that, and the rootfs is the one buildah built.
TEST_F(PeerToolsTest, ExportsLoadInSkopeoAndUmoci) {
  auto reference = testing::DescribeTree(work_->Sub("umoci-bundle/rootfs"));
  berth::testing::TempDir tmp;
  ImageStore store(tmp.Sub("store"), "overlay");
  ImageRecord img = store.Import(work_->Sub("image-oci"), {}).image;
  struct Case {
    ExportFormat format;
    std::string transport;
  };
  for (const Case& c : {Case{ExportFormat::kDockerArchive, "docker-archive"},
                        Case{ExportFormat::kOci, "oci-archive"}}) {
    SCOPED_TRACE(c.transport);
    std::string file = tmp.Sub(c.transport + ".tar");
    store.ExportToFile(img.id.hex(), c.format, file);
    std::string layout = tmp.Sub(c.transport + "-layout");
    std::string bundle = tmp.Sub(c.transport + "-bundle");
    std::string cmd =
        "unshare -m --propagation private sh -ec '"
        "if [ -d /var/lib/containers/cache ]; then mount -t tmpfs berth-test-cache "
        "/var/lib/containers/cache; fi; "
        "skopeo copy -q " +
        c.transport + ":" + file + " oci:" + layout +
        ":x; "
        "umoci unpack --image " +
        layout + ":x " + bundle + "' > " + tmp.Sub("log") + " 2>&1";
    int st = std::system(cmd.c_str());
    ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
        << ReadFileIfExists(tmp.Sub("log")).value_or("");
    EXPECT_EQ(testing::TreeDifference(reference, testing::DescribeTree(bundle + "/rootfs")), "");
  }
}

}  // namespace
}  // namespace berth::store
