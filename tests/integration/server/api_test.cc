// The REST surface over real HTTP: auth, error statuses, every route, the OpenAPI document.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "driver/server/server.h"
#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

using ApiTest = ServerTest;

void ExpectError(const HttpResult& r, long status, const std::string& kind = "") {
  EXPECT_EQ(r.status, status) << r.body;
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  ASSERT_FALSE(d.HasParseError()) << "error body is not JSON: " << r.body;
  ASSERT_TRUE(d.IsObject() && d.HasMember("error") && d["error"].IsObject()) << r.body;
  EXPECT_EQ(Int(d["error"], "code"), status);
  EXPECT_FALSE(Str(d["error"], "message").empty());
  EXPECT_FALSE(Str(d["error"], "kind").empty()) << r.body;
  if (!kind.empty()) {
    EXPECT_EQ(Str(d["error"], "kind"), kind) << r.body;
  }
}

// One raw HTTP connection: requests written as given, answers read by Content-Length.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    EXPECT_GE(fd_, 0);
    timeval tv{10, 0};  // a missing answer fails the test instead of hanging it
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  }
  ~RawConnection() { ::close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // Sends `request` and returns the head of the answer (status line and headers, lower
  // case) once its whole body has arrived; "" when the connection ended first.
  std::string Exchange(const std::string& request) {
    EXPECT_EQ(::write(fd_, request.data(), request.size()), static_cast<ssize_t>(request.size()));
    size_t head_end;
    while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return "";
    }
    std::string head = pending_.substr(0, head_end);
    std::transform(head.begin(), head.end(), head.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    size_t at = head.find("content-length: ");
    EXPECT_NE(at, std::string::npos) << head;
    size_t length = at == std::string::npos ? 0 : std::stoul(head.substr(at + 16));
    while (pending_.size() < head_end + 4 + length) {
      if (!Fill()) return "";
    }
    pending_.erase(0, head_end + 4 + length);
    return head;
  }

 private:
  bool Fill() {
    char buf[65536];
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n <= 0) return false;
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_;
  std::string pending_;
};

// HTTP/1.1 connections persist unless a side says close; Pistache by itself would answer
// "Connection: Close" and make every well-behaved client reconnect for each request.
TEST_F(ApiTest, ConnectionsPersistUnlessTheClientCloses) {
  const std::string token = "X-Auth-Token: " + daemon().token() + "\r\n";
  RawConnection conn(daemon().port());
  for (const char* path : {"/v1/instances", "/v1/nothing-here", "/healthz", "/v1/instances"}) {
    std::string head =
        conn.Exchange(std::string("GET ") + path + " HTTP/1.1\r\nHost: x\r\n" + token + "\r\n");
    ASSERT_FALSE(head.empty()) << path << ": connection ended";
    EXPECT_NE(head.find("connection: keep-alive"), std::string::npos) << path << "\n" << head;
  }
  std::string closing =
      conn.Exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(closing.find("connection: close"), std::string::npos) << closing;

  RawConnection old(daemon().port());
  std::string http10 = old.Exchange("GET /healthz HTTP/1.0\r\n\r\n");
  EXPECT_NE(http10.find("connection: close"), std::string::npos) << http10;
}

TEST_F(ApiTest, HealthzNeedsNoToken) {
  HttpResult r = daemon().Request("GET", "/healthz", "", false);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
}

