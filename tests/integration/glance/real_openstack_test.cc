// glance_adapter against a real Keystone v3 and Glance v2 (the e2e OpenStack of
// tests/e2e/openstack_e2e.sh; tests/e2e/tempest.sh and openstack_e2e.sh run these). Every
// test skips unless BERTH_REAL_KEYSTONE_URL, BERTH_REAL_USERNAME, BERTH_REAL_PASSWORD and
// BERTH_REAL_PROJECT are set (optional: BERTH_REAL_USER_DOMAIN, BERTH_REAL_PROJECT_DOMAIN,
// both "Default", and BERTH_REAL_REGION), so the default suite does not need an OpenStack.
// The user needs the admin role (token validation) and may create images. Every image a
// test makes is deleted at its end, passing or not.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "glance_adapter/errors.h"
#include "glance_adapter/glance.h"
#include "glance_adapter/keystone.h"
#include "glance_adapter/sync.h"
#include "glance_adapter/verify.h"
#include "runtime/common/file_util.h"
#include "tests/support/busybox_rootfs.h"
#include "tests/support/test_env.h"

namespace berth::glance {
namespace {

using testing::TempDir;

std::string Env(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// A random v4-style UUID: an image id no Glance has.
std::string RandomUuid() {
  std::random_device rd;
  std::mt19937_64 rng(rd());
  const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 32; ++i) {
    if (i == 8 || i == 12 || i == 16 || i == 20) out += '-';
    out += hex[rng() % 16];
  }
  out[14] = '4';
  return out;
}

// The busybox rootfs as a docker-archive, made once (the same data the sync tests use).
struct Data {
  TempDir dir;
  std::string docker;
};
Data* g_data = nullptr;

class RealOpenStackTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (Env("BERTH_REAL_KEYSTONE_URL").empty() || !testing::IsRoot()) return;
    g_data = new Data;
    std::string fs = g_data->dir.Sub("rootfs");
    testing::BuildBusyboxRootfs(fs);
    std::string tar = g_data->dir.Sub("busybox.tar");
    ASSERT_EQ(std::system(("tar -C " + fs + " -cf " + tar + " .").c_str()), 0);
    store::ImageStore scratch(g_data->dir.Sub("scratch"), "overlay");
    store::ImportOptions io;
    io.format = store::ImportFormat::kRootfsTar;
    auto img = scratch.Import(tar, io);
    g_data->docker = g_data->dir.Sub("busybox.docker.tar");
    scratch.ExportToFile(img.image.id.str(), store::ExportFormat::kDockerArchive, g_data->docker);
  }
  static void TearDownTestSuite() {
    delete g_data;
    g_data = nullptr;
  }

  void SetUp() override {
    KeystoneOptions o;
    o.auth_url = Env("BERTH_REAL_KEYSTONE_URL");
    o.username = Env("BERTH_REAL_USERNAME");
    o.password = Env("BERTH_REAL_PASSWORD");
    o.project_name = Env("BERTH_REAL_PROJECT");
    if (o.auth_url.empty() || o.username.empty() || o.password.empty() || o.project_name.empty()) {
      GTEST_SKIP() << "no real OpenStack: set BERTH_REAL_KEYSTONE_URL, BERTH_REAL_USERNAME, "
                      "BERTH_REAL_PASSWORD and BERTH_REAL_PROJECT (tests/e2e/tempest.sh does)";
    }
    if (!testing::IsRoot()) GTEST_SKIP() << "needs root (the layer store keeps owners)";
    ASSERT_NE(g_data, nullptr);
    o.user_domain_name = Env("BERTH_REAL_USER_DOMAIN", "Default");
    o.project_domain_name = Env("BERTH_REAL_PROJECT_DOMAIN", "Default");
    region_ = Env("BERTH_REAL_REGION");
    keystone_options_ = o;
    keystone_ = std::make_unique<KeystoneClient>(o);
    GlanceOptions g;  // no api_url: the endpoint comes from the catalog
    g.region_name = region_;
    glance_ = std::make_unique<GlanceClient>(g, keystone_.get());
  }

  void TearDown() override {
    for (const auto& id : made_) {
      try {
        HttpRequest del;
        del.method = "DELETE";
        del.url = glance_->BaseUrl("") + "/images/" + id;
        del.headers = {"X-Auth-Token: " + keystone_->ServiceToken().id};
        HttpResponse r = Perform(del, HttpOptions{});
        if (r.status != 204 && r.status != 404) {
          ADD_FAILURE() << "DELETE image " << id << ": HTTP " << r.status << " " << r.body;
        }
      } catch (const std::exception& e) {
        ADD_FAILURE() << "DELETE image " << id << ": " << e.what();
      }
    }
  }

