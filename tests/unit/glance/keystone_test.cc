#include "glance_adapter/keystone.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "runtime/common/error.h"

namespace berth::glance {
namespace {

constexpr const char* kToken = R"({"token": {
  "expires_at": "2026-11-28T07:00:00.000000Z",
  "user": {"id": "u1", "name": "berth"},
  "project": {"id": "p1", "name": "service"},
  "roles": [{"id": "r1", "name": "admin"}, {"id": "r2", "name": "reader"}],
  "catalog": [
    {"type": "identity", "name": "keystone", "endpoints": [
      {"interface": "public", "region_id": "RegionOne", "url": "http://k:5000/v3"}]},
    {"type": "image", "name": "glance", "endpoints": [
      {"interface": "public", "region_id": "RegionOne", "url": "http://g1:9292/"},
      {"interface": "internal", "region_id": "RegionOne", "url": "http://g1-int:9292"},
      {"interface": "public", "region": "RegionTwo", "url": "http://g2:9292"}]}]}})";

TEST(ParseIsoTime, KeystoneAndOffsetForms) {
  auto a = ParseIsoTime("2026-11-28T07:00:00.000000Z");
  auto b = ParseIsoTime("2026-11-28T08:00:00+01:00");
  auto c = ParseIsoTime("2026-11-28T07:00:00");
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(*a, *c);
  EXPECT_EQ(SystemClock::to_time_t(*a), 1795849200);
  EXPECT_FALSE(ParseIsoTime("yesterday"));
  EXPECT_FALSE(ParseIsoTime("2026-13-28T07:00:00Z"));
  EXPECT_FALSE(ParseIsoTime("2026-11-28T07:00:00 junk"));
}

TEST(ParseTokenBody, UserRolesCatalog) {
  TokenInfo t = ParseTokenBody(kToken);
  EXPECT_EQ(t.user_name, "berth");
  EXPECT_EQ(t.project_id, "p1");
  EXPECT_EQ(t.roles, (std::vector<std::string>{"admin", "reader"}));
  ASSERT_EQ(t.catalog.size(), 4u);
  EXPECT_EQ(t.catalog[3].region, "RegionTwo");  // the older "region" field
}

TEST(ParseTokenBody, MalformedIsInvalidArgument) {
  EXPECT_THROW(ParseTokenBody("{}"), Error);
  EXPECT_THROW(ParseTokenBody("not json"), Error);
  EXPECT_THROW(ParseTokenBody(R"({"token": {"expires_at": "soon"}})"), Error);
}

TEST(FindEndpoint, ByInterfaceAndRegion) {
  TokenInfo t = ParseTokenBody(kToken);
  EXPECT_EQ(FindEndpoint(t.catalog, "image", "public", ""), "http://g1:9292");
  EXPECT_EQ(FindEndpoint(t.catalog, "image", "internal", "RegionOne"), "http://g1-int:9292");
  EXPECT_EQ(FindEndpoint(t.catalog, "image", "public", "RegionTwo"), "http://g2:9292");
  try {
    FindEndpoint(t.catalog, "image", "admin", "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(e.message().find("internal@RegionOne"), std::string::npos) << e.message();
  }
  EXPECT_THROW(FindEndpoint(t.catalog, "compute", "public", ""), Error);
}

TEST(NeedsRefresh, WithinTheMargin) {
  auto now = SystemClock::now();
  using std::chrono::seconds;
  EXPECT_FALSE(NeedsRefresh(now + seconds(600), now, seconds(300)));
  EXPECT_TRUE(NeedsRefresh(now + seconds(299), now, seconds(300)));
  EXPECT_TRUE(NeedsRefresh(now - seconds(1), now, seconds(0)));
}

TEST(AuthBodies, PasswordScopedToProject) {
  KeystoneOptions o;
  o.username = "berth";
  o.password = "p\"w";
  o.project_name = "service";
  rapidjson::Document d;
  d.Parse(PasswordAuthBody(o).c_str());
  ASSERT_FALSE(d.HasParseError());
  const auto& id = d["auth"]["identity"];
  EXPECT_STREQ(id["methods"][0].GetString(), "password");
  EXPECT_STREQ(id["password"]["user"]["password"].GetString(), "p\"w");
  EXPECT_STREQ(id["password"]["user"]["domain"]["name"].GetString(), "Default");
  EXPECT_STREQ(d["auth"]["scope"]["project"]["name"].GetString(), "service");
  d.Parse(TokenAuthBody("abc").c_str());
  EXPECT_STREQ(d["auth"]["identity"]["token"]["id"].GetString(), "abc");
  EXPECT_FALSE(d["auth"].HasMember("scope"));
  d.Parse(TokenAuthBody("abc", "p-1").c_str());
  EXPECT_STREQ(d["auth"]["scope"]["project"]["id"].GetString(), "p-1");
}

TEST(V3Url, AddsTheVersionOnce) {
  EXPECT_EQ(V3Url("http://k:5000"), "http://k:5000/v3");
  EXPECT_EQ(V3Url("http://k:5000/v3/"), "http://k:5000/v3");
  EXPECT_EQ(V3Url("http://k/identity/v3"), "http://k/identity/v3");
}

}  // namespace
}  // namespace berth::glance
