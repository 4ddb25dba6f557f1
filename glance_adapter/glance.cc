#include "glance_adapter/glance.h"

#include <fcntl.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "glance_adapter/errors.h"
#include "runtime/common/unique_fd.h"

namespace berth::glance {
namespace {

void Sleep(const RetryPolicy& p, int next_attempt) {
  std::this_thread::sleep_for(std::chrono::milliseconds(BackoffMs(p, next_attempt)));
}

std::string UrlEncode(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// An image id goes into a URL path: refuse anything that could change the path.
void CheckId(const std::string& id) {
  if (!IsGlanceId(id)) {
    throw Error(ErrorKind::kInvalidArgument,
                "glance image id \"" + id + "\": want 1..64 letters, digits, '-' and '_'");
  }
}

}  // namespace

bool IsGlanceId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

std::string ImageMeta::HashKey() const {
  if (!os_hash_value.empty())
    return (os_hash_algo.empty() ? "sha512" : os_hash_algo) + ":" + os_hash_value;
  if (!checksum.empty()) return "md5:" + checksum;
  return "";
}

ImageMeta ParseImageMeta(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(ErrorKind::kInvalidArgument, "glance: image body is not a JSON object");
  }
  ImageMeta m;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string key(it->name.GetString(), it->name.GetStringLength());
    if (key == "size" && it->value.IsInt64()) m.size = it->value.GetInt64();
    if (!it->value.IsString()) continue;
    std::string v(it->value.GetString(), it->value.GetStringLength());
    if (key == "id")
      m.id = v;
    else if (key == "name")
      m.name = v;
    else if (key == "status")
      m.status = v;
    else if (key == "container_format")
      m.container_format = v;
    else if (key == "disk_format")
      m.disk_format = v;
    else if (key == "checksum")
      m.checksum = v;
    else if (key == "os_hash_algo")
      m.os_hash_algo = v;
    else if (key == "os_hash_value")
      m.os_hash_value = v;
    else if (key == "updated_at")
      m.updated_at = v;
    else
      m.properties[key] = v;
  }
  if (m.id.empty()) throw Error(ErrorKind::kInvalidArgument, "glance: image body has no id");
  return m;
}

std::string V2Url(const std::string& url) {
  std::string u = url;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.size() < 3 || u.compare(u.size() - 3, 3, "/v2") != 0) u += "/v2";
  return u;
}

GlanceClient::GlanceClient(GlanceOptions options, KeystoneClient* keystone)
    : options_(std::move(options)), keystone_(keystone) {}

std::string GlanceClient::TokenFor(const std::string& token) {
  if (!token.empty()) return token;
  if (!keystone_) {
    throw Error(ErrorKind::kInvalidArgument,
                "glance: the request carried no token and [keystone] is not configured");
  }
  return keystone_->ServiceToken().id;
}

std::string GlanceClient::BaseUrl(const std::string& token) {
  if (!options_.api_url.empty()) return V2Url(options_.api_url);
  if (!keystone_)
    throw Error(ErrorKind::kInvalidArgument, "glance: no [glance] api_url and no [keystone]");
  return V2Url(keystone_->Endpoint("image", options_.interface, options_.region_name, token));
}

HttpResponse GlanceClient::Call(HttpRequest req, const std::string& token, const std::string& what,
                                std::initializer_list<long> ok) {
  bool renewed = false;
  std::string base_headers_token = TokenFor(token);
  auto headers = req.headers;
  HttpOptions http = options_.http;
  if (http.timeout_s == 0 && !req.upload) http.timeout_s = 120;
  for (int attempt = 1;; ++attempt) {
    req.headers = headers;
    req.headers.push_back("X-Auth-Token: " + base_headers_token);
    HttpResponse resp;
    try {
      resp = Perform(req, http);
    } catch (const TransportError& e) {
      if (attempt >= options_.retry.max_attempts) {
        throw Unreachable("glance", what,
                          e.message() + " (after " + std::to_string(attempt) + " attempts)");
      }
      Sleep(options_.retry, attempt + 1);
      continue;
    }
    for (long s : ok) {
      if (resp.status == s) return resp;
    }
    if (resp.status == 401 && token.empty() && keystone_ && !renewed) {
      renewed = true;
      keystone_->InvalidateServiceToken();
      base_headers_token = TokenFor(token);
      continue;
    }
    if (IsRetryableStatus(resp.status) && attempt < options_.retry.max_attempts) {
      Sleep(options_.retry, attempt + 1);
      continue;
    }
    throw ErrorForStatus("glance", resp.status, what, resp.body);
  }
}

