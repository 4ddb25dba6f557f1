#include "driver/server/config.h"

#include <fcntl.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <functional>
#include <map>

#include "driver/server/names.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"

namespace berth::server {
namespace {

struct ParseState {
  Config config;
  std::string error;
};

uint64_t ToUnsigned(const std::string& where, const char* value, uint64_t max) {
  std::string_view s(value);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty() || v > max) {
    throw Error(ErrorKind::kInvalidArgument,
                where + ": want an integer 0.." + std::to_string(max) + ", got \"" + value + "\"");
  }
  return v;
}

bool ToBool(const std::string& where, const char* value) {
  std::string v = value;
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off") return false;
  throw Error(ErrorKind::kInvalidArgument, where + ": want true or false, got \"" + value + "\"");
}

std::vector<std::string> ToList(const char* value) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = value;; ++p) {
    if (*p == ',' || *p == '\0') {
      while (!cur.empty() && cur.back() == ' ') cur.pop_back();
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (!*p) break;
    } else if (*p != ' ' || !cur.empty()) {
      cur += *p;
    }
  }
  return out;
}

std::string ToUrl(const std::string& where, const char* value) {
  std::string v = value;
  if (!v.empty() && v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) {
    throw Error(ErrorKind::kInvalidArgument, where + ": want an http:// or https:// URL");
  }
  return v;
}

using Setter = std::function<void(Config&, const std::string& where, const char* value)>;

