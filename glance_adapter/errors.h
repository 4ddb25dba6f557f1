// Errors from Keystone and Glance. A RemoteError carries the HTTP status berthd answers
// with (the caller's token refused: 401; no access: 403; no such image: 404; the service
// unreachable or failing after the retries: 502) and a machine-readable kind
// ("glance_unauthorized", ...) that the Nova driver turns into Nova exceptions.
#pragma once

#include <string>

#include "runtime/common/error.h"

namespace berth::glance {

class RemoteError : public Error {
 public:
  RemoteError(ErrorKind kind, int http_status, std::string slug, std::string message)
      : Error(kind, std::move(message)), http_status_(http_status), slug_(std::move(slug)) {}
  int http_status() const { return http_status_; }
  const std::string& slug() const { return slug_; }

 private:
  int http_status_;
  std::string slug_;
};

// The error for an error status from `service` ("glance", "keystone"): 401, 403 and 404
// keep their status; anything else becomes 502 (a bad gateway, from berthd's side).
// `what` says what was asked ("GET image 0e4f..."); `body` is the service's answer,
// shortened into the message.
RemoteError ErrorForStatus(const std::string& service, long status, const std::string& what,
                           const std::string& body);

// A transport failure (refused, reset, timed out) after the retries ran out: 502.
RemoteError Unreachable(const std::string& service, const std::string& what,
                        const std::string& detail);

}  // namespace berth::glance
