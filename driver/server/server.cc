#include "driver/server/server.h"

#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <fstream>

#include <spdlog/spdlog.h>

#include "driver/server/json_util.h"
#include "driver/server/names.h"
#include "glance_adapter/errors.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.0.0"
#endif

namespace berth::server {

using Pistache::Http::Code;
using Pistache::Http::Method;
namespace Http = Pistache::Http;
namespace Rest = Pistache::Rest;

namespace {

// A failure the HTTP layer decides itself (auth, body size, unknown route).
struct HttpFailure {
  int code;
  const char* kind;
  std::string message;
};

void SendJson(ResponseWriter& resp, int code, const std::string& body) {
  resp.send(static_cast<Code>(code), body, MIME(Application, Json));
}

void SendError(ResponseWriter& resp, int code, const char* kind, const std::string& message,
               const std::function<void(JsonWriter&)>& extra = {}) {
  SendJson(resp, code, ErrorJson(code, kind, message, extra));
}

// Pistache 0.0.5 answers "Connection: Close" to a request without a Connection header but
// keeps the socket open. HTTP/1.1 connections are persistent unless a side says close
// (RFC 9112 9.3), yet clients that believe the header (curl, libcurl in the CLI, wrk) then
// reconnect for every request, and on this kind of host the connect/accept/close costs more
// than answering GET /v1/instances. An HTTP/1.0 request keeps Pistache's answer.
void KeepAliveUnlessAsked(const Request& req, ResponseWriter& resp) {
  if (req.version() != Http::Version::Http11 || req.headers().has<Http::Header::Connection>()) {
    return;
  }
  resp.headers().remove<Http::Header::Connection>();
  resp.headers().add<Http::Header::Connection>(Http::ConnectionControl::KeepAlive);
}

std::string Finish(rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

bool IsJsonRequest(const Request& req) {
  auto ct = req.headers().tryGet<Http::Header::ContentType>();
  if (!ct) return false;
  const auto& mime = ct->mime();
  return mime.top() == Http::Mime::Type::Application && mime.sub() == Http::Mime::Subtype::Json;
}

uint64_t ParseQueryNumber(const Request& req, const char* name, uint64_t def, uint64_t max) {
  auto v = req.query().get(name);
  if (!v) return def;
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || v->empty() || n > max) {
    throw Error(ErrorKind::kInvalidArgument,
                std::string(name) + ": want an integer 0.." + std::to_string(max));
  }
  return n;
}

bool ParseQueryBool(const Request& req, const char* name) {
  auto v = req.query().get(name);
  if (!v) return false;
  if (*v == "true" || *v == "1" || v->empty()) return true;
  if (*v == "false" || *v == "0") return false;
  throw Error(ErrorKind::kInvalidArgument, std::string(name) + ": want true or false");
}

void WriteImageJson(JsonWriter& w, const store::ImageRecord& img, bool detail) {
  w.StartObject();
  WriteString(w, "id", img.id.str());
  WriteStringArray(w, "names", img.names);
  w.Key("size");
  w.Uint64(img.size);
  w.Key("imported");
  w.Int64(img.imported);
  WriteString(w, "source_format", img.source_format);
  WriteString(w, "architecture", img.config.architecture);
  WriteString(w, "os", img.config.os);
  w.Key("layer_count");
  w.Uint64(img.layers.size());
  if (detail) {
    w.Key("layers");
    w.StartArray();
    for (const auto& l : img.layers) {
      w.StartObject();
      WriteString(w, "diff_id", l.diff_id.str());
      WriteString(w, "chain_id", l.chain_id.str());
      WriteString(w, "blob", l.blob.str());
      w.Key("size");
      w.Uint64(l.size);
      w.EndObject();
    }
    w.EndArray();
    const auto& c = img.config.config;
    w.Key("config");
    w.StartObject();
    WriteStringArray(w, "entrypoint", c.entrypoint);
    WriteStringArray(w, "cmd", c.cmd);
    WriteStringArray(w, "env", c.env);
    WriteString(w, "working_dir", c.working_dir);
    WriteString(w, "user", c.user);
    WriteString(w, "stop_signal", c.stop_signal);
    WriteStringMap(w, "labels", c.labels);
    w.EndObject();
  }
  w.EndObject();
}

uint64_t MemTotalMb() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemTotal:") return kb / 1024;
  }
  return 0;
}

void WriteResource(JsonWriter& w, const char* key, int64_t total, int64_t used) {
  w.Key(key);
  w.StartObject();
  w.Key("total");
  w.Int64(total);
  w.Key("used");
  w.Int64(used);
  w.Key("free");
  w.Int64(total - used);
  w.EndObject();
}

}  // namespace