ImageMeta GlanceClient::GetImage(const std::string& id, const std::string& token) {
  CheckId(id);
  HttpRequest req;
  req.url = BaseUrl(token) + "/images/" + id;
  req.headers = {"Accept: application/json"};
  return ParseImageMeta(Call(req, token, "GET image " + id, {200}).body);
}

std::vector<ImageMeta> GlanceClient::ListImages(const std::string& token,
                                                const std::map<std::string, std::string>& filters) {
  std::string base = BaseUrl(token);
  std::string query;
  for (const auto& [k, v] : filters)
    query += (query.empty() ? "?" : "&") + UrlEncode(k) + "=" + UrlEncode(v);
  // base ends in /v2; Glance's "next" links are absolute paths from /v2 on.
  std::string root = base.substr(0, base.size() - 3);
  std::string url = base + "/images" + query;
  std::vector<ImageMeta> out;
  for (int page = 0; page < 1000 && !url.empty(); ++page) {
    HttpRequest req;
    req.url = url;
    req.headers = {"Accept: application/json"};
    HttpResponse resp = Call(req, token, "list images", {200});
    rapidjson::Document doc;
    doc.Parse(resp.body.c_str());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("images") ||
        !doc["images"].IsArray()) {
      throw Error(ErrorKind::kInvalidArgument, "glance: image list is not {\"images\": [...]}");
    }
    for (const auto& img : doc["images"].GetArray()) {
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w(buf);
      img.Accept(w);
      out.push_back(ParseImageMeta(std::string_view(buf.GetString(), buf.GetSize())));
    }
    url.clear();
    if (doc.HasMember("next") && doc["next"].IsString()) {
      std::string next = doc["next"].GetString();
      url = next.rfind("http", 0) == 0 ? next : root + next;
    }
  }
  return out;
}

uint64_t GlanceClient::Download(const std::string& id, const std::string& token,
                                const std::function<void(const char*, size_t)>& sink) {
  CheckId(id);
  const std::string url = BaseUrl(token) + "/images/" + id + "/file";
  std::string tok = TokenFor(token);
  bool renewed = false;
  uint64_t done = 0;  // bytes the sink has
  for (int attempt = 1;; ++attempt) {
    uint64_t skip = 0;
    bool ranged = done > 0;
    HttpRequest req;
    req.url = url;
    req.headers = {"X-Auth-Token: " + tok};
    if (ranged) req.headers.push_back("Range: bytes=" + std::to_string(done) + "-");
    // 206: the rest from `done`; 200 to a range request: all of it again, so the bytes
    // the sink already has are skipped.
    req.on_status = [&](long status) {
      if (ranged && status != 206) skip = done;
    };
    req.sink = [&](const char* data, size_t size) {
      if (skip) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(skip, size));
        skip -= n;
        data += n;
        size -= n;
        if (!size) return;
      }
      sink(data, size);
      done += size;
    };
    req.headers.push_back("Accept: application/octet-stream");
    HttpResponse resp;
    std::string failure;
    try {
      resp = Perform(req, options_.http);
    } catch (const TransportError& e) {
      failure = e.message();
    }
    if (failure.empty()) {
      if (resp.status == 200 || resp.status == 206) return done;
      if (resp.status == 401 && token.empty() && keystone_ && !renewed) {
        renewed = true;
        keystone_->InvalidateServiceToken();
        tok = TokenFor(token);
        --attempt;
        continue;
      }
      if (resp.status == 204) {
        throw RemoteError(ErrorKind::kConflict, 409, "glance_no_data",
                          "glance: image " + id + " has no data (status queued?)");
      }
      if (!IsRetryableStatus(resp.status)) {
        throw ErrorForStatus("glance", resp.status, "download image " + id, resp.body);
      }
      failure = "HTTP " + std::to_string(resp.status);
    }
    if (attempt >= options_.retry.max_attempts) {
      throw Unreachable("glance", "download image " + id,
                        failure + " (after " + std::to_string(attempt) + " attempts, " +
                            std::to_string(done) + " bytes received)");
    }
    Sleep(options_.retry, attempt + 1);
  }
}

