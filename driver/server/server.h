// berthd's REST server (Pistache): init -> setupRoutes -> serve. Every route comes from one
// table (Routes()), from which both the router and the OpenAPI document are made, so the
// two cannot disagree.
#pragma once

#include <pistache/endpoint.h>
#include <pistache/http.h>
#include <pistache/router.h>

#include <memory>
#include <string>
#include <vector>

#include "driver/server/config.h"
#include "driver/server/console_follow.h"
#include "driver/server/glance_images.h"
#include "driver/server/instance_manager.h"
#include "driver/server/metrics.h"
#include "driver/server/request_pool.h"
#include "runtime/common/error.h"
#include "runtime/store/image/image_store.h"

namespace berth::server {

using Pistache::Http::ResponseWriter;
using Pistache::Rest::Request;

// The one place an error kind becomes an HTTP status. `for_body`: a limit hit by the
// request body itself (413) rather than by storage (507).
int HttpStatusFor(ErrorKind kind, bool for_body = false);
// The machine-readable "kind" of an error body for an error kind ("not_found", ...). The
// HTTP layer adds its own: "no_route", "method_not_allowed", "unauthorized",
// "body_too_large", "invalid_state" (a 409 for the instance's power state).
const char* ErrorKindSlug(ErrorKind kind);

class ApiServer;

struct RouteDef {
  Pistache::Http::Method method;
  const char* path;  // Pistache syntax: /v1/instances/:uuid
  void (ApiServer::*handler)(const Request&, ResponseWriter&);
  const char* summary;
  bool auth = true;
  bool raw_upload = false;    // body may be an archive up to max_upload_size
  bool long_running = false;  // served on the RequestPool, never on a Pistache thread
};

// Methods the table has for a concrete path ("/v1/instances/abc" -> GET, DELETE); empty
// when no route has the path (404 rather than 405).
std::vector<std::string> AllowedMethods(const std::vector<RouteDef>& routes,
                                        const std::string& path);
// "GET", "POST", ...
const char* MethodName(Pistache::Http::Method m);
// /v1/instances/:uuid -> /v1/instances/{uuid}
std::string OpenApiPath(const std::string& pistache_path);
// The OpenAPI 3 document for a route table.
std::string BuildOpenApi(const std::vector<RouteDef>& routes, const std::string& version);

class ApiServer {
 public:
  // `spawner`, when given, creates the containers (see runtime/linux/spawner.h); it must
  // outlive the server.
  explicit ApiServer(Config config, container::Spawner* spawner = nullptr);
  ~ApiServer();

  static const std::vector<RouteDef>& Routes();

  // Opens the stores, re-attaches instances, loads the token, binds the socket.
  void init();
  void setupTls();
  void setupRoutes();
  // Serves in Pistache's threads and returns.
  void serve();
  void shutdown();
  uint16_t port() const;
  // (method, path) pairs the router was given, for the OpenAPI check.
  const std::vector<std::pair<std::string, std::string>>& registered() const { return registered_; }

  // Handlers.
  void doHealthz(const Request&, ResponseWriter&);
  void doVersions(const Request&, ResponseWriter&);
  void doOpenApi(const Request&, ResponseWriter&);
  void doMetrics(const Request&, ResponseWriter&);
  void doHost(const Request&, ResponseWriter&);
  void doListImages(const Request&, ResponseWriter&);
  void doImportImage(const Request&, ResponseWriter&);
  void doShowImage(const Request&, ResponseWriter&);
  void doDeleteImage(const Request&, ResponseWriter&);
  void doListInstances(const Request&, ResponseWriter&);
  void doCreateInstance(const Request&, ResponseWriter&);
  void doShowInstance(const Request&, ResponseWriter&);
  void doDeleteInstance(const Request&, ResponseWriter&);
  void doInstanceAction(const Request&, ResponseWriter&);
  void doAttachInterface(const Request&, ResponseWriter&);
  void doDetachInterface(const Request&, ResponseWriter&);
  void doConsole(const Request&, ResponseWriter&);
  void doStats(const Request&, ResponseWriter&);
  void doDiff(const Request&, ResponseWriter&);
  void doExec(const Request&, ResponseWriter&);
  void doSnapshot(const Request&, ResponseWriter&);
  void doExportImage(const Request&, ResponseWriter&);

 private:
  void Dispatch(const RouteDef& def, const Request& req, ResponseWriter resp);
  std::string InstanceParam(const Request& req) const;
  // A Keystone token with an allowed role ([keystone] configured); a Keystone that cannot
  // be asked refuses (401) rather than failing the request with 5xx.
  bool AcceptsKeystoneToken(const std::string& token);
  std::string ExportTempPath() const;
  void SendMethodNotAllowed(const Request& req, ResponseWriter& resp);
  void FollowConsole(const Request& req, const std::string& uuid, size_t lines,
                     ResponseWriter& resp);
  void RemoveStaleExports();
  // Sends the archive at `path` as the body (200) and removes the file afterwards.
  void SendArchive(ResponseWriter& resp, const std::string& path, const std::string& image_id);

  Config config_;
  std::string token_;
  Metrics metrics_;
  std::unique_ptr<store::ImageStore> images_;
  container::Spawner* spawner_;
  std::unique_ptr<InstanceManager> instances_;
  std::unique_ptr<ConsoleWaiters> waiters_;
  std::unique_ptr<RequestPool> long_requests_;
  std::unique_ptr<GlanceImages> glance_;  // null without [glance]/[keystone]
  std::shared_ptr<Pistache::Http::Endpoint> endpoint_;
  Pistache::Rest::Router router_;
  std::vector<std::pair<std::string, std::string>> registered_;
};

}  // namespace berth::server
