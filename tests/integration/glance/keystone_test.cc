// The Keystone client against the loopback Keystone: service token reuse and refresh,
// one refresh at a time, token auth, validation with its cache and roles, the catalog.
#include "glance_adapter/keystone.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "glance_adapter/errors.h"
#include "tests/integration/glance/fake_openstack.h"
#include "tests/support/test_env.h"

namespace berth::glance {
namespace {

class KeystoneTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_ = std::make_unique<testing::FakeOpenStack>(dir_.Sub("fake")); }

  KeystoneOptions Options() {
    KeystoneOptions o;
    o.auth_url = fake_->url();
    o.username = "berth";
    o.password = "berth-pass";
    o.project_name = "service";
    o.retry = {3, 10, 50};
    return o;
  }
  int Auths() { return fake_->Count("POST /v3/auth/tokens"); }
  int Validations() { return fake_->Count("GET /v3/auth/tokens"); }

  testing::TempDir dir_;
  std::unique_ptr<testing::FakeOpenStack> fake_;
};

TEST_F(KeystoneTest, ServiceTokenIsReusedUntilItNearsExpiry) {
  KeystoneClient k(Options());
  TokenInfo a = k.ServiceToken();
  TokenInfo b = k.ServiceToken();
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(Auths(), 1);
  // Tokens that live 10 s are always within the 300 s margin: each use renews.
  fake_->SetTokenTtl(10);
  k.InvalidateServiceToken();
  TokenInfo c = k.ServiceToken();
  TokenInfo d = k.ServiceToken();
  EXPECT_NE(c.id, d.id);
  EXPECT_EQ(Auths(), 3);
}

TEST_F(KeystoneTest, RacingCallersShareOneRefresh) {
  KeystoneClient k(Options());
  fake_->Fault(R"({"method": "POST", "path": "^/v3/auth/tokens$", "status": 500, "count": 1})");
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) threads.emplace_back([&, i] { ids[i] = k.ServiceToken().id; });
  for (auto& t : threads) t.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Auths(), 2);  // the injected 500, then one success
}

TEST_F(KeystoneTest, WrongPasswordIsUnauthorized) {
  KeystoneOptions o = Options();
  o.password = "wrong";
  KeystoneClient k(o);
  try {
    k.ServiceToken();
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 401);
    EXPECT_EQ(e.slug(), "keystone_unauthorized");
  }
}

TEST_F(KeystoneTest, TokenAuthReturnsANewTokenWithTheCatalog) {
  KeystoneClient k(Options());
  std::string demo = fake_->Issue("demo");
  TokenInfo t = k.AuthenticateWithToken(demo);
  EXPECT_NE(t.id, demo);
  EXPECT_EQ(t.user_name, "demo");
  EXPECT_FALSE(t.catalog.empty());
  // Scoped like the old token (Keystone would make an unscoped one, without roles).
  EXPECT_EQ(t.project_id, "demo-id");
  EXPECT_EQ(t.roles, std::vector<std::string>{"member"});
  EXPECT_THROW(k.AuthenticateWithToken("bogus"), RemoteError);
}

TEST_F(KeystoneTest, InspectReadsATokenWithItselfWithoutServiceCredentials) {
  KeystoneOptions o = Options();
  o.username.clear();
  o.password.clear();
  KeystoneClient anon(o);
  std::string demo = fake_->Issue("demo");
  TokenInfo t = anon.Inspect(demo);
  EXPECT_EQ(t.id, demo);
  EXPECT_EQ(t.project_id, "demo-id");
  EXPECT_FALSE(t.catalog.empty());
  EXPECT_EQ(Auths(), 0);  // no new token was made
  try {
    anon.Inspect("bogus");
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.http_status(), 401);
  }
}

TEST_F(KeystoneTest, ValidationChecksRolesAndIsCached) {
  KeystoneClient k(Options());
  std::string admin = fake_->Issue("berth");
  std::string member = fake_->Issue("demo");
  EXPECT_TRUE(k.Authorizes(admin));
  EXPECT_FALSE(k.Authorizes(member));  // valid, but not an allowed role
  EXPECT_TRUE(k.Validate(member).has_value());
  EXPECT_FALSE(k.Authorizes("bogus"));
  int asked = Validations();
  EXPECT_EQ(asked, 3);
  EXPECT_TRUE(k.Authorizes(admin));
  EXPECT_FALSE(k.Authorizes("bogus"));
  EXPECT_EQ(Validations(), asked);  // both answers came from the cache
  // Without the cache, a revoked token stops working at once.
  KeystoneOptions o = Options();
  o.validation_cache_s = 0;
  KeystoneClient uncached(o);
  EXPECT_TRUE(uncached.Authorizes(admin));
  fake_->Revoke(admin);
  EXPECT_FALSE(uncached.Authorizes(admin));
}

TEST_F(KeystoneTest, ValidationRenewsARevokedServiceToken) {
  KeystoneClient k(Options());
  std::string admin = fake_->Issue("berth");
  fake_->Revoke(k.ServiceToken().id);
  EXPECT_TRUE(k.Authorizes(admin));
  EXPECT_EQ(Auths(), 2);
}

TEST_F(KeystoneTest, CatalogEndpointByInterfaceAndRegion) {
  KeystoneClient k(Options());
  EXPECT_EQ(k.Endpoint("image", "public", "RegionOne"), fake_->url());
  EXPECT_EQ(k.Endpoint("image", "internal", ""), fake_->url());
  EXPECT_EQ(k.Endpoint("image", "public", "RegionTwo"), "http://127.0.0.1:9");
  EXPECT_THROW(k.Endpoint("image", "admin", ""), Error);
  // Without service credentials the caller's token finds the catalog (its own view).
  KeystoneOptions o = Options();
  o.username.clear();
  o.password.clear();
  KeystoneClient anon(o);
  EXPECT_EQ(anon.Endpoint("image", "public", "RegionOne", fake_->Issue("demo")), fake_->url());
  EXPECT_THROW(anon.ServiceToken(), Error);
}

}  // namespace
}  // namespace berth::glance
