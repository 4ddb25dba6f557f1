#include "runtime/store/blob/blob_store.h"

#include <gtest/gtest.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::store {
namespace {

TEST(BlobStoreTest, PutReadListDelete) {
  berth::testing::TempDir tmp;
  BlobStore store(tmp.path());
  Digest d = store.Put("hello");
  EXPECT_EQ(d, Digest::Of("hello"));
  EXPECT_TRUE(store.Exists(d));
  EXPECT_EQ(store.Read(d), "hello");
  EXPECT_EQ(store.Size(d), 5u);
  EXPECT_EQ(store.Path(d), tmp.path() + "/blobs/sha256/" + d.hex());
  Digest d2 = store.Put("world");
  auto list = store.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_TRUE((list[0] == d && list[1] == d2) || (list[0] == d2 && list[1] == d));
  // Writing the same content again is fine.
  EXPECT_EQ(store.Put("hello", d), d);
  store.Delete(d);
  EXPECT_FALSE(store.Exists(d));
  try {
    store.Read(d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
  EXPECT_EQ(ListDirectory(tmp.path() + "/ingest").size(), 0u);
}

TEST(BlobStoreTest, DigestMismatchNamesBothAndLeavesNothing) {
  berth::testing::TempDir tmp;
  BlobStore store(tmp.path());
  BlobWriter w = store.Ingest();
  w.Write("some data");
  Digest expected = Digest::Of("other data");
  try {
    w.Commit(expected);
    FAIL() << "mismatch accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(e.message().find(expected.str()), std::string::npos) << e.message();
    EXPECT_NE(e.message().find(Digest::Of("some data").str()), std::string::npos) << e.message();
  }
  EXPECT_EQ(ListDirectory(tmp.path() + "/ingest").size(), 0u);
  EXPECT_EQ(ListDirectory(tmp.path() + "/blobs/sha256").size(), 0u);
}

TEST(BlobStoreTest, SizeMismatch) {
  berth::testing::TempDir tmp;
  BlobStore store(tmp.path());
  BlobWriter w = store.Ingest();
  w.Write("12345");
  try {
    w.Commit(Digest::Of("12345"), 4);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_NE(e.message().find("size mismatch"), std::string::npos);
  }
  EXPECT_EQ(ListDirectory(tmp.path() + "/ingest").size(), 0u);
}

TEST(BlobStoreTest, AbandonedWriterRemovesItsTempFile) {
  berth::testing::TempDir tmp;
  BlobStore store(tmp.path());
  {
    BlobWriter w = store.Ingest();
    w.Write("partial");
    EXPECT_EQ(ListDirectory(tmp.path() + "/ingest").size(), 1u);
  }
  EXPECT_EQ(ListDirectory(tmp.path() + "/ingest").size(), 0u);
  EXPECT_TRUE(store.List().empty());
}

TEST(BlobStoreTest, ListIgnoresStrayFiles) {
  berth::testing::TempDir tmp;
  BlobStore store(tmp.path());
  WriteFileAtomic(tmp.path() + "/blobs/sha256/not-a-digest", "x");
  store.Put("a");
  EXPECT_EQ(store.List().size(), 1u);
}

}  // namespace
}  // namespace berth::store
