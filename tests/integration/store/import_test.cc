// Import of generated archives into both drivers, checked through a real mount; hostile
// archives leave nothing behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/image/image_store.h"
#include "runtime/store/layer/mount.h"
#include "tests/integration/store/btrfs_loop.h"
#include "tests/support/test_env.h"
#include "tests/unit/store/tar_builder.h"

namespace berth::store {
namespace {

using testing::Compression;
using testing::OciBlob;
using testing::TarBuilder;

class ViewGuard {
 public:
  ViewGuard(Snapshotter& sn, const std::string& key, const std::string& parent, std::string target)
      : sn_(sn), key_(key), target_(std::move(target)) {
    MakeDirs(target_);
    PerformMounts(sn.View(key, parent), target_);
  }
  ~ViewGuard() {
    try {
      UnmountAll(target_, true);
      sn_.Remove(key_);
    } catch (...) {
    }
  }
  const std::string& path() const { return target_; }

 private:
  Snapshotter& sn_;
  std::string key_, target_;
};

const std::string kL1 = TarBuilder()
                            .Dir("etc")
                            .File("etc/os-release", "ID=berth\n")
                            .File("etc/gone", "x")
                            .Dir("opt")
                            .File("opt/old", "x")
                            .File("bin/tool", "#!/bin/sh\n", 04755)
                            .Hardlink("bin/tool2", "bin/tool")
                            .Build();
const std::string kL2 = TarBuilder()
                            .File("etc/.wh.gone", "")
                            .Dir("opt")
                            .File("opt/.wh..wh..opq", "")
                            .File("opt/new", "y")
                            .File("etc/os-release", "ID=berth\nVERSION=2\n")
                            .Build();

class ImportTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    if (GetParam() == "btrfs") {
      std::string why = testing::BtrfsLoop::Unavailable();
      if (!why.empty()) GTEST_SKIP() << why;
    }
    std::string root = tmp_.Sub("store");
    if (GetParam() == "btrfs") btrfs_.Get().LinkNewDir(root);
    store_ = std::make_unique<ImageStore>(root, GetParam());
  }
  static void TearDownTestSuite() { btrfs_.Release(); }

  void ExpectMergedRootfs(const ImageRecord& img) {
    ViewGuard v(store_->layers(), "check", img.top_chain().str(), tmp_.Sub("mnt"));
    EXPECT_EQ(ReadFile(v.path() + "/etc/os-release"), "ID=berth\nVERSION=2\n");
    EXPECT_FALSE(PathExists(v.path() + "/etc/gone"));
    EXPECT_EQ(berth::testing::DirNames(v.path() + "/opt"), std::set<std::string>{"new"});
    struct stat a, b;
    ASSERT_EQ(::lstat((v.path() + "/bin/tool").c_str(), &a), 0);
    ASSERT_EQ(::lstat((v.path() + "/bin/tool2").c_str(), &b), 0);
    EXPECT_EQ(a.st_mode & 07777, 04755u);
    EXPECT_EQ(a.st_ino, b.st_ino);
  }

  // Nothing of a failed import may remain: no snapshot, layer record, blob or image.
  void ExpectEmptyStore() {
    size_t snapshots = 0;
    store_->layers().Walk([&](const SnapshotInfo&) { ++snapshots; });
    EXPECT_EQ(snapshots, 0u);
    EXPECT_TRUE(store_->blobs().List().empty());
    EXPECT_TRUE(store_->List().empty());
    EXPECT_TRUE(berth::testing::DirNames(tmp_.Sub("store/layerdb")).empty());
    EXPECT_TRUE(berth::testing::DirNames(tmp_.Sub("store/ingest")).empty());
    EXPECT_TRUE(
        berth::testing::DirNames(tmp_.Sub("store/layers/" + GetParam() + "/snapshots")).empty());
  }