TEST_F(ApiTest, MissingOrWrongTokenIs401) {
  ExpectError(daemon().Request("GET", "/v1/host", "", false), 401);
  ExpectError(daemon().Request("GET", "/v1/instances", "", true, "application/json",
                               "not-the-token-at-all"),
              401);
  ExpectError(daemon().Request("POST", "/v1/instances", "{}", false), 401);
  EXPECT_EQ(daemon().Get("/v1/host").status, 200);
  struct stat st;
  ASSERT_EQ(::stat(daemon().token_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ApiTest, UnknownRoutesAndInstancesAre404) {
  ExpectError(daemon().Get("/v1/nothing-here"), 404, "no_route");
  ExpectError(daemon().Post("/v1/instances/00000000-0000-4000-8000-000000000000/nope", "{}"), 404,
              "no_route");
  ExpectError(daemon().Get("/v1/instances/00000000-0000-4000-8000-000000000000"), 404, "not_found");
  ExpectError(daemon().Get("/v1/instances/not-a-uuid"), 404, "not_found");
  // A known path with a wrong method: 405 with Allow.
  HttpResult wrong = daemon().Request("PUT", "/v1/instances");
  ExpectError(wrong, 405, "method_not_allowed");
  EXPECT_NE(wrong.body.find("GET, POST"), std::string::npos) << wrong.body;
  ExpectError(daemon().Get("/v1/instances/00000000-0000-4000-8000-000000000000/action"), 405,
              "method_not_allowed");
  ExpectError(daemon().Request("POST", "/v1/instances/x", "{}", false), 405, "method_not_allowed");
  ExpectError(daemon().Delete("/v1/instances/00000000-0000-4000-8000-000000000000"), 404);
  ExpectError(daemon().Post("/v1/instances/00000000-0000-4000-8000-000000000000/action",
                            R"({"action":"start"})"),
              404);
  ExpectError(daemon().Get("/v1/images/sha256:0000"), 404);
  ExpectError(daemon().Post("/v1/instances", R"({"image": "no-such-image"})"), 404);
}

TEST_F(ApiTest, MalformedJsonAndWrongTypesAre400) {
  const char* bad[] = {
      "{",
      "[]",
      "\"a string\"",
      R"({"image": 5})",
      R"({"flavor": {"vcpus": 1}})",
      R"({"image": "busybox", "flavor": {"vcpus": "two"}})",
      R"({"image": "busybox", "flavor": {"vcpus": 0}})",
      R"({"image": "busybox", "flavor": "m1.tiny"})",
      R"({"image": "busybox", "command": "sh"})",
      R"({"image": "busybox", "command": ["sh", 1]})",
      R"({"image": "busybox", "env": ["NOEQUALS"], "command": ["sh"]})",
      R"({"image": "busybox", "metadata": {"k": 1}})",
      R"({"image": "busybox", "uuid": "1234"})",
      R"({"image": "busybox", "command": ["sh"], "flavor": {"extra_specs": {"quota:cpu_shares": "lots"}}})",
      R"({"image": "busybox"})",  // the image has no Cmd: a command is required
  };
  for (const char* body : bad) {
    SCOPED_TRACE(body);
    ExpectError(daemon().Post("/v1/instances", body), 400);
  }
  // Nothing half-made behind any of them.
  HttpResult list = daemon().Get("/v1/instances");
  EXPECT_EQ(list.Json()["instances"].Size(), 0u);
  std::string dir = daemon().state_dir() + "/instances";
  EXPECT_TRUE(std::filesystem::is_empty(dir));
}

TEST_F(ApiTest, BadActionsAre400) {
  std::string uuid = CreateInstance();
  ASSERT_FALSE(uuid.empty());
  ExpectError(Action(uuid, "{"), 400);
  ExpectError(Action(uuid, R"({"action": 1})"), 400);
  ExpectError(Action(uuid, R"({"action": "explode"})"), 400);
  ExpectError(Action(uuid, R"({"action": "stop", "timeout": "soon"})"), 400);
  ExpectError(Action(uuid, R"({"action": "reboot", "type": "GENTLE"})"), 400);
  ExpectError(Action(uuid, R"({"action": "resize"})"), 400);
  ExpectError(daemon().Get("/v1/instances/" + uuid + "/console?lines=many"), 400);
  ExpectError(daemon().Post("/v1/instances/" + uuid + "/exec", R"({"command": []})"), 400);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
}

TEST_F(ApiTest, OversizedBodyIs413) {
  std::string big =
      "{\"image\": \"busybox\", \"metadata\": {\"k\": \"" + std::string(100000, 'x') + "\"}}";
  ExpectError(daemon().Post("/v1/instances", big), 413);
  EXPECT_EQ(daemon().Get("/v1/instances").Json()["instances"].Size(), 0u);
}

TEST_F(ApiTest, DuplicateUuidIs409) {
  const std::string uuid = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
  ASSERT_EQ(CreateInstance(R"("uuid": ")" + uuid + "\""), uuid);
  HttpResult again = daemon().Post(
      "/v1/instances", R"({"image": "busybox", "command": ["true"], "uuid": ")" + uuid + "\"}");
  ExpectError(again, 409);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
}

