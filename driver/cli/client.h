// The berth CLI's side of the REST API: one request per call over libcurl, errors turned
// into messages from berthd's {"error": {"code", "message"}} bodies.
#pragma once

#include <stdexcept>
#include <string>

namespace berth::cli {

struct ApiError : std::runtime_error {
  ApiError(long status, const std::string& message) : std::runtime_error(message), status(status) {}
  long status;
};

class Client {
 public:
  Client(std::string url, std::string token);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Returns the body of a 2xx answer; throws ApiError otherwise.
  std::string Get(const std::string& path) { return Call("GET", path, "", ""); }
  std::string Delete(const std::string& path) { return Call("DELETE", path, "", ""); }
  std::string PostJson(const std::string& path, const std::string& json) {
    return Call("POST", path, json, "application/json");
  }
  // Streams a local file as the request body (image import) with a progress line on a tty.
  std::string PostFile(const std::string& path, const std::string& file);

 private:
  std::string Call(const std::string& method, const std::string& path, const std::string& body,
                   const std::string& content_type, const std::string& upload_file = "");
  std::string url_;
  std::string token_;
};

// Token from --token, $BERTH_TOKEN, or the file (--token-file, $BERTH_TOKEN_FILE,
// /etc/berth/admin-token).
std::string ReadToken(const std::string& token_file);

}  // namespace berth::cli