ImageMeta GlanceClient::CreateImage(const NewImage& image, const std::string& token) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto put = [&](const std::string& k, const std::string& v) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  if (!image.id.empty()) {
    CheckId(image.id);
    put("id", image.id);
  }
  if (!image.name.empty()) put("name", image.name);
  put("container_format", image.container_format);
  put("disk_format", image.disk_format);
  for (const auto& [k, v] : image.properties) put(k, v);
  w.EndObject();
  HttpRequest req;
  req.method = "POST";
  req.url = BaseUrl(token) + "/images";
  req.headers = {"Content-Type: application/json", "Accept: application/json"};
  req.body.assign(buf.GetString(), buf.GetSize());
  return ParseImageMeta(Call(req, token, "create image " + image.name, {201, 200}).body);
}

ImageMeta GlanceClient::UpdateImage(const std::string& id,
                                    const std::map<std::string, std::string>& fields,
                                    const ImageMeta& current, const std::string& token) {
  CheckId(id);
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& [k, v] : fields) {
    bool exists = (k == "container_format" && !current.container_format.empty()) ||
                  (k == "disk_format" && !current.disk_format.empty()) ||
                  (k == "name" && !current.name.empty()) || current.properties.count(k);
    w.StartObject();
    w.Key("op");
    w.String(exists ? "replace" : "add");
    w.Key("path");
    std::string path = "/" + k;
    w.String(path.c_str());
    w.Key("value");
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
    w.EndObject();
  }
  w.EndArray();
  HttpRequest req;
  req.method = "PATCH";
  req.url = BaseUrl(token) + "/images/" + id;
  req.headers = {"Content-Type: application/openstack-images-v2.1-json-patch",
                 "Accept: application/json"};
  req.body.assign(buf.GetString(), buf.GetSize());
  return ParseImageMeta(Call(req, token, "update image " + id, {200}).body);
}

void GlanceClient::Upload(const std::string& id, const std::string& token,
                          const std::string& path) {
  CheckId(id);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("fstat", path);
  HttpRequest req;
  req.method = "PUT";
  req.url = BaseUrl(token) + "/images/" + id + "/file";
  req.headers = {"Content-Type: application/octet-stream"};
  req.upload_size = st.st_size;
  req.upload = [&](char* buf, size_t size) -> size_t {
    ssize_t n;
    do {
      n = ::read(fd.get(), buf, size);
    } while (n < 0 && errno == EINTR);
    if (n < 0) ThrowErrno("read", path);
    return static_cast<size_t>(n);
  };
  HttpOptions http = options_.http;
  std::string tok = TokenFor(token);
  bool renewed = false;
  for (int attempt = 1;; ++attempt) {
    if (::lseek(fd.get(), 0, SEEK_SET) != 0) ThrowErrno("lseek", path);
    HttpRequest r = req;
    r.headers.push_back("X-Auth-Token: " + tok);
    HttpResponse resp;
    std::string failure;
    try {
      resp = Perform(r, http);
    } catch (const TransportError& e) {
      failure = e.message();
    }
    if (failure.empty()) {
      if (resp.status == 204 || resp.status == 201 || resp.status == 200) return;
      if (resp.status == 401 && token.empty() && keystone_ && !renewed) {
        renewed = true;
        keystone_->InvalidateServiceToken();
        tok = TokenFor(token);
        --attempt;
        continue;
      }
      if (!IsRetryableStatus(resp.status)) {
        throw ErrorForStatus("glance", resp.status, "upload image " + id, resp.body);
      }
      failure = "HTTP " + std::to_string(resp.status);
    }
    if (attempt >= options_.retry.max_attempts) {
      throw Unreachable("glance", "upload image " + id,
                        failure + " (after " + std::to_string(attempt) + " attempts)");
    }
    Sleep(options_.retry, attempt + 1);
  }
}

}  // namespace berth::glance
