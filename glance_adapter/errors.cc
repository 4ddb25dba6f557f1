#include "glance_adapter/errors.h"

namespace berth::glance {
namespace {

// OpenStack error bodies are JSON or HTML; a short, single-line excerpt is enough to say why.
std::string Excerpt(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 300)) out += (c == '\n' || c == '\r') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

RemoteError ErrorForStatus(const std::string& service, long status, const std::string& what,
                           const std::string& body) {
  std::string msg = service + ": " + what + ": HTTP " + std::to_string(status);
  std::string ex = Excerpt(body);
  if (!ex.empty()) msg += " (" + ex + ")";
  switch (status) {
    case 401:
      return RemoteError(ErrorKind::kInvalidArgument, 401, service + "_unauthorized",
                         msg + ": the token was refused");
    case 403:
      return RemoteError(ErrorKind::kInvalidArgument, 403, service + "_forbidden",
                         msg + ": the token's project may not do this");
    case 404:
      return RemoteError(ErrorKind::kNotFound, 404, service + "_not_found", msg + ": not found");
    default:
      return RemoteError(ErrorKind::kSystem, 502, service + "_error", msg);
  }
}

RemoteError Unreachable(const std::string& service, const std::string& what,
                        const std::string& detail) {
  return RemoteError(ErrorKind::kSystem, 502, service + "_unavailable",
                     service + ": " + what + ": " + detail);
}

}  // namespace berth::glance
