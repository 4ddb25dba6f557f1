#include "driver/cli/client.h"

#include <curl/curl.h>
#include <ini.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include <rapidjson/document.h>

namespace berth::cli {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

// A 2xx body goes to the file; any other (an error) is collected for its message.
struct Sink {
  FILE* file = nullptr;
  CURL* curl = nullptr;
  std::string error_body;
};

size_t WriteSink(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<Sink*>(user);
  long status = 0;
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return std::fwrite(data, size, n, s->file) * size;
  s->error_body.append(data, size * n);
  return size * n;
}

int Progress(void*, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
  curl_off_t total = ultotal > 0 ? ultotal : dltotal;
  curl_off_t now = ultotal > 0 ? ulnow : dlnow;
  if (total > 0) {
    std::fprintf(stderr, "\r%s %3d%% (%lld / %lld bytes)", ultotal > 0 ? "upload" : "download",
                 static_cast<int>(100 * now / total), static_cast<long long>(now),
                 static_cast<long long>(total));
    if (now == total) std::fprintf(stderr, "\n");
  }
  return 0;
}

std::string ErrorMessage(long status, const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsObject() &&
      d["error"].HasMember("message") && d["error"]["message"].IsString()) {
    return d["error"]["message"].GetString();
  }
  return "HTTP " + std::to_string(status) + ": " + body;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read token file " + path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

Client::Client(Endpoint endpoint) : endpoint_(std::move(endpoint)) {
  while (!endpoint_.url.empty() && endpoint_.url.back() == '/') endpoint_.url.pop_back();
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

Client::~Client() { curl_global_cleanup(); }

void Client::Download(const std::string& method, const std::string& path, const std::string& json,
                      const std::string& out_file) {
  Call(method, path, json, json.empty() ? "" : "application/json", "", out_file);
}

std::string Client::Call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& content_type,
                         const std::string& upload_file, const std::string& out_file) {
  std::unique_ptr<CURL, CurlFree> c(curl_easy_init());
  if (!c) throw std::runtime_error("curl_easy_init failed");
  std::string out;
  std::string url = endpoint_.url + path;
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  if (!endpoint_.ca_file.empty())
    curl_easy_setopt(c.get(), CURLOPT_CAINFO, endpoint_.ca_file.c_str());
  if (!endpoint_.cert_file.empty()) {
    curl_easy_setopt(c.get(), CURLOPT_SSLCERT, endpoint_.cert_file.c_str());
    curl_easy_setopt(c.get(), CURLOPT_SSLKEY, endpoint_.key_file.c_str());
  }
  bool show_progress = ::isatty(2);
  std::unique_ptr<FILE, FileClose> upload;
  if (!upload_file.empty()) {
    upload.reset(std::fopen(upload_file.c_str(), "rb"));
    if (!upload) throw std::runtime_error("open " + upload_file + ": " + std::strerror(errno));
    std::fseek(upload.get(), 0, SEEK_END);
    curl_off_t size = std::ftell(upload.get());
    std::rewind(upload.get());
    curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c.get(), CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(c.get(), CURLOPT_READDATA, upload.get());
    curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, size);
  } else if (method == "POST") {
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  // The body: collected, or into a temporary file renamed over out_file once complete.
  Sink sink;
  std::string temp;
  std::unique_ptr<FILE, FileClose> file;
  if (out_file.empty()) {
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &out);
  } else {
    if (out_file == "-") {
      sink.file = stdout;
      show_progress = false;
    } else {
      temp = out_file + ".part";
      file.reset(std::fopen(temp.c_str(), "wbx"));
      if (!file) throw std::runtime_error("create " + temp + ": " + std::strerror(errno));
      sink.file = file.get();
    }
    sink.curl = c.get();
    curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, WriteSink);
    curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  }
  if (show_progress && (!upload_file.empty() || !out_file.empty())) {
    curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, Progress);
    curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
  }
  struct curl_slist* headers = nullptr;
  std::string tok = "X-Auth-Token: " + endpoint_.token;
  headers = curl_slist_append(headers, tok.c_str());
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c.get());
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  bool ok = rc == CURLE_OK && status >= 200 && status < 300;
  if (file) {
    bool written = std::fflush(file.get()) == 0;
    file.reset();
    if (ok && written && std::rename(temp.c_str(), out_file.c_str()) == 0) {
      temp.clear();
    } else {
      std::remove(temp.c_str());
      if (ok) throw std::runtime_error("write " + out_file + ": " + std::strerror(errno));
    }
  }
  if (rc != CURLE_OK) throw ApiError(0, url + ": " + curl_easy_strerror(rc));
  if (!ok) throw ApiError(status, ErrorMessage(status, out_file.empty() ? out : sink.error_body));
  return out;
}

Endpoint ResolveEndpoint(const Endpoint& given, const std::string& token_file,
                         const std::string& config_file) {
  // Only the [api] keys the CLI needs; berthd validates the file itself.
  std::map<std::string, std::string> api;
  if (!config_file.empty()) {
    ini_parse(
        config_file.c_str(),
        [](void* user, const char* section, const char* key, const char* value) {
          if (std::strcmp(section, "api") == 0) {
            (*static_cast<std::map<std::string, std::string>*>(user))[key] = value;
          }
          return 1;
        },
        &api);
  }
  Endpoint e = given;
  if (e.url.empty()) {
    std::string host = api.count("listen") ? api["listen"] : "127.0.0.1";
    if (host == "0.0.0.0" || host == "::") host = "127.0.0.1";  // a wildcard is reached here
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    std::string scheme =
        api.count("tls_cert_file") && !api["tls_cert_file"].empty() ? "https" : "http";
    e.url = scheme + "://" + host + ":" + (api.count("port") ? api["port"] : "8780");
  }
  if (e.token.empty()) {
    std::string file = token_file;
    if (file.empty()) file = api.count("token_file") ? api["token_file"] : "/etc/berth/admin-token";
    e.token = ReadFirstLine(file);
  }
  return e;
}

}  // namespace berth::cli
