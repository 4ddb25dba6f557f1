// Keystone v3: password and token authentication (POST /v3/auth/tokens, the token in
// X-Subject-Token), the service catalog, a service token reused until it nears expiry
// (thread-safe, one refresh at a time) and the validation of callers' tokens (GET
// /v3/auth/tokens, cached briefly) so berthd can accept Keystone tokens.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "glance_adapter/http.h"
#include "glance_adapter/retry.h"

namespace berth::glance {

using SystemClock = std::chrono::system_clock;

struct KeystoneOptions {
  std::string auth_url;  // "http://controller:5000" or ".../v3"; empty: Keystone not used
  std::string username;  // berthd's service user; empty: no service credentials
  std::string password;
  std::string user_domain_name = "Default";
  std::string project_name;
  std::string project_domain_name = "Default";
  int refresh_margin_s = 300;   // a token this close to its expiry is renewed
  int validation_cache_s = 60;  // a validated caller token is trusted this long
  std::vector<std::string> allowed_roles = {"admin"};  // berthd's API needs one of them
  HttpOptions http;
  RetryPolicy retry;
};

struct CatalogEndpoint {
  std::string type;       // "image"
  std::string name;       // "glance"
  std::string interface;  // public | internal | admin
  std::string region;
  std::string url;
};

struct TokenInfo {
  std::string id;  // the token itself (X-Subject-Token)
  SystemClock::time_point expires_at{};
  std::string user_id;
  std::string user_name;
  std::string project_id;
  std::vector<std::string> roles;
  std::vector<CatalogEndpoint> catalog;
};

// Pure helpers (unit-tested).
// "2026-11-28T07:00:00.000000Z" / "...+00:00"; nullopt when not such a time.
std::optional<SystemClock::time_point> ParseIsoTime(std::string_view text);
// The body of a token response ({"token": {...}}); kInvalidArgument when malformed.
TokenInfo ParseTokenBody(std::string_view json);
// The endpoint URL for a service type, interface and region ("" region: any); kNotFound
// naming what the catalog has when none matches.
std::string FindEndpoint(const std::vector<CatalogEndpoint>& catalog, const std::string& type,
                         const std::string& interface, const std::string& region);
bool NeedsRefresh(SystemClock::time_point expires_at, SystemClock::time_point now,
                  std::chrono::seconds margin);
std::string PasswordAuthBody(const KeystoneOptions& options);
// Token auth; scoped to project_id when given (else Keystone makes an unscoped token).
std::string TokenAuthBody(const std::string& token, const std::string& project_id = "");
// "http://k:5000" -> "http://k:5000/v3"; "http://k:5000/v3/" -> "http://k:5000/v3".
std::string V3Url(const std::string& auth_url);

class KeystoneClient {
 public:
  explicit KeystoneClient(KeystoneOptions options);

  bool has_credentials() const { return !options_.username.empty(); }
  const KeystoneOptions& options() const { return options_; }

  // Password auth with the configured credentials, reused until it nears expiry. Callers
  // racing on an expiring token wait for one refresh instead of each asking Keystone.
  TokenInfo ServiceToken();
  // Forgets the service token (Glance refused it: revoked before its expiry).
  void InvalidateServiceToken();
  // Token auth: a new token (with the catalog) for an existing one, scoped to the same
  // project.
  TokenInfo AuthenticateWithToken(const std::string& token);
  // A token's own view of itself (GET /v3/auth/tokens with the token as both the caller and
  // the subject, which Keystone's policy allows any token): its user, project, roles and
  // catalog. Needs no service credentials.
  TokenInfo Inspect(const std::string& token);
  // A caller's token: its info when Keystone says it is valid, nullopt when it is not.
  // Both answers are cached for validation_cache_s. Needs service credentials.
  std::optional<TokenInfo> Validate(const std::string& token);
  // True when Validate accepts the token and it carries one of allowed_roles.
  bool Authorizes(const std::string& token);
  // The URL of a service from the catalog: the service token's, or (without service
  // credentials) `user_token`'s own (Inspect), cached by token.
  std::string Endpoint(const std::string& type, const std::string& interface,
                       const std::string& region, const std::string& user_token = "");

 private:
  TokenInfo Authenticate(const std::string& body, const std::string& what);
  // One token request with retries on transport errors and 5xx; the token is the
  // response's X-Subject-Token.
  TokenInfo TokenCall(const HttpRequest& req, const std::string& what);

  KeystoneOptions options_;
  std::mutex mu_;          // guards token_ and validated_
  std::mutex refresh_mu_;  // one password auth at a time
  std::optional<TokenInfo> token_;
  struct Validation {
    std::optional<TokenInfo> info;
    std::chrono::steady_clock::time_point until;
  };
  std::map<std::string, Validation> validated_;
  std::map<std::string, std::vector<CatalogEndpoint>> user_catalogs_;  // by token, bounded
};

}  // namespace berth::glance
