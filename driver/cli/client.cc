#include "driver/cli/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>

namespace berth::cli {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

int Progress(void*, curl_off_t, curl_off_t, curl_off_t ultotal, curl_off_t ulnow) {
  if (ultotal > 0) {
    std::fprintf(stderr, "\rupload %3d%% (%lld / %lld bytes)",
                 static_cast<int>(100 * ulnow / ultotal), static_cast<long long>(ulnow),
                 static_cast<long long>(ultotal));
    if (ulnow == ultotal) std::fprintf(stderr, "\n");
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

}  // namespace

Client::Client(std::string url, std::string token)
    : url_(std::move(url)), token_(std::move(token)) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

Client::~Client() { curl_global_cleanup(); }

std::string Client::PostFile(const std::string& path, const std::string& file) {
  return Call("POST", path, "", "application/octet-stream", file);
}

std::string Client::Call(const std::string& method, const std::string& path,
                         const std::string& body, const std::string& content_type,
                         const std::string& upload_file) {
  CURL* c = curl_easy_init();
  if (!c) throw std::runtime_error("curl_easy_init failed");
  std::string out;
  std::string url = url_ + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  FILE* f = nullptr;
  if (!upload_file.empty()) {
    f = std::fopen(upload_file.c_str(), "rb");
    if (!f) {
      curl_easy_cleanup(c);
      throw std::runtime_error("open " + upload_file + ": " + std::strerror(errno));
    }
    std::fseek(f, 0, SEEK_END);
    curl_off_t size = std::ftell(f);
    std::rewind(f);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
    curl_easy_setopt(c, CURLOPT_READDATA, f);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, size);
    if (::isatty(2)) {
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, Progress);
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
  } else if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  struct curl_slist* headers = nullptr;
  std::string tok = "X-Auth-Token: " + token_;
  headers = curl_slist_append(headers, tok.c_str());
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  if (f) std::fclose(f);
  if (rc != CURLE_OK) {
    throw ApiError(0, url + ": " + curl_easy_strerror(rc));
  }
  if (status < 200 || status >= 300) throw ApiError(status, ErrorMessage(status, out));
  return out;
}

std::string ReadToken(const std::string& token_file) {
  std::ifstream in(token_file);
  if (!in) throw std::runtime_error("cannot read token file " + token_file);
  std::string token;
  std::getline(in, token);
  return token;
}

}  // namespace berth::cli