TEST_F(ApiTest, VersionsHostAndMetrics) {
  auto v = daemon().Get("/v1").Json();
  ASSERT_TRUE(v.HasMember("versions"));
  EXPECT_EQ(Str(v["versions"][0], "id"), "v1");

  std::string uuid = CreateInstance();
  auto host = daemon().Get("/v1/host").Json();
  EXPECT_GE(Int(host["vcpus"], "total"), 1);
  EXPECT_EQ(Int(host["vcpus"], "used"), 1);
  EXPECT_EQ(Int(host["memory_mb"], "used"), 64);
  EXPECT_GT(Int(host["memory_mb"], "total"), 64);
  EXPECT_EQ(Int(host["memory_mb"], "free"),
            Int(host["memory_mb"], "total") - Int(host["memory_mb"], "used"));
  EXPECT_GT(Int(host["disk_gb"], "total"), 0);
  EXPECT_EQ(Str(host, "storage_driver"), "overlay");
  EXPECT_EQ(Str(host, "cgroup_version"), "v1");
  EXPECT_NE(Str(host, "kernel").find("Linux"), std::string::npos);

  HttpResult m = daemon().Get("/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.body.find("berth_instances{state=\"RUNNING\"} 1"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("berth_spawn_seconds_count"), std::string::npos);
  EXPECT_NE(m.body.find("berth_spawn_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_NE(m.body.find("berth_image_imports_total{result=\"ok\"} 1"), std::string::npos);
  EXPECT_NE(m.body.find("berth_http_requests_total{route=\"/v1/host\",status=\"200\"}"),
            std::string::npos);
}

// Every route the server registers is in the document, and every operation of the document
// is routed (a request to it never meets the "no route" handler).
TEST_F(ApiTest, OpenApiMatchesTheRoutes) {
  HttpResult r = daemon().Get("/v1/openapi.json");
  ASSERT_EQ(r.status, 200);
  auto doc = r.Json();
  EXPECT_EQ(Str(doc, "openapi").substr(0, 2), "3.");
  std::set<std::string> documented;
  for (auto p = doc["paths"].MemberBegin(); p != doc["paths"].MemberEnd(); ++p) {
    for (auto m = p->value.MemberBegin(); m != p->value.MemberEnd(); ++m) {
      std::string method = m->name.GetString();
      for (char& c : method) c = static_cast<char>(std::toupper(c));
      documented.insert(method + " " + p->name.GetString());
    }
  }
  std::set<std::string> routed;
  for (const auto& def : server::ApiServer::Routes()) {
    routed.insert(std::string(server::MethodName(def.method)) + " " +
                  server::OpenApiPath(def.path));
  }
  EXPECT_EQ(documented, routed);
  for (const auto& op : documented) {
    std::string method = op.substr(0, op.find(' '));
    std::string path = op.substr(op.find(' ') + 1);
    for (auto [from, to] :
         {std::pair<std::string, std::string>{"{uuid}", "00000000-0000-4000-8000-000000000000"},
          {"{id}", "sha256:0000"}}) {
      if (auto pos = path.find(from); pos != std::string::npos) path.replace(pos, from.size(), to);
    }
    HttpResult res = daemon().Request(method, path, method == "POST" ? "{}" : "");
    SCOPED_TRACE(op);
    EXPECT_EQ(res.body.find("no route for"), std::string::npos) << res.body;
    EXPECT_NE(res.status, 405);
  }
}

TEST_F(ApiTest, Images) {
  auto list = daemon().Get("/v1/images").Json();
  ASSERT_EQ(list["images"].Size(), 1u);
  EXPECT_EQ(Str(list["images"][0], "id"), image_id_);
  auto show = daemon().Get("/v1/images/busybox").Json();
  EXPECT_EQ(Str(show, "id"), image_id_);
  EXPECT_EQ(show["layers"].Size(), 1u);
  EXPECT_TRUE(show.HasMember("config"));

  // A second image, imported from a local path, with different content.
  std::string other = dir_->Sub("other-rootfs");
  MakeDirs(other + "/bin");
  WriteFileAtomic(other + "/hello.txt", "another image\n");
  ASSERT_EQ(std::system(("tar -C " + other + " -cf " + other + ".tar .").c_str()), 0);
  HttpResult imp = daemon().Post(
      "/v1/images", R"({"path": ")" + other + R"(.tar", "format": "rootfs-tar", "name": "other"})");
  ASSERT_EQ(imp.status, 201) << imp.body;
  std::string other_id = Str(imp.Json(), "id");
  EXPECT_NE(other_id, image_id_);
  EXPECT_EQ(daemon().Get("/v1/images").Json()["images"].Size(), 2u);
  ExpectError(daemon().Post("/v1/images", R"({"path": "relative.tar"})"), 400);
  ExpectError(daemon().Post("/v1/images", R"({"path": "/no/such/file.tar"})"), 404);
  ExpectError(
      daemon().Post("/v1/images", R"({"path": ")" + other + R"(.tar", "format": "floppy"})"), 400);
  ExpectError(daemon().Request("POST", "/v1/images", "this is not a tar archive", true,
                               "application/octet-stream"),
              400);

  // In use: 409 while an instance sits on it.
  std::string uuid = CreateInstance();
  ExpectError(daemon().Delete("/v1/images/" + image_id_), 409);
  EXPECT_EQ(daemon().Delete("/v1/images/" + other_id).status, 204);
  ExpectError(daemon().Get("/v1/images/" + other_id), 404);
  EXPECT_EQ(daemon().Get("/v1/images/" + image_id_).status, 200);
}

}  // namespace
}  // namespace berth::testing