  // Publishes the busybox docker-archive as a new image the way berthd publishes a
  // snapshot (create the record with its formats, PUT the data), waits until it is active.
  ImageMeta Publish(const std::string& name) {
    SnapshotUpload up;
    up.glance_id = RandomUuid();
    up.name = name;
    up.properties = {{"berth_test", "real_openstack_test"}};
    made_.push_back(up.glance_id);
    UploadSnapshot(*glance_, up, g_data->docker);
    ImageMeta meta;
    for (int i = 0; i < 100; ++i) {
      meta = glance_->GetImage(up.glance_id, "");
      if (meta.status == "active") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return meta;
  }

  std::string region_;
  KeystoneOptions keystone_options_;
  std::unique_ptr<KeystoneClient> keystone_;
  std::unique_ptr<GlanceClient> glance_;
  std::vector<std::string> made_;
  TempDir dir_;
};

TEST_F(RealOpenStackTest, PasswordAuthGivesATokenWithTheImageEndpoint) {
  TokenInfo t = keystone_->ServiceToken();
  EXPECT_FALSE(t.id.empty());
  EXPECT_GT(t.expires_at, SystemClock::now() + std::chrono::minutes(5));
  EXPECT_EQ(t.user_name, keystone_options_.username);
  EXPECT_FALSE(t.project_id.empty());
  EXPECT_FALSE(t.roles.empty());
  std::string url = keystone_->Endpoint("image", "public", region_);
  EXPECT_EQ(url.rfind("http", 0), 0u) << url;
  EXPECT_EQ(glance_->BaseUrl(""), V2Url(url));
  // A type the catalog does not have is a clear error naming what it has.
  try {
    keystone_->Endpoint("no-such-service", "public", region_);
    ADD_FAILURE() << "found an endpoint for no-such-service";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("no-such-service"), std::string::npos) << e.what();
  }
}

TEST_F(RealOpenStackTest, WithoutServiceCredentialsTheCallersTokenFindsGlance) {
  // berthd configured without [keystone] username: the token Nova passes is all it has.
  KeystoneOptions o = keystone_options_;
  o.username.clear();
  o.password.clear();
  KeystoneClient anon(o);
  std::string user_token = keystone_->ServiceToken().id;
  TokenInfo self = anon.Inspect(user_token);
  EXPECT_EQ(self.id, user_token);
  EXPECT_FALSE(self.catalog.empty());
  EXPECT_EQ(anon.Endpoint("image", "public", region_, user_token),
            keystone_->Endpoint("image", "public", region_));
  GlanceOptions g;
  g.region_name = region_;
  GlanceClient glance(g, &anon);
  EXPECT_EQ(glance.BaseUrl(user_token), glance_->BaseUrl(""));
}

TEST_F(RealOpenStackTest, ServiceTokenIsReusedAndCallerTokensAreValidated) {
  TokenInfo a = keystone_->ServiceToken();
  TokenInfo b = keystone_->ServiceToken();
  EXPECT_EQ(a.id, b.id) << "a fresh token was not reused";
  // Token auth: a new token for the same user and project, with roles and the catalog.
  TokenInfo c = keystone_->AuthenticateWithToken(a.id);
  EXPECT_NE(c.id, a.id);
  EXPECT_EQ(c.user_id, a.user_id);
  EXPECT_EQ(c.project_id, a.project_id);
  EXPECT_EQ(c.roles, a.roles);
  EXPECT_FALSE(c.catalog.empty());
  // Validation of a caller's token (what berthd does for Keystone tokens on its API).
  std::optional<TokenInfo> v = keystone_->Validate(c.id);
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->user_id, a.user_id);
  EXPECT_TRUE(keystone_->Authorizes(c.id));
  EXPECT_FALSE(keystone_->Validate("not-a-keystone-token").has_value());
  // After InvalidateServiceToken the next call authenticates again.
  keystone_->InvalidateServiceToken();
  EXPECT_NE(keystone_->ServiceToken().id, a.id);
}

TEST_F(RealOpenStackTest, WrongPasswordIsUnauthorized) {
  KeystoneOptions o = keystone_options_;
  o.password = "not-the-password";
  o.retry = {1, 10, 10};
  KeystoneClient k(o);
  try {
    k.ServiceToken();
    FAIL() << "authenticated with a wrong password";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 401);
    EXPECT_EQ(e.slug(), "keystone_unauthorized");
  }
}

