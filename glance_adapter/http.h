// A thin, synchronous libcurl wrapper for the OpenStack clients: one request per call,
// request and response bodies either in memory (small JSON) or streamed through callbacks
// (image data), so an image never has to fit in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runtime/common/error.h"

namespace berth::glance {

struct HttpOptions {
  long connect_timeout_s = 10;
  // A transfer slower than 1 byte/s for this long is dropped (a stalled body); 0: never.
  long low_speed_time_s = 60;
  // The whole exchange, for small JSON calls; 0: no limit (image data).
  long timeout_s = 0;
  std::string ca_file;  // PEM bundle for https; empty: the system's
  bool insecure = false;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // sent when `upload` is not set
  // Streams the request body: fills up to `size` bytes, returns how many; 0 ends it.
  std::function<size_t(char* buf, size_t size)> upload;
  int64_t upload_size = -1;  // with `upload`: Content-Length (-1: chunked)
  // Receives a 2xx response body as it arrives; may throw to abort the transfer (the
  // exception is rethrown from Perform). Error bodies always go to HttpResponse::body.
  std::function<void(const char* data, size_t size)> sink;
  // Called once with the status of a 2xx response, before the first byte goes to the sink.
  std::function<void(long status)> on_status;
  bool json_body_limit = true;  // bodies kept in memory are cut at 4 MiB
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased; the last value wins
  std::string body;
  uint64_t sunk = 0;  // bytes handed to the sink
  std::string Header(const std::string& lower_name) const;
};

// No usable answer: refused, reset, timed out, or the body cut short. Worth a retry.
class TransportError : public Error {
 public:
  TransportError(std::string message, int curl_code)
      : Error(ErrorKind::kSystem, std::move(message)), curl_code_(curl_code) {}
  int curl_code() const { return curl_code_; }

 private:
  int curl_code_;
};

// Performs one exchange. Throws TransportError, or whatever the sink or upload threw.
HttpResponse Perform(const HttpRequest& request, const HttpOptions& options);

}  // namespace berth::glance
