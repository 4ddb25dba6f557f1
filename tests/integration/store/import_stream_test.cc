// ImageStore::ImportStream: a rootfs tarball read once from a stream (berthd's Glance
// downloads), committed only when the stream ended without throwing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/store/image/image_store.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

// Hands out the data in small pieces, then throws at its end when told to (a checksum
// that turned out wrong).
class PieceSource : public ByteSource {
 public:
  PieceSource(std::string data, bool fail_at_end) : data_(std::move(data)), fail_(fail_at_end) {}
  size_t Read(void* buf, size_t size) override {
    size_t n = std::min({size, size_t{1000}, data_.size() - pos_});
    if (n == 0 && fail_) throw Error(ErrorKind::kInvalidArgument, "checksum mismatch");
    std::memcpy(buf, data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t pos_ = 0;
  bool fail_;
};

class ImportStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root";
    std::string fs = dir_.Sub("fs");
    MakeDirs(fs + "/etc");
    WriteFileAtomic(fs + "/etc/hostname", "streamed\n");
    std::string tar = dir_.Sub("fs.tar");
    ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + tar + " .").c_str()), 0);
    tar_ = ReadFile(tar);
    store_ = std::make_unique<ImageStore>(dir_.Sub("store"), "overlay");
  }
  int Snapshots() {
    int n = 0;
    store_->layers().Walk([&](const SnapshotInfo&) { ++n; });
    return n;
  }

  testing::TempDir dir_;
  std::string tar_;
  std::unique_ptr<ImageStore> store_;
};

TEST_F(ImportStreamTest, RootfsTarFromAStream) {
  PieceSource src(tar_, false);
  ImportOptions o;
  o.format = ImportFormat::kRootfsTar;
  o.name = "streamed";
  ImportResult r = store_->ImportStream(src, "glance:x", o);
  EXPECT_EQ(r.image.layers.size(), 1u);
  EXPECT_EQ(r.image.source, "glance:x");
  EXPECT_EQ(r.bytes_read, tar_.size());
  EXPECT_EQ(store_->Get("streamed").id, r.image.id);
}

TEST_F(ImportStreamTest, AStreamThatFailsAtItsEndLeavesNothing) {
  PieceSource src(tar_, true);
  ImportOptions o;
  o.format = ImportFormat::kRootfsTar;
  try {
    store_->ImportStream(src, "glance:x", o);
    FAIL() << "imported despite the source's failure";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("checksum mismatch"), std::string::npos) << e.message();
  }
  EXPECT_TRUE(store_->List().empty());
  EXPECT_EQ(Snapshots(), 0);
}

TEST_F(ImportStreamTest, OnlyRootfsTarsCanBeStreamed) {
  PieceSource src(tar_, false);
  ImportOptions o;
  o.format = ImportFormat::kDockerArchive;
  try {
    store_->ImportStream(src, "glance:x", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
  }
}

}  // namespace
}  // namespace berth::store