TEST_F(RealOpenStackTest, SnapshotUploadThenMetadataThenVerifiedStreamedDownload) {
  std::string data = ReadFile(g_data->docker);
  ImageMeta meta = Publish("berth-real-test-upload");
  ASSERT_EQ(meta.status, "active");
  EXPECT_EQ(meta.name, "berth-real-test-upload");
  EXPECT_EQ(meta.container_format, "docker");
  EXPECT_EQ(meta.disk_format, "raw");
  EXPECT_EQ(meta.size, static_cast<int64_t>(data.size()));
  EXPECT_EQ(meta.properties["berth_test"], "real_openstack_test");
  // Glance computed the multihash and the md5 of what was PUT.
  EXPECT_EQ(meta.os_hash_algo, "sha512");
  EXPECT_EQ(meta.os_hash_value, HexDigest("sha512", data));
  EXPECT_EQ(meta.checksum, HexDigest("md5", data));
  EXPECT_EQ(meta.HashKey(), "sha512:" + meta.os_hash_value);

  // Streamed download, verified chunk by chunk against Glance's hashes; more than one
  // chunk must arrive (it is not read as one body).
  ImageVerifier verifier(meta.os_hash_algo, meta.os_hash_value, meta.checksum);
  std::string got;
  int chunks = 0;
  uint64_t n = glance_->Download(meta.id, "", [&](const char* p, size_t size) {
    verifier.Update(p, size);
    got.append(p, size);
    ++chunks;
  });
  EXPECT_NO_THROW(verifier.Finish());
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(got, data);
  EXPECT_GT(chunks, 1);

  // The same data checked against a wrong hash is refused.
  ImageVerifier wrong(meta.os_hash_algo, std::string(128, '0'), "");
  glance_->Download(meta.id, "", [&](const char* p, size_t size) { wrong.Update(p, size); });
  try {
    wrong.Finish();
    ADD_FAILURE() << "a wrong os_hash_value was accepted";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.slug(), "glance_image_corrupt");
  }

  // Listing by property finds it.
  auto list = glance_->ListImages("", {{"berth_test", "real_openstack_test"}});
  bool found = false;
  for (const auto& m : list) found = found || m.id == meta.id;
  EXPECT_TRUE(found);
}

TEST_F(RealOpenStackTest, CallerTokenIsUsedForGlance) {
  ImageMeta meta = Publish("berth-real-test-token");
  ASSERT_EQ(meta.status, "active");
  // A token of the same user (as Nova passes the user's token with a request).
  TokenInfo user = keystone_->AuthenticateWithToken(keystone_->ServiceToken().id);
  ImageMeta again = glance_->GetImage(meta.id, user.id);
  EXPECT_EQ(again.os_hash_value, meta.os_hash_value);
}

TEST_F(RealOpenStackTest, GlanceImageSyncsIntoTheStoreOnce) {
  ImageMeta meta = Publish("berth-real-test-sync");
  ASSERT_EQ(meta.status, "active");
  store::ImageStore images(dir_.Sub("store"), "overlay");
  GlanceSync sync(*glance_, images, SyncOptions{dir_.Sub("cache"), -1});
  SyncedImage s = sync.Resolve(meta.id, "");
  EXPECT_TRUE(s.downloaded);
  EXPECT_EQ(s.format, "docker-archive");
  EXPECT_EQ(s.hash, meta.HashKey());
  store::ImageRecord img = images.Get(s.image_id);
  EXPECT_EQ(img.layers.size(), 1u);
  SyncedImage again = sync.Resolve(meta.id, "");
  EXPECT_FALSE(again.downloaded) << "an unchanged image was downloaded twice";
  EXPECT_EQ(again.image_id, s.image_id);
  EXPECT_EQ(sync.downloads(), 1u);
}

TEST_F(RealOpenStackTest, MissingImageIsNotFound) {
  std::string id = RandomUuid();
  try {
    glance_->GetImage(id, "");
    FAIL() << "GET of a missing image succeeded";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 404);
    EXPECT_EQ(e.slug(), "glance_not_found");
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }
  try {
    glance_->Download(id, "", [](const char*, size_t) {});
    FAIL() << "download of a missing image succeeded";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 404);
  }
}

TEST_F(RealOpenStackTest, BadTokenIsUnauthorized) {
  ImageMeta meta = Publish("berth-real-test-401");
  ASSERT_EQ(meta.status, "active");
  try {
    glance_->GetImage(meta.id, "gAAAAABnot-a-valid-token");
    FAIL() << "Glance accepted a bad token";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 401);
    EXPECT_EQ(e.slug(), "glance_unauthorized");
  }
  try {
    glance_->Download(meta.id, "gAAAAABnot-a-valid-token", [](const char*, size_t) {});
    FAIL() << "Glance served data for a bad token";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 401);
  }
}

}  // namespace
}  // namespace berth::glance
