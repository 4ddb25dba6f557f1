#include "glance_adapter/keystone.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <time.h>

#include <algorithm>
#include <thread>

#include "glance_adapter/errors.h"

namespace berth::glance {
namespace {

constexpr size_t kMaxCachedTokens = 4096;

std::string Str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return "";
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

const rapidjson::Value* Obj(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(key);
  if (it == v.MemberEnd() || !it->value.IsObject()) return nullptr;
  return &it->value;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;
void Put(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  w.String(value.c_str(), static_cast<rapidjson::SizeType>(value.size()));
}

}  // namespace

std::optional<SystemClock::time_point> ParseIsoTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' ||
      (text[10] != 'T' && text[10] != ' ') || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t len, int& out) {
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  struct tm tm = {};
  int y, mo, d, h, mi, s;
  if (!num(0, 4, y) || !num(5, 2, mo) || !num(8, 2, d) || !num(11, 2, h) || !num(14, 2, mi) ||
      !num(17, 2, s) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
    return std::nullopt;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
  }
  long offset = 0;
  if (pos == text.size() || text.substr(pos) == "Z") {
  } else if ((text[pos] == '+' || text[pos] == '-') && text.size() == pos + 6 &&
             text[pos + 3] == ':') {
    int oh, om;
    if (!num(pos + 1, 2, oh) || !num(pos + 4, 2, om)) return std::nullopt;
    offset = (oh * 3600L + om * 60L) * (text[pos] == '+' ? 1 : -1);
  } else {
    return std::nullopt;
  }
  time_t t = ::timegm(&tm) - offset;
  return SystemClock::from_time_t(t);
}

TokenInfo ParseTokenBody(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  const rapidjson::Value* token = doc.HasParseError() ? nullptr : Obj(doc, "token");
  if (!token) throw Error(ErrorKind::kInvalidArgument, "keystone: token response has no \"token\"");
  TokenInfo info;
  auto expires = ParseIsoTime(Str(*token, "expires_at"));
  if (!expires) {
    throw Error(ErrorKind::kInvalidArgument,
                "keystone: token expires_at \"" + Str(*token, "expires_at") + "\" is not a time");
  }
  info.expires_at = *expires;
  if (const auto* user = Obj(*token, "user")) {
    info.user_id = Str(*user, "id");
    info.user_name = Str(*user, "name");
  }
  if (const auto* project = Obj(*token, "project")) info.project_id = Str(*project, "id");
  if (auto it = token->FindMember("roles"); it != token->MemberEnd() && it->value.IsArray()) {
    for (const auto& r : it->value.GetArray()) {
      std::string name = Str(r, "name");
      if (!name.empty()) info.roles.push_back(name);
    }
  }
  if (auto it = token->FindMember("catalog"); it != token->MemberEnd() && it->value.IsArray()) {
    for (const auto& svc : it->value.GetArray()) {
      auto eps = svc.IsObject() ? svc.FindMember("endpoints") : svc.MemberEnd();
      if (!svc.IsObject() || eps == svc.MemberEnd() || !eps->value.IsArray()) continue;
      for (const auto& ep : eps->value.GetArray()) {
        CatalogEndpoint e;
        e.type = Str(svc, "type");
        e.name = Str(svc, "name");
        e.interface = Str(ep, "interface");
        e.region = Str(ep, "region_id");
        if (e.region.empty()) e.region = Str(ep, "region");
        e.url = Str(ep, "url");
        if (!e.url.empty()) info.catalog.push_back(e);
      }
    }
  }
  return info;
}

std::string FindEndpoint(const std::vector<CatalogEndpoint>& catalog, const std::string& type,
                         const std::string& interface, const std::string& region) {
  std::string seen;
  for (const auto& e : catalog) {
    if (e.type != type) continue;
    if (e.interface == interface && (region.empty() || e.region == region)) {
      std::string url = e.url;
      while (!url.empty() && url.back() == '/') url.pop_back();
      return url;
    }
    seen += (seen.empty() ? "" : ", ") + e.interface + "@" + (e.region.empty() ? "-" : e.region);
  }
  throw Error(ErrorKind::kNotFound,
              "keystone catalog: no " + interface + " endpoint of type \"" + type + "\"" +
                  (region.empty() ? "" : " in region " + region) +
                  (seen.empty() ? " (the catalog has no such service)" : " (it has " + seen + ")"));
}

bool NeedsRefresh(SystemClock::time_point expires_at, SystemClock::time_point now,
                  std::chrono::seconds margin) {
  return expires_at - margin <= now;
}

std::string PasswordAuthBody(const KeystoneOptions& o) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("auth");
  w.StartObject();
  w.Key("identity");
  w.StartObject();
  w.Key("methods");
  w.StartArray();
  w.String("password");
  w.EndArray();
  w.Key("password");
  w.StartObject();
  w.Key("user");
  w.StartObject();
  Put(w, "name", o.username);
  Put(w, "password", o.password);
  w.Key("domain");
  w.StartObject();
  Put(w, "name", o.user_domain_name);
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.EndObject();
  if (!o.project_name.empty()) {
    w.Key("scope");
    w.StartObject();
    w.Key("project");
    w.StartObject();
    Put(w, "name", o.project_name);
    w.Key("domain");
    w.StartObject();
    Put(w, "name", o.project_domain_name);
    w.EndObject();
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string TokenAuthBody(const std::string& token, const std::string& project_id) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("auth");
  w.StartObject();
  w.Key("identity");
  w.StartObject();
  w.Key("methods");
  w.StartArray();
  w.String("token");
  w.EndArray();
  w.Key("token");
  w.StartObject();
  Put(w, "id", token);
  w.EndObject();
  w.EndObject();
  if (!project_id.empty()) {
    w.Key("scope");
    w.StartObject();
    w.Key("project");
    w.StartObject();
    Put(w, "id", project_id);
    w.EndObject();
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string V3Url(const std::string& auth_url) {
  std::string u = auth_url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.size() < 3 || u.compare(u.size() - 3, 3, "/v3") != 0) u += "/v3";
  return u;
}

KeystoneClient::KeystoneClient(KeystoneOptions options) : options_(std::move(options)) {
  if (options_.http.timeout_s == 0) options_.http.timeout_s = 60;
}

TokenInfo KeystoneClient::Authenticate(const std::string& body, const std::string& what) {
  HttpRequest req;
  req.method = "POST";
  req.url = V3Url(options_.auth_url) + "/auth/tokens";
  req.headers = {"Content-Type: application/json", "Accept: application/json"};
  req.body = body;
  return TokenCall(req, what);
}

TokenInfo KeystoneClient::TokenCall(const HttpRequest& req, const std::string& what) {
  for (int attempt = 1;; ++attempt) {
    HttpResponse resp;
    try {
      resp = Perform(req, options_.http);
    } catch (const TransportError& e) {
      if (attempt >= options_.retry.max_attempts) throw Unreachable("keystone", what, e.message());
      std::this_thread::sleep_for(
          std::chrono::milliseconds(BackoffMs(options_.retry, attempt + 1)));
      continue;
    }
    if (resp.status == 201 || resp.status == 200) {
      TokenInfo info = ParseTokenBody(resp.body);
      info.id = resp.Header("x-subject-token");
      if (info.id.empty()) {
        throw Error(ErrorKind::kInvalidArgument, "keystone: " + what + ": no X-Subject-Token");
      }
      return info;
    }
    if (IsRetryableStatus(resp.status) && attempt < options_.retry.max_attempts) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(BackoffMs(options_.retry, attempt + 1)));
      continue;
    }
    throw ErrorForStatus("keystone", resp.status, what, resp.body);
  }
}