const char* ErrorKindSlug(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kAlreadyExists:
      return "already_exists";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kResourceExhausted:
      return "resource_exhausted";
    case ErrorKind::kSystem:
      return "system";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

namespace {
bool PathMatches(const std::string& pattern, const std::string& path) {
  size_t i = 0, j = 0;
  while (i < pattern.size() && j < path.size()) {
    if (pattern[i] == ':') {
      // A parameter: one non-empty segment.
      size_t pe = pattern.find('/', i);
      size_t se = path.find('/', j);
      if (pe == std::string::npos) pe = pattern.size();
      if (se == std::string::npos) se = path.size();
      if (se == j) return false;
      i = pe;
      j = se;
    } else if (pattern[i] == path[j]) {
      ++i;
      ++j;
    } else {
      return false;
    }
  }
  // Pistache accepts one trailing slash.
  return i == pattern.size() && (j == path.size() || (j + 1 == path.size() && path[j] == '/'));
}
}  // namespace

std::vector<std::string> AllowedMethods(const std::vector<RouteDef>& routes,
                                        const std::string& path) {
  std::vector<std::string> out;
  for (const auto& r : routes) {
    if (PathMatches(r.path, path)) {
      std::string m = MethodName(r.method);
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
    }
  }
  return out;
}

int HttpStatusFor(ErrorKind kind, bool for_body) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return 400;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kAlreadyExists:
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kResourceExhausted:
      return for_body ? 413 : 507;
    case ErrorKind::kUnsupported:
      return 501;
    case ErrorKind::kSystem:
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

const char* MethodName(Method m) {
  switch (m) {
    case Method::Get:
      return "GET";
    case Method::Post:
      return "POST";
    case Method::Put:
      return "PUT";
    case Method::Delete:
      return "DELETE";
    case Method::Patch:
      return "PATCH";
    default:
      return "OTHER";
  }
}

std::string OpenApiPath(const std::string& p) {
  std::string out;
  size_t i = 0;
  while (i < p.size()) {
    if (p[i] == ':') {
      size_t end = p.find('/', i);
      if (end == std::string::npos) end = p.size();
      out += "{" + p.substr(i + 1, end - i - 1) + "}";
      i = end;
    } else {
      out += p[i++];
    }
  }
  return out;
}

const std::vector<RouteDef>& ApiServer::Routes() {
  static const std::vector<RouteDef> kRoutes = {
      {Method::Get, "/healthz", &ApiServer::doHealthz, "Liveness probe (no token needed)", false},
      {Method::Get, "/v1", &ApiServer::doVersions, "API versions"},
      {Method::Get, "/v1/openapi.json", &ApiServer::doOpenApi, "This document"},
      {Method::Get, "/metrics", &ApiServer::doMetrics, "Prometheus metrics"},
      {Method::Get, "/v1/host", &ApiServer::doHost, "Host resources, kernel, cgroup version"},
      {Method::Get, "/v1/images", &ApiServer::doListImages, "List images"},
      {Method::Post, "/v1/images", &ApiServer::doImportImage,
       "Import an image: the archive as the body, or JSON {path, format, name}", true, true, true},
      {Method::Get, "/v1/images/:id", &ApiServer::doShowImage, "Show an image"},
      {Method::Delete, "/v1/images/:id", &ApiServer::doDeleteImage,
       "Delete an image (409 while an instance uses it)", true, false, true},
      {Method::Get, "/v1/instances", &ApiServer::doListInstances, "List instances"},
      {Method::Post, "/v1/instances", &ApiServer::doCreateInstance, "Spawn an instance", true,
       false, true},
      {Method::Get, "/v1/instances/:uuid", &ApiServer::doShowInstance, "Show an instance"},
      {Method::Delete, "/v1/instances/:uuid", &ApiServer::doDeleteInstance,
       "Delete an instance and its disk", true, false, true},
      {Method::Post, "/v1/instances/:uuid/action", &ApiServer::doInstanceAction,
       "start, stop, reboot, pause, unpause, suspend, resume, resize, rebuild", true, false, true},
      {Method::Post, "/v1/instances/:uuid/interfaces", &ApiServer::doAttachInterface,
       "Attach a Neutron port (body: a Nova VIF, or {\"vif\": VIF}); 201 with the interface", true,
       false, true},
      {Method::Delete, "/v1/instances/:uuid/interfaces/:port_id", &ApiServer::doDetachInterface,
       "Detach a Neutron port", true, false, true},
      {Method::Get, "/v1/instances/:uuid/console", &ApiServer::doConsole,
       "Last lines of the console log (?lines=N); with ?follow=true also a cursor, and with "
       "&since=CURSOR it waits (&wait=S, 10) for output after the cursor"},
      {Method::Get, "/v1/instances/:uuid/stats", &ApiServer::doStats,
       "cgroup statistics: cpu, memory, pids, io"},
      {Method::Get, "/v1/instances/:uuid/diff", &ApiServer::doDiff,
       "Changes of the instance's disk against its image: A added, C changed, D deleted", true,
       false, true},
      {Method::Post, "/v1/instances/:uuid/exec", &ApiServer::doExec,
       "Run a command inside a running instance", true, false, true},
      {Method::Post, "/v1/instances/:uuid/snapshot", &ApiServer::doSnapshot,
       "Commit the instance's disk into a new image (201 with it; export: true streams the "
       "archive)",
       true, false, true},
      {Method::Get, "/v1/images/:id/export", &ApiServer::doExportImage,
       "The image as a docker-archive or OCI archive (?format=docker-archive|oci)", true, false,
       true},
  };
  return kRoutes;
}

std::string BuildOpenApi(const std::vector<RouteDef>& routes, const std::string& version) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "openapi", "3.0.3");
  w.Key("info");
  w.StartObject();
  WriteString(w, "title", "Berth API");
  WriteString(w, "version", version);
  w.EndObject();
  w.Key("components");
  w.StartObject();
  w.Key("securitySchemes");
  w.StartObject();
  w.Key("token");
  w.StartObject();
  WriteString(w, "type", "apiKey");
  WriteString(w, "in", "header");
  WriteString(w, "name", "X-Auth-Token");
  w.EndObject();
  w.EndObject();
  w.EndObject();
  w.Key("paths");
  w.StartObject();
  // Group by path, keeping the table's order.
  std::vector<std::string> paths;
  for (const auto& r : routes) {
    std::string p = OpenApiPath(r.path);
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  for (const auto& p : paths) {
    w.Key(p.c_str());
    w.StartObject();
    for (const auto& r : routes) {
      if (OpenApiPath(r.path) != p) continue;
      std::string m = MethodName(r.method);
      for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      w.Key(m.c_str());
      w.StartObject();
      WriteString(w, "summary", r.summary);
      std::vector<std::string> params;
      for (size_t i = p.find('{'); i != std::string::npos; i = p.find('{', i + 1)) {
        params.push_back(p.substr(i + 1, p.find('}', i) - i - 1));
      }
      if (!params.empty()) {
        w.Key("parameters");
        w.StartArray();
        for (const auto& name : params) {
          w.StartObject();
          WriteString(w, "name", name);
          WriteString(w, "in", "path");
          w.Key("required");
          w.Bool(true);
          w.Key("schema");
          w.StartObject();
          WriteString(w, "type", "string");
          w.EndObject();
          w.EndObject();
        }
        w.EndArray();
      }
      w.Key("security");
      w.StartArray();
      if (r.auth) {
        w.StartObject();
        w.Key("token");
        w.StartArray();
        w.EndArray();
        w.EndObject();
      }
      w.EndArray();
      w.Key("responses");
      w.StartObject();
      w.Key("default");
      w.StartObject();
      WriteString(w, "description",
                  "JSON; errors are {\"error\": {\"code\", \"kind\", \"message\"}}");
      w.EndObject();
      w.EndObject();
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  return Finish(buf);
}

ApiServer::ApiServer(Config config, container::Spawner* spawner)
    : config_(std::move(config)), spawner_(spawner) {}

ApiServer::~ApiServer() = default;

void ApiServer::init() {
  CheckTlsFiles(config_);
  token_ = LoadOrCreateToken(config_.token_file);
  MakeDirs(config_.state_dir, 0700);
  MakeDirs(config_.run_dir, 0700);
  MakeDirs(JoinPath(config_.state_dir, "tmp"), 0700);
  images_ = std::make_unique<store::ImageStore>(config_.state_dir, config_.storage_driver);
  instances_ = std::make_unique<InstanceManager>(config_, *images_, metrics_);
  instances_->SetSpawner(spawner_);
  if (config_.glance()) {
    glance_ = std::make_unique<GlanceImages>(config_, *images_);
    instances_->SetImageResolver([this](const std::string& ref, const rapidjson::Value& body) {
      return glance_->ResolveForSpawn(ref, body);
    });
    spdlog::info("glance enabled api_url={} keystone={}",
                 config_.glance_api_url.empty() ? "(catalog)" : config_.glance_api_url,
                 config_.keystone() ? config_.keystone_auth_url : "none");
  }
  instances_->Recover();
  RemoveStaleExports();
  instances_->StartRefresher(config_.state_refresh_ms);
  long_requests_ = std::make_unique<RequestPool>(static_cast<size_t>(config_.long_request_threads));
  waiters_ = std::make_unique<ConsoleWaiters>(config_.max_console_followers,
                                              std::chrono::milliseconds(100));
  if (glance_) glance_->Start();

  Pistache::Address addr(config_.listen, Pistache::Port(config_.port));
  endpoint_ = std::make_shared<Http::Endpoint>(addr);
  auto opts = Http::Endpoint::options()
                  .threads(config_.threads)
                  .flags(Pistache::Tcp::Options::ReuseAddr)
                  .maxRequestSize(config_.max_upload_size + (64 << 10))
                  .maxResponseSize(64 << 20);
  endpoint_->init(opts);
  if (config_.tls()) setupTls();
  setupRoutes();
  endpoint_->setHandler(router_.handler());
}

void ApiServer::setupTls() {
  // Pistache throws std::runtime_error with only OpenSSL's words (and prints its error queue
  // to stderr); say which option was wrong.
  try {
    endpoint_->useSSL(config_.tls_cert_file, config_.tls_key_file, /*use_compression=*/false);
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "[api] tls_cert_file " + config_.tls_cert_file +
                                                 " / tls_key_file " + config_.tls_key_file +
                                                 ": not a usable certificate and key: " + e.what());
  }
  if (!config_.tls_client_ca_file.empty()) {
    try {
      // No callback: OpenSSL's own chain verification decides; a client without a
      // certificate fails the handshake (SSL_VERIFY_FAIL_IF_NO_PEER_CERT).
      endpoint_->useSSLAuth(config_.tls_client_ca_file);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kInvalidArgument, "[api] tls_client_ca_file " +
                                                   config_.tls_client_ca_file +
                                                   ": not a usable CA bundle: " + e.what());
    }
  }
  spdlog::info("tls enabled cert={} client_ca={}", config_.tls_cert_file,
               config_.tls_client_ca_file.empty() ? "none" : config_.tls_client_ca_file);
}