const std::map<std::string, Setter>& Setters() {
  static const std::map<std::string, Setter> kSetters = {
      {"DEFAULT.log_level",
       [](Config& c, const std::string& w, const char* v) {
         static const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                         "error", "critical", "off"};
         for (const char* l : kLevels) {
           if (std::string(v) == l) {
             c.log_level = v;
             return;
           }
         }
         throw Error(ErrorKind::kInvalidArgument, w + ": unknown log level \"" + v + "\"");
       }},
      {"DEFAULT.state_dir", [](Config& c, const std::string&, const char* v) { c.state_dir = v; }},
      {"DEFAULT.run_dir", [](Config& c, const std::string&, const char* v) { c.run_dir = v; }},
      {"api.listen", [](Config& c, const std::string&, const char* v) { c.listen = v; }},
      {"api.port", [](Config& c, const std::string& w,
                      const char* v) { c.port = static_cast<uint16_t>(ToUnsigned(w, v, 65535)); }},
      {"api.token_file", [](Config& c, const std::string&, const char* v) { c.token_file = v; }},
      {"api.max_body_size",
       [](Config& c, const std::string& w, const char* v) {
         c.max_body_size = ToUnsigned(w, v, uint64_t{1} << 30);
       }},
      {"api.max_upload_size",
       [](Config& c, const std::string& w, const char* v) {
         c.max_upload_size = ToUnsigned(w, v, uint64_t{1} << 34);
       }},
      {"api.threads",
       [](Config& c, const std::string& w, const char* v) {
         c.threads = static_cast<int>(ToUnsigned(w, v, 256));
         if (c.threads == 0) throw Error(ErrorKind::kInvalidArgument, w + ": want at least 1");
       }},
      {"api.long_request_threads",
       [](Config& c, const std::string& w, const char* v) {
         c.long_request_threads = static_cast<int>(ToUnsigned(w, v, 1024));
         if (c.long_request_threads == 0) {
           throw Error(ErrorKind::kInvalidArgument, w + ": want at least 1");
         }
       }},
      {"api.tls_cert_file",
       [](Config& c, const std::string&, const char* v) { c.tls_cert_file = v; }},
      {"api.tls_key_file",
       [](Config& c, const std::string&, const char* v) { c.tls_key_file = v; }},
      {"api.tls_client_ca_file",
       [](Config& c, const std::string&, const char* v) { c.tls_client_ca_file = v; }},
      {"storage.driver",
       [](Config& c, const std::string&, const char* v) { c.storage_driver = v; }},
      {"instances.cgroup_parent",
       [](Config& c, const std::string& w, const char* v) {
         std::string s = v;
         if (s.empty() || s.find("..") != std::string::npos || s[0] == '/') {
           throw Error(ErrorKind::kInvalidArgument, w + ": want a relative cgroup path");
         }
         c.cgroup_parent = s;
       }},
      {"instances.console_max_bytes",
       [](Config& c, const std::string& w, const char* v) {
         c.console_max_bytes = ToUnsigned(w, v, uint64_t{1} << 32);
       }},
      {"instances.default_stop_timeout",
       [](Config& c, const std::string& w, const char* v) {
         c.default_stop_timeout = static_cast<int>(ToUnsigned(w, v, 3600));
       }},
      {"instances.exec_max_output",
       [](Config& c, const std::string& w, const char* v) {
         c.exec_max_output = ToUnsigned(w, v, uint64_t{64} << 20);
       }},
      {"security.userns",
       [](Config& c, const std::string& w, const char* v) { c.userns = ToBool(w, v); }},
      {"security.userns_user",
       [](Config& c, const std::string& w, const char* v) {
         if (!*v) throw Error(ErrorKind::kInvalidArgument, w + ": want a user name");
         c.userns_user = v;
       }},
      {"security.userns_range_size",
       [](Config& c, const std::string& w, const char* v) {
         c.userns_range_size = static_cast<uint32_t>(ToUnsigned(w, v, uint64_t{1} << 24));
         if (c.userns_range_size < 1024) {
           throw Error(ErrorKind::kInvalidArgument, w + ": want at least 1024 ids");
         }
       }},
      {"security.subid_dir", [](Config& c, const std::string&, const char* v) { c.subid_dir = v; }},
      {"security.allow_privileged",
       [](Config& c, const std::string& w, const char* v) { c.allow_privileged = ToBool(w, v); }},
      {"instances.state_refresh_ms",
       [](Config& c, const std::string& w, const char* v) {
         c.state_refresh_ms = static_cast<int>(ToUnsigned(w, v, 3600000));
       }},
      {"instances.spawner",
       [](Config& c, const std::string& w, const char* v) { c.spawner = ToBool(w, v); }},
      {"instances.shells",
       [](Config& c, const std::string& w, const char* v) { c.shells = ToUnsigned(w, v, 16); }},
      {"instances.rootfs_pool",
       [](Config& c, const std::string& w, const char* v) { c.rootfs_pool = ToBool(w, v); }},
      {"instances.max_console_followers",
       [](Config& c, const std::string& w, const char* v) {
         c.max_console_followers = ToUnsigned(w, v, 100000);
       }},
      // [keystone]
      {"keystone.auth_url", [](Config& c, const std::string& w,
                               const char* v) { c.keystone_auth_url = ToUrl(w, v); }},
      {"keystone.username",
       [](Config& c, const std::string&, const char* v) { c.keystone_username = v; }},
      {"keystone.password",
       [](Config& c, const std::string&, const char* v) { c.keystone_password = v; }},
      {"keystone.user_domain_name",
       [](Config& c, const std::string&, const char* v) { c.keystone_user_domain_name = v; }},
      {"keystone.project_name",
       [](Config& c, const std::string&, const char* v) { c.keystone_project_name = v; }},
      {"keystone.project_domain_name",
       [](Config& c, const std::string&, const char* v) { c.keystone_project_domain_name = v; }},
      {"keystone.accept_tokens", [](Config& c, const std::string& w,
                                    const char* v) { c.keystone_accept_tokens = ToBool(w, v); }},
      {"keystone.allowed_roles",
       [](Config& c, const std::string&, const char* v) { c.keystone_allowed_roles = ToList(v); }},
      {"keystone.token_cache_seconds",
       [](Config& c, const std::string& w, const char* v) {
         c.keystone_token_cache_seconds = static_cast<int>(ToUnsigned(w, v, 3600));
       }},
      {"keystone.refresh_margin",
       [](Config& c, const std::string& w, const char* v) {
         c.keystone_refresh_margin = static_cast<int>(ToUnsigned(w, v, 86400));
       }},
      {"keystone.timeout",
       [](Config& c, const std::string& w, const char* v) {
         c.keystone_timeout = static_cast<int>(ToUnsigned(w, v, 3600));
       }},
      {"keystone.ca_file",
       [](Config& c, const std::string&, const char* v) { c.keystone_ca_file = v; }},
      {"keystone.insecure", [](Config& c, const std::string& w,
                               const char* v) { c.keystone_insecure = ToBool(w, v); }},
      // [glance]
      {"glance.api_url", [](Config& c, const std::string& w,
                            const char* v) { c.glance_api_url = ToUrl(w, v); }},
      {"glance.interface",
       [](Config& c, const std::string& w, const char* v) {
         std::string s = v;
         if (s != "public" && s != "internal" && s != "admin") {
           throw Error(ErrorKind::kInvalidArgument, w + ": want public, internal or admin");
         }
         c.glance_interface = s;
       }},
      {"glance.region_name",
       [](Config& c, const std::string&, const char* v) { c.glance_region_name = v; }},
      {"glance.retries",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_retries = static_cast<int>(ToUnsigned(w, v, 20));
       }},
      {"glance.retry_backoff_ms",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_retry_backoff_ms = static_cast<int>(ToUnsigned(w, v, 60000));
       }},
      {"glance.retry_backoff_max_ms",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_retry_backoff_max_ms = static_cast<int>(ToUnsigned(w, v, 600000));
       }},
      {"glance.connect_timeout",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_connect_timeout = static_cast<int>(ToUnsigned(w, v, 600));
       }},
      {"glance.stall_timeout",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_stall_timeout = static_cast<int>(ToUnsigned(w, v, 3600));
       }},
      {"glance.presync", [](Config& c, const std::string& w,
                            const char* v) { c.glance_presync = ToBool(w, v); }},
      {"glance.presync_interval",
       [](Config& c, const std::string& w, const char* v) {
         c.glance_presync_interval = static_cast<int>(ToUnsigned(w, v, 7 * 86400));
       }},
      {"glance.ca_file", [](Config& c, const std::string&, const char* v) { c.glance_ca_file = v; }},
      {"glance.insecure", [](Config& c, const std::string& w,
                             const char* v) { c.glance_insecure = ToBool(w, v); }},
  };
  return kSetters;
}