TokenInfo KeystoneClient::ServiceToken() {
  if (!has_credentials()) {
    throw Error(ErrorKind::kInvalidArgument,
                "keystone: no service credentials ([keystone] username) and the request "
                "carried no token");
  }
  auto margin = std::chrono::seconds(options_.refresh_margin_s);
  {
    std::lock_guard lock(mu_);
    if (token_ && !NeedsRefresh(token_->expires_at, SystemClock::now(), margin)) return *token_;
  }
  std::lock_guard refresh(refresh_mu_);
  {
    // Someone else may have refreshed while we waited.
    std::lock_guard lock(mu_);
    if (token_ && !NeedsRefresh(token_->expires_at, SystemClock::now(), margin)) return *token_;
  }
  TokenInfo fresh =
      Authenticate(PasswordAuthBody(options_), "password auth of user " + options_.username);
  std::lock_guard lock(mu_);
  token_ = fresh;
  return fresh;
}

void KeystoneClient::InvalidateServiceToken() {
  std::lock_guard lock(mu_);
  token_.reset();
}

TokenInfo KeystoneClient::Inspect(const std::string& token) {
  HttpRequest req;
  req.url = V3Url(options_.auth_url) + "/auth/tokens";
  req.headers = {"Accept: application/json", "X-Auth-Token: " + token, "X-Subject-Token: " + token};
  return TokenCall(req, "read a token");
}