void ApiServer::setupRoutes() {
  // Pistache's router answers a known path with another method itself (a plain-text 405);
  // so that every error is JSON, each path gets a handler for the methods it lacks.
  std::vector<std::string> paths;
  for (const RouteDef& def : Routes()) {
    if (std::find(paths.begin(), paths.end(), def.path) == paths.end()) paths.push_back(def.path);
  }
  for (const auto& path : paths) {
    for (Method m : {Method::Get, Method::Post, Method::Put, Method::Delete, Method::Patch,
                     Method::Head, Method::Options}) {
      bool known = false;
      for (const RouteDef& def : Routes()) known |= def.path == path && def.method == m;
      if (known) continue;
      router_.addRoute(m, path, [this](const Request& req, ResponseWriter resp) {
        KeepAliveUnlessAsked(req, resp);
        SendMethodNotAllowed(req, resp);
        return Rest::Route::Result::Ok;
      });
    }
  }
  for (const RouteDef& def : Routes()) {
    const RouteDef* d = &def;
    router_.addRoute(def.method, def.path, [this, d](const Request& req, ResponseWriter resp) {
      if (d->long_running && long_requests_) {
        // The request is copied: Pistache reuses its own for the connection's next one.
        auto writer = std::make_shared<ResponseWriter>(std::move(resp));
        auto task = [this, d, copy = req, writer] { Dispatch(*d, copy, std::move(*writer)); };
        if (!long_requests_->Post(std::move(task))) {
          KeepAliveUnlessAsked(req, *writer);
          SendError(*writer, 503, "unavailable", "berthd is shutting down");
        }
        return Rest::Route::Result::Ok;
      }
      Dispatch(*d, req, std::move(resp));
      return Rest::Route::Result::Ok;
    });
    registered_.emplace_back(MethodName(def.method), def.path);
  }
  router_.addNotFoundHandler([this](const Request& req, ResponseWriter resp) {
    // A known path with another method is 405 with Allow; anything else 404 "no_route",
    // which a client can tell from an instance that does not exist ("not_found").
    KeepAliveUnlessAsked(req, resp);
    if (!AllowedMethods(Routes(), req.resource()).empty()) {
      SendMethodNotAllowed(req, resp);
    } else {
      SendError(resp, 404, "no_route",
                "no route for " + std::string(MethodName(req.method())) + " " + req.resource());
      metrics_.CountRequest("unknown", 404);
    }
    return Rest::Route::Result::Ok;
  });
}

