#include "glance_adapter/glance.h"

#include <gtest/gtest.h>

#include "glance_adapter/errors.h"
#include "glance_adapter/retry.h"
#include "glance_adapter/verify.h"

namespace berth::glance {
namespace {

TEST(ParseImageMeta, KnownFieldsAndProperties) {
  ImageMeta m = ParseImageMeta(R"({"id": "abc-1", "name": "busybox", "status": "active",
    "container_format": "bare", "disk_format": "root-tar", "checksum": "d41d",
    "os_hash_algo": "sha512", "os_hash_value": "cf83", "size": 1234,
    "berth_presync": "true", "tags": [], "min_disk": 0})");
  EXPECT_EQ(m.id, "abc-1");
  EXPECT_EQ(m.disk_format, "root-tar");
  EXPECT_EQ(m.size, 1234);
  EXPECT_EQ(m.properties.at("berth_presync"), "true");
  EXPECT_EQ(m.properties.count("tags"), 0u);
  EXPECT_EQ(m.HashKey(), "sha512:cf83");
  m.os_hash_value.clear();
  EXPECT_EQ(m.HashKey(), "md5:d41d");
  EXPECT_THROW(ParseImageMeta(R"({"name": "no id"})"), Error);
}

TEST(ParseImageMeta, NullFieldsOfAQueuedImage) {
  ImageMeta m = ParseImageMeta(
      R"({"id": "q", "status": "queued", "checksum": null, "size": null, "disk_format": null})");
  EXPECT_EQ(m.status, "queued");
  EXPECT_EQ(m.size, -1);
  EXPECT_EQ(m.HashKey(), "");
}

TEST(GlanceIds, OnlyUrlAndFileSafe) {
  EXPECT_TRUE(IsGlanceId("0e4f5a9c-1b2d-4c3e-8f70-123456789abc"));
  EXPECT_FALSE(IsGlanceId(""));
  EXPECT_FALSE(IsGlanceId("../etc"));
  EXPECT_FALSE(IsGlanceId("a/b"));
  EXPECT_FALSE(IsGlanceId("a?b"));
  EXPECT_FALSE(IsGlanceId(std::string(65, 'a')));
  EXPECT_EQ(V2Url("http://g:9292"), "http://g:9292/v2");
  EXPECT_EQ(V2Url("http://g:9292/v2/"), "http://g:9292/v2");
}

TEST(Retry, ExponentialAndCapped) {
  RetryPolicy p{5, 100, 350};
  EXPECT_EQ(BackoffMs(p, 1), 0);
  EXPECT_EQ(BackoffMs(p, 2), 100);
  EXPECT_EQ(BackoffMs(p, 3), 200);
  EXPECT_EQ(BackoffMs(p, 4), 350);
  EXPECT_EQ(BackoffMs(p, 40), 350);
  EXPECT_TRUE(IsRetryableStatus(500));
  EXPECT_TRUE(IsRetryableStatus(503));
  EXPECT_TRUE(IsRetryableStatus(429));
  EXPECT_FALSE(IsRetryableStatus(501));
  EXPECT_FALSE(IsRetryableStatus(404));
  EXPECT_FALSE(IsRetryableStatus(401));
}

TEST(Errors, StatusesKeepTheirMeaning) {
  EXPECT_EQ(ErrorForStatus("glance", 401, "x", "").http_status(), 401);
  EXPECT_EQ(ErrorForStatus("glance", 403, "x", "").slug(), "glance_forbidden");
  EXPECT_EQ(ErrorForStatus("glance", 404, "x", "").kind(), ErrorKind::kNotFound);
  EXPECT_EQ(ErrorForStatus("glance", 500, "x", "").http_status(), 502);
  auto e = ErrorForStatus("keystone", 401, "auth", "{\"error\":\n\"no\"}");
  EXPECT_EQ(e.slug(), "keystone_unauthorized");
  EXPECT_EQ(e.message().find('\n'), std::string::npos);
}

TEST(ImageVerifier, AcceptsMatchingRefusesMismatch) {
  std::string data = "hello glance";
  ImageVerifier ok("", HexDigest("sha512", data), HexDigest("md5", data));
  ok.Update(data.data(), 5);
  ok.Update(data.data() + 5, data.size() - 5);
  EXPECT_NO_THROW(ok.Finish());

  ImageVerifier sha256("sha256", HexDigest("sha256", data), "");
  sha256.Update(data.data(), data.size());
  EXPECT_NO_THROW(sha256.Finish());

  ImageVerifier bad_hash("sha512", std::string(128, '0'), HexDigest("md5", data));
  bad_hash.Update(data.data(), data.size());
  try {
    bad_hash.Finish();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("os_hash_value mismatch"), std::string::npos) << e.message();
  }
  ImageVerifier bad_md5("", "", std::string(32, 'f'));
  bad_md5.Update(data.data(), data.size());
  EXPECT_THROW(bad_md5.Finish(), Error);
}

TEST(ImageVerifier, RefusesUnverifiableOrUnknownAlgorithm) {
  EXPECT_THROW(ImageVerifier("", "", ""), Error);
  EXPECT_THROW(ImageVerifier("crc32-not", "00", ""), Error);
}

}  // namespace
}  // namespace berth::glance
