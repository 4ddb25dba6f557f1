#include <gtest/gtest.h>

#include "driver/server/config.h"
#include "driver/server/glance_images.h"
#include "runtime/common/error.h"

namespace berth::server {
namespace {

TEST(GlanceConfig, DefaultsLeaveOpenStackOff) {
  Config c = ParseConfig("");
  EXPECT_FALSE(c.keystone());
  EXPECT_FALSE(c.glance());
  EXPECT_EQ(c.glance_interface, "public");
  EXPECT_EQ(c.glance_retries, 3);
  EXPECT_TRUE(c.glance_presync);
  EXPECT_EQ(c.keystone_allowed_roles, std::vector<std::string>{"admin"});
}

TEST(GlanceConfig, SectionsParsedAndMapped) {
  Config c = ParseConfig(
      "[keystone]\nauth_url = http://k:5000/v3\nusername = berth\npassword = pw\n"
      "project_name = service\nallowed_roles = admin, service\ntoken_cache_seconds = 5\n"
      "accept_tokens = false\n"
      "[glance]\ninterface = internal\nregion_name = RegionOne\nretries = 2\n"
      "retry_backoff_ms = 10\nstall_timeout = 7\npresync = no\npresync_interval = 0\n");
  EXPECT_TRUE(c.keystone());
  EXPECT_TRUE(c.glance());
  EXPECT_FALSE(c.keystone_accept_tokens);
  EXPECT_EQ(c.keystone_allowed_roles, (std::vector<std::string>{"admin", "service"}));
  EXPECT_FALSE(c.glance_presync);
  auto k = KeystoneOptionsFrom(c);
  EXPECT_EQ(k.username, "berth");
  EXPECT_EQ(k.validation_cache_s, 5);
  EXPECT_EQ(k.retry.max_attempts, 3);
  auto g = GlanceOptionsFrom(c);
  EXPECT_EQ(g.interface, "internal");
  EXPECT_EQ(g.region_name, "RegionOne");
  EXPECT_EQ(g.retry.initial_backoff_ms, 10);
  EXPECT_EQ(g.http.low_speed_time_s, 7);
}

TEST(GlanceConfig, BadValuesNameTheOption) {
  auto message = [](const std::string& text) {
    try {
      ParseConfig(text);
    } catch (const Error& e) {
      return e.message();
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("[glance]\ninterface = private\n").find("[glance] interface"),
            std::string::npos);
  EXPECT_NE(message("[glance]\napi_url = glance:9292\n").find("[glance] api_url"),
            std::string::npos);
  EXPECT_NE(message("[glance]\npresync = maybe\n").find("[glance] presync"), std::string::npos);
  EXPECT_NE(message("[keystone]\nauth_url = http://k\nusername = u\n").find("password"),
            std::string::npos);
  EXPECT_NE(message("[keystone]\nusername = u\npassword = p\n").find("auth_url"),
            std::string::npos);
}

}  // namespace
}  // namespace berth::server