void ApiServer::SendMethodNotAllowed(const Request& req, ResponseWriter& resp) {
  std::string allow;
  for (const auto& m : AllowedMethods(Routes(), req.resource())) {
    allow += (allow.empty() ? "" : ", ") + m;
  }
  resp.headers().addRaw(Http::Header::Raw("Allow", allow));
  SendError(resp, 405, "method_not_allowed",
            "method not allowed: " + std::string(MethodName(req.method())) + " " + req.resource() +
                " (allowed: " + allow + ")");
  metrics_.CountRequest("unknown", 405);
}

void ApiServer::serve() {
  endpoint_->serveThreaded();
  spdlog::info("berthd {} listening on {}:{}", BERTH_VERSION, config_.listen, port());
}

void ApiServer::shutdown() {
  // The streams and the long requests write through the endpoint's transport: end them
  // while it exists. A long request still running after the wait ends with the process.
  if (long_requests_ && !long_requests_->Stop(std::chrono::seconds(30))) {
    spdlog::warn("shutdown: {} long requests still running", long_requests_->busy());
  }
  if (waiters_) waiters_->Stop();
  if (endpoint_) endpoint_->shutdown();
  if (instances_) instances_->StopRefresher();
  if (instances_) instances_->StopRootfsPool();
  if (glance_) glance_->Stop();
}