TokenInfo KeystoneClient::AuthenticateWithToken(const std::string& token) {
  // Keystone makes an unscoped token (no roles, no catalog) unless the request names a
  // scope: keep the old token's project.
  std::string project = Inspect(token).project_id;
  return Authenticate(TokenAuthBody(token, project), "token auth");
}

std::optional<TokenInfo> KeystoneClient::Validate(const std::string& token) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = validated_.find(token);
    if (it != validated_.end()) {
      if (it->second.until > now &&
          (!it->second.info || it->second.info->expires_at > SystemClock::now())) {
        return it->second.info;
      }
      validated_.erase(it);
    }
  }
  std::optional<TokenInfo> result;
  for (int pass = 0; pass < 2; ++pass) {
    TokenInfo service = ServiceToken();
    HttpRequest req;
    req.url = V3Url(options_.auth_url) + "/auth/tokens?nocatalog";
    req.headers = {"Accept: application/json", "X-Auth-Token: " + service.id,
                   "X-Subject-Token: " + token};
    HttpResponse resp;
    try {
      resp = Perform(req, options_.http);
    } catch (const TransportError& e) {
      throw Unreachable("keystone", "validate a token", e.message());
    }
    if (resp.status == 401 && pass == 0) {
      InvalidateServiceToken();  // ours was revoked: renew it once
      continue;
    }
    if (resp.status == 200) {
      result = ParseTokenBody(resp.body);
      result->id = token;
    } else if (resp.status != 404 && resp.status != 401) {
      throw ErrorForStatus("keystone", resp.status, "validate a token", resp.body);
    }
    break;
  }
  std::lock_guard lock(mu_);
  if (validated_.size() >= kMaxCachedTokens) validated_.clear();
  validated_[token] = {result, now + std::chrono::seconds(options_.validation_cache_s)};
  return result;
}

bool KeystoneClient::Authorizes(const std::string& token) {
  auto info = Validate(token);
  if (!info) return false;
  if (options_.allowed_roles.empty()) return true;
  for (const auto& r : info->roles) {
    if (std::find(options_.allowed_roles.begin(), options_.allowed_roles.end(), r) !=
        options_.allowed_roles.end()) {
      return true;
    }
  }
  return false;
}

std::string KeystoneClient::Endpoint(const std::string& type, const std::string& interface,
                                     const std::string& region, const std::string& user_token) {
  if (has_credentials() || user_token.empty()) {
    return FindEndpoint(ServiceToken().catalog, type, interface, region);
  }
  std::vector<CatalogEndpoint> catalog;
  {
    std::lock_guard lock(mu_);
    if (auto it = user_catalogs_.find(user_token); it != user_catalogs_.end()) catalog = it->second;
  }
  if (catalog.empty()) {
    catalog = Inspect(user_token).catalog;
    std::lock_guard lock(mu_);
    if (user_catalogs_.size() >= 256) user_catalogs_.clear();
    user_catalogs_[user_token] = catalog;
  }
  return FindEndpoint(catalog, type, interface, region);
}

}  // namespace berth::glance