  Error ImportError(const std::string& file, ImportOptions opts = {}) {
    try {
      store_->Import(file, opts);
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "import accepted";
    return Error(ErrorKind::kInternal, "accepted");
  }

  std::string Write(const std::string& name, const std::string& data) {
    WriteFileAtomic(tmp_.Sub(name), data);
    return tmp_.Sub(name);
  }

  berth::testing::TempDir tmp_;
  std::unique_ptr<ImageStore> store_;
  static inline testing::BtrfsSuiteLoop btrfs_;
};

// List keeps what it read: our own imports and removals show at once; another process's
// (a second store on the same directory) once the directory's times have moved, and a
// record the kept list still has is not read again (a change to its file is not seen).
TEST_P(ImportTest, TheListIsKeptAndFollowsWritesOfThisStoreAndOfOthers) {
  ImportResult first = store_->Import(Write("a.tar", testing::DockerArchive({kL1}, "kept:1")), {});
  ASSERT_EQ(store_->List().size(), 1u);
  const std::string record = tmp_.Sub("store") + "/images/" + first.image.id.hex() + ".json";
  const std::string text = ReadFile(record);
  std::string changed = text;
  const size_t at = changed.find("kept:1");
  ASSERT_NE(at, std::string::npos) << text;
  changed.replace(at, 6, "kept:X");
  {
    // Written in place: the directory's times stay, so the kept list stands.
    UniqueFd fd(::open(record.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::write(fd.get(), changed.data(), changed.size()),
              static_cast<ssize_t>(changed.size()));
  }
  EXPECT_EQ(store_->Get("kept:1").id, first.image.id) << "read again without any change";
  WriteFileAtomic(record, text, 0600);

  ImportResult second =
      store_->Import(Write("b.tar", testing::DockerArchive({kL1, kL2}, "kept:2")), {});
  EXPECT_EQ(store_->List().size(), 2u);
  EXPECT_EQ(store_->Get("kept:2").id, second.image.id);

  ImageStore other(tmp_.Sub("store"), GetParam());
  EXPECT_EQ(other.List().size(), 2u);
  ::usleep(20000);  // past the coarse clock's tick of our last read
  other.Remove("kept:2");
  EXPECT_EQ(store_->List().size(), 1u) << "another store's removal is not seen";
  EXPECT_THROW(store_->Get("kept:2"), Error);
  store_->Remove("kept:1");
  EXPECT_TRUE(store_->List().empty());
  EXPECT_TRUE(other.List().empty());
}

TEST_P(ImportTest, DockerArchive) {
  std::string config = testing::ConfigFor(
      {kL1, kL2},
      R"("Entrypoint":["/bin/tool"],"Cmd":["-x"],"Env":["A=1"],"WorkingDir":"/opt","User":"1:1","ExposedPorts":{"80/tcp":{}},"Labels":{"k":"v"},"StopSignal":"SIGUSR2")");
  std::string file = Write("img.tar", testing::DockerArchive({kL1, kL2}, "demo:1", config));
  ImportResult r = store_->Import(file, {});
  EXPECT_EQ(r.layers_unpacked, 2u);
  EXPECT_EQ(r.image.id, Digest::Of(config));
  EXPECT_EQ(r.image.names, std::vector<std::string>{"demo:1"});
  EXPECT_EQ(r.image.source_format, "docker-archive");
  EXPECT_EQ(r.image.config.config.entrypoint, std::vector<std::string>{"/bin/tool"});
  EXPECT_EQ(r.image.config.config.stop_signal, "SIGUSR2");
  EXPECT_EQ(r.image.size, kL1.size() + kL2.size());
  ExpectMergedRootfs(r.image);
  ImageRecord again = store_->Get("demo:1");
  EXPECT_EQ(again.id, r.image.id);
  EXPECT_EQ(again.config.config.working_dir, "/opt");
  EXPECT_EQ(store_->Get(r.image.id.hex().substr(0, 8)).id, r.image.id);

  // A second image on the same base unpacks only its own layer.
  std::string l3 = TarBuilder().File("extra", "3").Build();
  ImportResult r2 =
      store_->Import(Write("img2.tar", testing::DockerArchive({kL1, kL2, l3}, "demo:2")), {});
  EXPECT_EQ(r2.layers_unpacked, 1u);
  EXPECT_EQ(store_->List().size(), 2u);
  // Removing the first keeps the shared layers of the second.
  store_->Remove("demo:1");
  ExpectMergedRootfs(store_->Get("demo:2"));
  store_->Remove("demo:2");
  ExpectEmptyStore();
}

TEST_P(ImportTest, OciLayoutDirAndTarWithCompressedLayers) {
  std::string config = testing::ConfigFor({kL1, kL2});
  auto files = testing::OciLayout(
      {{"application/vnd.oci.image.layer.v1.tar+gzip", testing::Compress(kL1, Compression::kGzip)},
       {"application/vnd.oci.image.layer.v1.tar+zstd", testing::Compress(kL2, Compression::kZstd)}},
      config, "v1");
  testing::WriteTree(tmp_.Sub("oci"), files);
  ImportOptions opts;
  opts.name = "oci-dir";
  ImportResult r = store_->Import(tmp_.Sub("oci"), opts);
  EXPECT_EQ(r.image.source_format, "oci");
  EXPECT_EQ(r.layers_unpacked, 2u);
  EXPECT_TRUE(r.image.manifest.has_value());
  ExpectMergedRootfs(r.image);
  // The same image as an OCI archive: nothing to unpack, same id, names merged.
  ImportResult t = store_->Import(Write("oci.tar", testing::TarOf(files)), {});
  EXPECT_EQ(t.layers_unpacked, 0u);
  EXPECT_EQ(t.image.id, r.image.id);
  EXPECT_EQ(store_->Get("oci-dir").id, r.image.id);
}

TEST_P(ImportTest, RootfsTarball) {
  std::string tar = TarBuilder().File("./hello", "world").Symlink("./abs", "/hello").Build();
  ImportResult r =
      store_->Import(Write("rootfs.tar.gz", testing::Compress(tar, Compression::kGzip)), {});
  EXPECT_EQ(r.image.source_format, "rootfs-tar");
  ASSERT_EQ(r.image.layers.size(), 1u);
  EXPECT_EQ(r.image.layers[0].diff_id, Digest::Of(tar));
  ViewGuard v(store_->layers(), "check", r.image.top_chain().str(), tmp_.Sub("mnt"));
  EXPECT_EQ(ReadFile(v.path() + "/hello"), "world");
  // Importing the same rootfs again finds the layer and the image.
  ImportResult again = store_->Import(tmp_.Sub("rootfs.tar.gz"), {});
  EXPECT_EQ(again.image.id, r.image.id);
}

TEST_P(ImportTest, WrongDiffIdLeavesNothing) {
  std::string other = TarBuilder().File("other", "x").Build();
  std::string config = testing::ConfigFor({kL1, other});  // second diff_id does not match kL2
  Error e = ImportError(Write("bad.tar", testing::DockerArchive({kL1, kL2}, "bad:1", config)));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("diff_id mismatch"), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("layer 2/2"), std::string::npos) << e.message();
  ExpectEmptyStore();
}

TEST_P(ImportTest, WrongBlobDigestLeavesNothing) {
  std::string gz = testing::Compress(kL1, Compression::kGzip);
  auto files = testing::OciLayout({{"application/vnd.oci.image.layer.v1.tar+gzip", gz}},
                                  testing::ConfigFor({kL1}), "v1");
  // Replace the layer blob's content (same name) with another valid gzip layer.
  for (auto& [path, data] : files) {
    if (data == gz) data = testing::Compress(kL1 + std::string(512, '\0'), Compression::kGzip);
  }
  testing::WriteTree(tmp_.Sub("oci"), files);
  Error e = ImportError(tmp_.Sub("oci"));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("mismatch"), std::string::npos) << e.message();
  ExpectEmptyStore();
}