std::string ApiServer::ExportTempPath() const {
  return JoinPath(JoinPath(config_.state_dir, "tmp"), "export-" + RandomHex(8) + ".tar");
}

void ApiServer::RemoveStaleExports() {
  // Left by a berthd that died while sending one (or a client that went away mid-way).
  const std::string dir = JoinPath(config_.state_dir, "tmp");
  for (const auto& n : ListDirectory(dir)) {
    if (n.rfind("export-", 0) == 0) ::unlink(JoinPath(dir, n).c_str());
  }
}

void ApiServer::SendArchive(ResponseWriter& resp, const std::string& path,
                            const std::string& image_id) {
  // Pistache 0.0.5 has no back-pressure for a response written from a handler (every chunk
  // would be queued in memory), so the archive goes to a temp file that Pistache sends with
  // sendfile(2); the file is removed once sent or failed.
  resp.headers().addRaw(Http::Header::Raw("X-Berth-Image-Id", image_id));
  resp.headers().addRaw(Http::Header::Raw(
      "Content-Disposition",
      "attachment; filename=\"" + image_id.substr(image_id.find(':') + 1, 12) + ".tar\""));
  auto remove = [path](auto&&...) { ::unlink(path.c_str()); };
  try {
    // (Pistache 0.0.5's serveFile drops an application/x-tar media type.)
    Http::serveFile(resp, path, MIME(Application, OctetStream))
        .then([remove](ssize_t) { remove(); }, [remove](std::exception_ptr) { remove(); });
  } catch (...) {
    remove();
    throw;
  }
}

uint16_t ApiServer::port() const {
  return endpoint_ ? static_cast<uint16_t>(endpoint_->getPort()) : 0;
}

void ApiServer::Dispatch(const RouteDef& def, const Request& req, ResponseWriter resp) {
  auto started = std::chrono::steady_clock::now();
  int code = 500;
  KeepAliveUnlessAsked(req, resp);
  try {
    if (def.auth) {
      auto hdr = req.headers().tryGetRaw("X-Auth-Token");
      if (!hdr) throw HttpFailure{401, "unauthorized", "missing X-Auth-Token"};
      if (!ConstantTimeEquals(hdr->value(), token_) && !AcceptsKeystoneToken(hdr->value())) {
        throw HttpFailure{401, "unauthorized", "invalid token"};
      }
    }
    uint64_t limit =
        def.raw_upload && !IsJsonRequest(req) ? config_.max_upload_size : config_.max_body_size;
    if (req.body().size() > limit) {
      throw HttpFailure{413, "body_too_large",
                        "request body of " + std::to_string(req.body().size()) +
                            " bytes exceeds the limit of " + std::to_string(limit)};
    }
    (this->*def.handler)(req, resp);
    code = static_cast<int>(resp.getResponseCode());
  } catch (const HttpFailure& f) {
    code = f.code;
    SendError(resp, code, f.kind, f.message);
  } catch (const InvalidStateError& e) {
    code = 409;
    SendError(resp, code, "invalid_state", e.message(), [&](JsonWriter& w) {
      w.Key("power_state");
      w.Int(static_cast<int>(e.power_state()));
      WriteString(w, "power_state_name", PowerStateName(e.power_state()));
    });
  } catch (const glance::RemoteError& e) {
    // Keystone's or Glance's answer, passed on (401/403/404), or 502 when they failed.
    code = e.http_status();
    if (code >= 500)
      spdlog::error("{} {}: {}", MethodName(req.method()), req.resource(), e.message());
    SendError(resp, code, e.slug().c_str(), e.message());
  } catch (const Error& e) {
    code = HttpStatusFor(e.kind());
    if (code >= 500)
      spdlog::error("{} {}: {}", MethodName(req.method()), req.resource(), e.message());
    SendError(resp, code, ErrorKindSlug(e.kind()), e.message());
  } catch (const std::exception& e) {
    code = 500;
    spdlog::error("{} {}: internal error: {}", MethodName(req.method()), req.resource(), e.what());
    SendError(resp, code, "internal", std::string("internal error: ") + e.what());
  }
  metrics_.CountRequest(def.path, code);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  spdlog::debug("request method={} path={} route={} status={} ms={:.2f}", MethodName(req.method()),
                req.resource(), def.path, code, ms);
}

