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

// Where berthd is and how to prove who we are.
struct Endpoint {
  std::string url = "http://127.0.0.1:8780";
  std::string token;
  std::string ca_file;    // verify berthd's certificate against this CA (https)
  std::string cert_file;  // client certificate, when berthd asks for one
  std::string key_file;
};

class Client {
 public:
  explicit Client(Endpoint endpoint);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Returns the body of a 2xx answer; throws ApiError otherwise.
  std::string Get(const std::string& path) { return Call("GET", path, "", "", "", ""); }
  std::string Delete(const std::string& path) { return Call("DELETE", path, "", "", "", ""); }
  std::string PostJson(const std::string& path, const std::string& json) {
    return Call("POST", path, json, "application/json", "", "");
  }
  // Streams a local file as the request body (image import) with a progress line on a tty.
  std::string PostFile(const std::string& path, const std::string& file) {
    return Call("POST", path, "", "application/octet-stream", file, "");
  }
  // Writes a 2xx answer's body to `out_file` as it arrives ("-": stdout); a failed
  // download leaves no file behind.
  void Download(const std::string& method, const std::string& path, const std::string& json,
                const std::string& out_file);

 private:
  std::string Call(const std::string& method, const std::string& path, const std::string& body,
                   const std::string& content_type, const std::string& upload_file,
                   const std::string& out_file);
  Endpoint endpoint_;
};

// The endpoint from, in order: flags and environment (already in `given`, empty when
// unset), then berthd's own config file (its [api] listen, port, TLS and token_file), then
// the defaults. `config_file` may be missing.
Endpoint ResolveEndpoint(const Endpoint& given, const std::string& token_file,
                         const std::string& config_file);

}  // namespace berth::cli