int OnValue(void* user, const char* section, const char* name, const char* value) {
  auto* st = static_cast<ParseState*>(user);
  std::string sec = section[0] ? section : "DEFAULT";
  std::string key = sec + "." + name;
  std::string where = "[" + sec + "] " + name;
  if (sec == "network") {
    try {
      SetNetworkOption(st->config.network, where, name, value);
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::kNotFound) {
        st->config.warnings.push_back(e.message() + " ignored");
        return 1;
      }
      if (st->error.empty()) st->error = e.message();
      return 0;
    }
    return 1;
  }
  auto it = Setters().find(key);
  if (it == Setters().end()) {
    st->config.warnings.push_back("unknown option " + where + " ignored");
    return 1;
  }
  try {
    it->second(st->config, where, value);
  } catch (const Error& e) {
    if (st->error.empty()) st->error = e.message();
    return 0;
  }
  return 1;
}

// Half a TLS setup would silently serve plain HTTP; refuse it instead.
void CheckTlsOptions(const Config& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string("[api] ") +
                    (c.tls_cert_file.empty() ? "tls_cert_file" : "tls_key_file") +
                    ": must be set together with [api] " +
                    (c.tls_cert_file.empty() ? "tls_key_file" : "tls_cert_file"));
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "[api] tls_client_ca_file: needs [api] tls_cert_file and tls_key_file");
  }
}

// A password without a user (or the reverse) is a typo, not a choice.
void CheckKeystoneOptions(const Config& c) {
  if (c.keystone_username.empty() != c.keystone_password.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "[keystone] username and password: set both or neither");
  }
  if (!c.keystone_username.empty() && c.keystone_auth_url.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "[keystone] username: needs [keystone] auth_url");
  }
}

}  // namespace

Config ParseConfig(const std::string& text) {
  ParseState st;
  int rc = ini_parse_string(text.c_str(), OnValue, &st);
  if (!st.error.empty()) throw Error(ErrorKind::kInvalidArgument, st.error);
  if (rc != 0) {
    throw Error(ErrorKind::kInvalidArgument, "syntax error at line " + std::to_string(rc));
  }
  CheckTlsOptions(st.config);
  CheckNetworkOptions(st.config.network);
  CheckKeystoneOptions(st.config);
  return st.config;
}

Config LoadConfig(const std::string& path) {
  return WithContext(path, [&] { return ParseConfig(ReadFile(path)); });
}

void CheckTlsFiles(const Config& config) {
  const std::pair<const char*, const std::string*> kFiles[] = {
      {"tls_cert_file", &config.tls_cert_file},
      {"tls_key_file", &config.tls_key_file},
      {"tls_client_ca_file", &config.tls_client_ca_file},
  };
  for (const auto& [option, path] : kFiles) {
    if (path->empty()) continue;
    UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      throw Error::FromErrno("open", *path, errno).WithContext(std::string("[api] ") + option);
    }
  }
}

std::string LoadOrCreateToken(const std::string& path) {
  if (auto existing = ReadFileIfExists(path)) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) ThrowErrno("stat", path);
    if (st.st_mode & 077) {
      throw Error(ErrorKind::kInvalidArgument,
                  path + ": token file is accessible by group or others; chmod 600 it");
    }
    std::string token = *existing;
    while (!token.empty() &&
           (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
      token.pop_back();
    }
    if (token.size() < 16) {
      throw Error(ErrorKind::kInvalidArgument, path + ": token shorter than 16 characters");
    }
    return token;
  }
  std::string dir = path.substr(0, path.rfind('/'));
  if (!dir.empty() && !PathExists(dir)) MakeDirs(dir, 0700);
  std::string token = RandomHex(32);
  WriteFileAtomic(path, token + "\n", 0600);
  return token;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace berth::server