bool ApiServer::AcceptsKeystoneToken(const std::string& token) {
  if (!glance_) return false;
  try {
    return glance_->AcceptsKeystoneToken(token);
  } catch (const Error& e) {
    throw HttpFailure{401, "unauthorized", "token not validated: " + e.message()};
  }
}

std::string ApiServer::InstanceParam(const Request& req) const {
  std::string uuid = req.param(":uuid").as<std::string>();
  if (!IsUuid(uuid)) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  for (char& c : uuid) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return uuid;
}

void ApiServer::doHealthz(const Request&, ResponseWriter& resp) {
  resp.send(Code::Ok, "ok\n", MIME(Text, Plain));
}

void ApiServer::doVersions(const Request&, ResponseWriter& resp) {
  SendJson(resp, 200,
           std::string("{\"versions\":[{\"id\":\"v1\",\"status\":\"CURRENT\",\"version\":\"") +
               BERTH_VERSION + "\",\"links\":[{\"rel\":\"self\",\"href\":\"/v1\"}]}]}");
}

void ApiServer::doOpenApi(const Request&, ResponseWriter& resp) {
  SendJson(resp, 200, BuildOpenApi(Routes(), BERTH_VERSION));
}

void ApiServer::doMetrics(const Request&, ResponseWriter& resp) {
  resp.send(Code::Ok, metrics_.Render(instances_->CountByState()),
            Http::Mime::MediaType("text/plain; version=0.0.4"));
}