TEST_P(ImportTest, HostileLayerInTheMiddleLeavesNothing) {
  std::string evil = TarBuilder().Symlink("x", tmp_.Sub("outside")).File("x/pwned", "1").Build();
  MakeDirs(tmp_.Sub("outside"));
  Error e = ImportError(Write("evil.tar", testing::DockerArchive({kL1, evil}, "evil:1")));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_TRUE(berth::testing::DirNames(tmp_.Sub("outside")).empty());
  ExpectEmptyStore();
  std::string traversal = TarBuilder().File("../../../../../../tmp/berth-test-pwned", "1").Build();
  e = ImportError(Write("trav.tar", testing::DockerArchive({traversal}, "t:1")));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_FALSE(PathExists("/tmp/berth-test-pwned"));
  ExpectEmptyStore();
}

TEST_P(ImportTest, HostileManifests) {
  // A layer path naming a host file.
  std::string config = testing::ConfigFor({kL1});
  TarBuilder t;
  t.File(testing::Hex(config) + ".json", config);
  t.File("manifest.json", R"([{"Config":")" + testing::Hex(config) +
                              R"(.json","Layers":["../../../../etc/passwd"]}])");
  Error e = ImportError(Write("m1.tar", t.Build()));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("member path"), std::string::npos) << e.message();
  // A digest that tries to name a path.
  testing::WriteTree(
      tmp_.Sub("oci"),
      {{"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
       {"index.json",
        R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../../etc/shadow","size":1}]})"}});
  e = ImportError(tmp_.Sub("oci"));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("invalid digest"), std::string::npos) << e.message();
  // Too many layers: refused before storage is touched.
  std::vector<std::string> many(kMaxLayers + 1, kL1);
  e = ImportError(Write("many.tar", testing::DockerArchive(many, "many:1")));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  EXPECT_NE(e.message().find("limit"), std::string::npos) << e.message();
  // Not an archive at all.
  e = ImportError(Write("junk", std::string(4096, 'j')));
  EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  ExpectEmptyStore();
}

INSTANTIATE_TEST_SUITE_P(Drivers, ImportTest, ::testing::Values("overlay", "vfs", "btrfs"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace berth::store