void ApiServer::doHost(const Request&, ResponseWriter& resp) {
  Flavor used = instances_->UsedResources();
  struct statvfs vfs {};
  if (::statvfs(config_.state_dir.c_str(), &vfs) != 0) ThrowErrno("statvfs", config_.state_dir);
  struct utsname uts {};
  ::uname(&uts);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "hostname", uts.nodename);
  WriteResource(w, "vcpus", ::sysconf(_SC_NPROCESSORS_ONLN), used.vcpus);
  WriteResource(w, "memory_mb", static_cast<int64_t>(MemTotalMb()), used.memory_mb);
  int64_t disk_total = static_cast<int64_t>((uint64_t{vfs.f_blocks} * vfs.f_frsize) >> 30);
  WriteResource(w, "disk_gb", disk_total, used.root_gb);
  w.Key("disk_available_gb");
  w.Int64(static_cast<int64_t>((uint64_t{vfs.f_bavail} * vfs.f_frsize) >> 30));
  WriteString(w, "kernel", std::string(uts.sysname) + " " + uts.release);
  WriteString(w, "architecture", uts.machine);
  WriteString(w, "cgroup_version",
              instances_->cgroup_host().version == cgroup::CgroupVersion::kV2 ? "v2" : "v1");
  WriteString(w, "storage_driver", images_->layers().name());
  WriteString(w, "version", BERTH_VERSION);
  w.Key("instances");
  w.Uint64(instances_->List().size());
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doListImages(const Request&, ResponseWriter& resp) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("images");
  w.StartArray();
  for (const auto& img : images_->List()) WriteImageJson(w, img, false);
  w.EndArray();
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doShowImage(const Request& req, ResponseWriter& resp) {
  auto img = images_->Get(req.param(":id").as<std::string>());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteImageJson(w, img, true);
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doDeleteImage(const Request& req, ResponseWriter& resp) {
  std::lock_guard lock(instances_->image_mutex());
  auto img = images_->Get(req.param(":id").as<std::string>());
  if (instances_->ImageInUse(img.id.str())) {
    throw Error(ErrorKind::kConflict, "image " + img.id.str() + " is used by an instance");
  }
  instances_->DropPooledRoot(img);  // made ahead, not a user: it would hold the image
  images_->Remove(img.id.str());
  spdlog::info("image {} deleted", img.id.str());
  resp.send(Code::No_Content);
}

void ApiServer::doImportImage(const Request& req, ResponseWriter& resp) {
  store::ImportOptions opts;
  std::string path;
  std::string temp;
  ScopeGuard remove_temp([&] {
    if (!temp.empty()) ::unlink(temp.c_str());
  });
  if (IsJsonRequest(req)) {
    auto doc = ParseJsonObject(req.body());
    auto p = OptString(doc, "path", "path");
    if (!p || p->empty() || (*p)[0] != '/') {
      throw Error(ErrorKind::kInvalidArgument, "path: want an absolute path on this host");
    }
    path = *p;
    opts.format = store::ParseImportFormat(OptString(doc, "format", "format").value_or("auto"));
    opts.name = OptString(doc, "name", "name").value_or("");
  } else {
    if (req.body().empty()) {
      throw Error(ErrorKind::kInvalidArgument,
                  "body: want the archive bytes, or JSON {\"path\": ...} with Content-Type "
                  "application/json");
    }
    opts.format = store::ParseImportFormat(req.query().get("format").value_or("auto"));
    opts.name = req.query().get("name").value_or("");
    temp = JoinPath(JoinPath(config_.state_dir, "tmp"), "upload-" + RandomHex(8));
    WriteFileAtomic(temp, req.body(), 0600);
    path = temp;
  }
  auto started = std::chrono::steady_clock::now();
  store::ImportResult result;
  try {
    result = images_->Import(path, opts);
  } catch (...) {
    metrics_.CountImageImport(false);
    throw;
  }
  metrics_.CountImageImport(true);
  spdlog::info("image {} imported ({} layers unpacked, {} bytes read) in {:.0f} ms",
               result.image.id.str(), result.layers_unpacked, result.bytes_read,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count());
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteImageJson(w, result.image, true);
  SendJson(resp, 201, Finish(buf));
}

void ApiServer::doListInstances(const Request&, ResponseWriter& resp) {
  SendJson(resp, 200, *instances_->ListJson());
}

void ApiServer::doCreateInstance(const Request& req, ResponseWriter& resp) {
  auto doc = ParseJsonObject(req.body());
  InstanceView v = instances_->Create(doc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteInstanceJson(w, v);
  resp.headers().add<Http::Header::Location>("/v1/instances/" + v.record.uuid);
  SendJson(resp, 201, Finish(buf));
}

void ApiServer::doShowInstance(const Request& req, ResponseWriter& resp) {
  InstanceView v = instances_->Get(InstanceParam(req));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteInstanceJson(w, v);
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doDeleteInstance(const Request& req, ResponseWriter& resp) {
  instances_->Delete(InstanceParam(req));
  resp.send(Code::No_Content);
}

void ApiServer::doInstanceAction(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  auto doc = ParseJsonObject(req.body());
  InstanceView v = instances_->Action(uuid, doc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteInstanceJson(w, v);
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doAttachInterface(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  auto doc = ParseJsonObject(req.body());
  InterfaceView i = instances_->AttachInterface(uuid, doc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteInterfaceJson(w, i);
  SendJson(resp, 201, Finish(buf));
}

void ApiServer::doDetachInterface(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  instances_->DetachInterface(uuid, req.param(":port_id").as<std::string>());
  resp.send(Code::No_Content);
}

void ApiServer::doConsole(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  size_t lines = ParseQueryNumber(req, "lines", 100, 100000);
  if (ParseQueryBool(req, "follow")) return FollowConsole(req, uuid, lines, resp);
  std::string text = SanitizeUtf8(instances_->Console(uuid, lines));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "output", text);
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

namespace {

void SendConsoleRead(ResponseWriter& resp, const ConsoleRead& r, bool running) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "output", SanitizeUtf8(r.text));
  WriteString(w, "cursor", r.next.str());
  w.Key("running");
  w.Bool(running);
  w.Key("lost");
  w.Bool(r.lost);
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

}  // namespace

void ApiServer::FollowConsole(const Request& req, const std::string& uuid, size_t lines,
                              ResponseWriter& resp) {
  std::optional<ConsoleCursor> since;
  if (auto text = req.query().get("since")) since = ConsoleCursor::Parse(*text);
  uint64_t wait_s = ParseQueryNumber(req, "wait", 10, 60);
  auto running = [this, uuid] {
    try {
      PowerState s = instances_->Get(uuid).power_state;
      return s == PowerState::kRunning || s == PowerState::kPaused || s == PowerState::kSuspended;
    } catch (const std::exception&) {
      return false;  // deleted meanwhile
    }
  };
  auto dir = instances_->LiveConsoleDir(uuid);
  if (!dir) {
    // No container: the log of the last run once, then nothing more to follow.
    ConsoleRead saved;
    if (!since) saved.text = instances_->Console(uuid, lines);
    return SendConsoleRead(resp, saved, false);
  }
  // 1 MiB an answer: a client far behind catches up over a few polls.
  auto read = [d = *dir, since, lines] { return ReadConsole(d, since, lines, 1 << 20); };
  ConsoleRead now = read();
  bool is_running = running();
  if (!since || !now.text.empty() || now.lost || !is_running || wait_s == 0) {
    return SendConsoleRead(resp, now, is_running);
  }
  if (waiters_->size() >= config_.max_console_followers) {
    throw HttpFailure{503, "too_many_followers",
                      "already waiting on " + std::to_string(config_.max_console_followers) +
                          " consoles (max_console_followers)"};
  }
  ConsoleWaiters::Waiter w{std::move(resp),
                           read,
                           running,
                           SendConsoleRead,
                           std::chrono::steady_clock::now() + std::chrono::seconds(wait_s),
                           *since};
  if (!waiters_->Park(w)) SendConsoleRead(w.response, now, is_running);  // lost a race for room
}

void ApiServer::doDiff(const Request& req, ResponseWriter& resp) {
  auto changes = instances_->Diff(InstanceParam(req));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("changes");
  w.StartArray();
  for (const auto& c : changes) {
    w.StartObject();
    WriteString(w, "kind", std::string(1, store::ChangeLetter(c.kind)));
    WriteString(w, "path", SanitizeUtf8(c.path));
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doStats(const Request& req, ResponseWriter& resp) {
  cgroup::CgroupStats s = instances_->Stats(InstanceParam(req));
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("cpu");
  w.StartObject();
  WriteUint64(w, "usage_ns", s.cpu_usage_ns);
  WriteUint64(w, "user_ns", s.cpu_user_ns);
  WriteUint64(w, "system_ns", s.cpu_system_ns);
  WriteUint64(w, "throttled_periods", s.cpu_throttled_periods);
  w.EndObject();
  w.Key("memory");
  w.StartObject();
  WriteUint64(w, "usage_bytes", s.memory_usage_bytes);
  WriteUint64(w, "max_usage_bytes", s.memory_max_usage_bytes);
  WriteUint64(w, "limit_bytes", s.memory_limit_bytes);
  WriteUint64(w, "cache_bytes", s.memory_cache_bytes);
  WriteUint64(w, "oom_kills", s.oom_kills);
  w.EndObject();
  w.Key("pids");
  w.StartObject();
  WriteUint64(w, "current", s.pids_current);
  WriteUint64(w, "limit", s.pids_limit);
  w.EndObject();
  w.Key("io");
  w.StartObject();
  WriteUint64(w, "read_bytes", s.io_read_bytes);
  WriteUint64(w, "write_bytes", s.io_write_bytes);
  w.EndObject();
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

void ApiServer::doSnapshot(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  auto doc = ParseJsonObject(req.body());
  SnapshotRequest sr = ParseSnapshotRequest(doc);
  // A snapshot for Glance: its queued image is made (or checked) before anything is
  // committed, so a refusal leaves no image here.
  std::optional<glance::SnapshotUpload> upload;
  if (glance_ && !sr.image_id.empty() && !sr.do_export) {
    instances_->Get(uuid);  // 404 before anything is made in Glance
    upload = glance_->PrepareSnapshot(sr.image_id, sr.name, doc);
  }
  store::ImageRecord img = instances_->Snapshot(uuid, sr);
  if (upload) {
    // On failure the committed image stays: the instance's disk now sits on its layer.
    glance_->UploadSnapshot(*upload, img.id.str(), JoinPath(config_.state_dir, "tmp"));
  }
  resp.headers().add<Http::Header::Location>("/v1/images/" + img.id.str());
  if (sr.do_export) {
    std::string path = ExportTempPath();
    try {
      images_->ExportToFile(img.id.str(), store::ParseExportFormat(sr.export_format), path);
    } catch (...) {
      ::unlink(path.c_str());
      throw;
    }
    SendArchive(resp, path, img.id.str());
    return;
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteImageJson(w, img, true);
  SendJson(resp, 201, Finish(buf));
}

void ApiServer::doExportImage(const Request& req, ResponseWriter& resp) {
  auto format = store::ParseExportFormat(req.query().get("format").value_or("docker-archive"));
  auto img = images_->Get(req.param(":id").as<std::string>());
  std::string path = ExportTempPath();
  try {
    images_->ExportToFile(img.id.str(), format, path);
  } catch (...) {
    ::unlink(path.c_str());
    throw;
  }
  SendArchive(resp, path, img.id.str());
}

void ApiServer::doExec(const Request& req, ResponseWriter& resp) {
  std::string uuid = InstanceParam(req);
  auto doc = ParseJsonObject(req.body());
  ExecResult r = instances_->Exec(uuid, doc);
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("exit_code");
  w.Int(r.exit_code);
  WriteString(w, "stdout", SanitizeUtf8(r.stdout_text));
  WriteString(w, "stderr", SanitizeUtf8(r.stderr_text));
  w.Key("truncated");
  w.Bool(r.truncated);
  w.EndObject();
  SendJson(resp, 200, Finish(buf));
}

}  // namespace berth::server
