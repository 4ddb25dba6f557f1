// berthd's pure pieces: config, flavor -> limits, spec building, names, JSON helpers,
// the error -> status map and the OpenAPI document.
#include <signal.h>

#include <set>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "driver/server/config.h"
#include "driver/server/instance.h"
#include "driver/server/instance_manager.h"
#include "driver/server/json_util.h"
#include "driver/server/metrics.h"
#include "driver/server/names.h"
#include "driver/server/server.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::server {
namespace {

TEST(ConfigTest, DefaultsAndOverrides) {
  Config d = ParseConfig("");
  EXPECT_EQ(d.listen, "127.0.0.1");
  EXPECT_EQ(d.port, 8780);
  EXPECT_EQ(d.state_dir, "/var/lib/berth");
  EXPECT_EQ(d.run_dir, "/run/berth");
  EXPECT_EQ(d.storage_driver, "overlay");
  EXPECT_EQ(d.token_file, "/etc/berth/admin-token");
  EXPECT_EQ(d.cgroup_parent, "berth");
  Config c = ParseConfig(
      "[DEFAULT]\nlog_level = debug\nstate_dir = /srv/b\n"
      "[api]\nport = 0\nlisten = 0.0.0.0\nmax_body_size = 100\n"
      "[storage]\ndriver = vfs\n[instances]\ncgroup_parent = berth-test-x\nconsole_max_bytes = "
      "4096\n"
      "[api]\nbogus = 1\n");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.state_dir, "/srv/b");
  EXPECT_EQ(c.port, 0);
  EXPECT_EQ(c.listen, "0.0.0.0");
  EXPECT_EQ(c.max_body_size, 100u);
  EXPECT_EQ(c.storage_driver, "vfs");
  EXPECT_EQ(c.cgroup_parent, "berth-test-x");
  EXPECT_EQ(c.console_max_bytes, 4096u);
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_NE(c.warnings[0].find("bogus"), std::string::npos);
}

TEST(ConfigTest, BadValuesNameTheOption) {
  for (const char* text : {"[api]\nport = 70000\n", "[api]\nport = http\n",
                           "[DEFAULT]\nlog_level = loud\n", "[instances]\ncgroup_parent = ../x\n",
                           "[api]\nthreads = 0\n", "no section or equals sign\n"}) {
    SCOPED_TRACE(text);
    try {
      ParseConfig(text);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    }
  }
}

TEST(ConfigTest, TokenFileIsCreatedPrivateAndReused) {
  testing::TempDir dir;
  std::string path = dir.Sub("etc/admin-token");
  std::string t1 = LoadOrCreateToken(path);
  EXPECT_EQ(t1.size(), 64u);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(LoadOrCreateToken(path), t1);
  ::chmod(path.c_str(), 0644);
  EXPECT_THROW(LoadOrCreateToken(path), Error);
  EXPECT_TRUE(ConstantTimeEquals(t1, t1));
  EXPECT_FALSE(ConstantTimeEquals(t1, t1.substr(1)));
  EXPECT_FALSE(ConstantTimeEquals(t1, std::string(64, 'a')));
}

TEST(NamesTest, UuidsAndNames) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string u = GenerateUuid();
    EXPECT_TRUE(IsUuid(u)) << u;
    EXPECT_EQ(u[14], '4');
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_FALSE(IsUuid("1234"));
  EXPECT_FALSE(IsUuid("6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5g"));
  EXPECT_FALSE(IsUuid("../../../../etc/passwd-aaaaaaaaaaaaaaaaa"));
  std::string n = GenerateName();
  EXPECT_NE(n.find('_'), std::string::npos);
}

TEST(NamesTest, HostnameFromName) {
  EXPECT_EQ(HostnameFromName("web-1"), "web-1");
  EXPECT_EQ(HostnameFromName("My Web Server #1"), "my-web-server-1");
  EXPECT_EQ(HostnameFromName("brave_turing"), "brave-turing");
  EXPECT_EQ(HostnameFromName("--a..b--"), "a-b");
  EXPECT_EQ(HostnameFromName("\xc3\xa9t\xc3\xa9"), "t");
  EXPECT_EQ(HostnameFromName("!!!"), "instance");
  EXPECT_EQ(HostnameFromName(""), "instance");
  std::string longname = HostnameFromName(std::string(40, 'a') + " " + std::string(40, 'b'));
  EXPECT_EQ(longname.size(), 63u);
  EXPECT_TRUE(IsValidHostname(longname));
  EXPECT_TRUE(IsValidHostname(HostnameFromName(std::string(62, 'a') + "-b")));
  EXPECT_TRUE(IsValidHostname("Web-1"));
  EXPECT_FALSE(IsValidHostname("-web"));
  EXPECT_FALSE(IsValidHostname("web_1"));
  EXPECT_FALSE(IsValidHostname("a.b"));
  EXPECT_FALSE(IsValidHostname(std::string(64, 'a')));
  EXPECT_FALSE(IsValidHostname(""));
}

TEST(FlavorTest, BecomesLimits) {
  Flavor f;
  f.vcpus = 2;
  f.memory_mb = 256;
  spec::Resources r = FlavorToResources(f, true);
  EXPECT_EQ(*r.memory->limit, 256 << 20);
  EXPECT_EQ(*r.memory->swap, 256 << 20);  // no swap
  EXPECT_EQ(*r.cpu->quota, 200000);
  EXPECT_EQ(*r.cpu->period, 100000u);
  EXPECT_EQ(*r.cpu->shares, 2048u);
  EXPECT_FALSE(r.pids);
  EXPECT_FALSE(FlavorToResources(f, false).memory->swap);

  f.extra_specs = {{"quota:cpu_shares", "512"},
                   {"berth:pids_limit", "100"},
                   {"hw:cpuset", "0-1"},
                   {"quota:disk_io_weight", "300"},
                   {"hw:cpu_policy", "dedicated"}};  // the last is another driver's: ignored
  r = FlavorToResources(f, false);
  EXPECT_EQ(*r.cpu->shares, 512u);
  EXPECT_EQ(r.pids->limit, 100);
  EXPECT_EQ(r.cpu->cpus, "0-1");
  EXPECT_EQ(*r.block_io->weight, 300);

  for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{{"quota:cpu_shares", "x"},
                                                                      {"quota:cpu_shares", "1"},
                                                                      {"berth:pids_limit", "-3"},
                                                                      {"hw:cpuset", "0;rm -rf"},
                                                                      {"quota:cpu_quota", "0"}}) {
    Flavor bad;
    bad.extra_specs = {{k, v}};
    SCOPED_TRACE(k + "=" + v);
    try {
      FlavorToResources(bad, false);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_NE(e.message().find(k), std::string::npos) << e.message();
    }
  }
}

TEST(FlavorTest, ParseChecksShape) {
  rapidjson::Document d;
  d.Parse(R"({"vcpus": 2, "memory_mb": 128, "root_gb": 1, "extra_specs": {"a": "b"}})");
  Flavor f = ParseFlavor(d, "flavor");
  EXPECT_EQ(f.vcpus, 2);
  EXPECT_EQ(f.root_gb, 1);
  for (const char* bad : {R"({"vcpus": "2"})", R"({"vcpus": 0})", R"({"memory_mb": 1.5})",
                          R"({"extra_specs": {"a": 1}})", R"({"extra_specs": []})"}) {
    d.Parse(bad);
    EXPECT_THROW(ParseFlavor(d, "flavor"), Error) << bad;
  }
}

TEST(SignalTest, Names) {
  EXPECT_EQ(ParseSignal(""), SIGTERM);
  EXPECT_EQ(ParseSignal("SIGTERM"), SIGTERM);
  EXPECT_EQ(ParseSignal("USR2"), SIGUSR2);
  EXPECT_EQ(ParseSignal("9"), SIGKILL);
  EXPECT_EQ(ParseSignal("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_THROW(ParseSignal("SIGNOPE"), Error);
  EXPECT_THROW(ParseSignal("999"), Error);
}

TEST(UserTest, Resolve) {
  std::string passwd = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:34::/var/www:/bin/false\n";
  std::string group = "root:x:0:\nstaff:x:50:\n";
  EXPECT_EQ(ResolveUser("", passwd, group).uid, 0u);
  auto u = ResolveUser("www", passwd, group);
  EXPECT_EQ(u.uid, 33u);
  EXPECT_EQ(u.gid, 34u);
  u = ResolveUser("www:staff", passwd, group);
  EXPECT_EQ(u.gid, 50u);
  u = ResolveUser("1000:1001", passwd, group);
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1001u);
  EXPECT_THROW(ResolveUser("nobody", passwd, group), Error);
  EXPECT_THROW(ResolveUser("www:nogroup", passwd, group), Error);
}

TEST(SpecTest, BuiltFromImageAndRequest) {
  InstanceRecord r;
  r.uuid = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
  r.name = "Web Server 1";
  r.hostname = "web-1";
  r.flavor.memory_mb = 64;
  r.env = {"A=override", "NEW=1", "M=from-env"};
  r.metadata = {
      {"API_HOST", "10.0.0.5"}, {"M", "from-metadata"}, {"not a name", "x"}, {"9LIVES", "x"}};
  r.user_data = "IyEvYmluL3NoCg==";
  store::ContainerConfig img;
  img.entrypoint = {"/entry"};
  img.cmd = {"default-arg"};
  img.env = {"A=image", "PATH=/opt/bin"};
  img.working_dir = "/srv";
  SpecInputs in;
  in.instance = &r;
  in.image = &img;
  in.rootfs = "/var/lib/berth/instances/x/rootfs";
  spec::Spec s = BuildInstanceSpec(in);
  EXPECT_EQ(s.process.args, (std::vector<std::string>{"/entry", "default-arg"}));
  EXPECT_EQ(s.hostname, "web-1");
  EXPECT_EQ(s.process.cwd, "/srv");
  auto has = [&](const std::string& kv) {
    return std::find(s.process.env.begin(), s.process.env.end(), kv) != s.process.env.end();
  };
  EXPECT_TRUE(has("A=override"));
  EXPECT_TRUE(has("NEW=1"));
  EXPECT_TRUE(has("PATH=/opt/bin"));
  EXPECT_TRUE(has("product_name=OpenStack Nova"));
  EXPECT_TRUE(has("API_HOST=10.0.0.5"));
  EXPECT_TRUE(has("M=from-env"));  // the request's env wins over metadata
  EXPECT_TRUE(has("BERTH_USER_DATA=IyEvYmluL3NoCg=="));
  for (const auto& e : s.process.env) {
    EXPECT_NE(e.rfind("not a name=", 0), 0u) << e;
    EXPECT_NE(e.rfind("9LIVES=", 0), 0u) << e;
  }
  EXPECT_FALSE(s.process.terminal);
  EXPECT_TRUE(s.HasNamespace(spec::NamespaceType::kNetwork));
  EXPECT_TRUE(s.HasNamespace(spec::NamespaceType::kPid));
  EXPECT_FALSE(s.HasNamespace(spec::NamespaceType::kUser));
  EXPECT_TRUE(s.linux.seccomp.has_value());
  EXPECT_EQ(*s.linux.resources->memory->limit, 64 << 20);
  EXPECT_FALSE(s.linux.resources->devices.empty());

  r.command = {"override"};
  EXPECT_EQ(BuildInstanceSpec(in).process.args, (std::vector<std::string>{"/entry", "override"}));
  img.entrypoint.clear();
  img.cmd.clear();
  r.command.clear();
  EXPECT_THROW(BuildInstanceSpec(in), Error);
}

TEST(RecordTest, RoundTrip) {
  InstanceRecord r;
  r.uuid = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
  r.name = "n\"quoted\"";
  r.flavor.vcpus = 3;
  r.flavor.extra_specs = {{"k", "v"}};
  r.metadata = {{"m", "1"}};
  r.desired = DesiredState::kSuspended;
  r.command = {"a", "b"};
  InstanceRecord back = InstanceFromJson(InstanceToJson(r), "instance.json");
  EXPECT_EQ(back.uuid, r.uuid);
  EXPECT_EQ(back.name, r.name);
  EXPECT_EQ(back.hostname, "n-quoted");  // absent from the record: made from the name
  r.hostname = "host-1";
  EXPECT_EQ(InstanceFromJson(InstanceToJson(r), "instance.json").hostname, "host-1");
  EXPECT_EQ(back.flavor.vcpus, 3);
  EXPECT_EQ(back.flavor.extra_specs, r.flavor.extra_specs);
  EXPECT_EQ(back.metadata, r.metadata);
  EXPECT_EQ(back.desired, DesiredState::kSuspended);
  EXPECT_EQ(back.command, r.command);
  // The disk's snapshot key: written only when it is not the default (old records lack it).
  EXPECT_EQ(back.disk, "");
  EXPECT_EQ(InstanceToJson(r).find("\"disk\""), std::string::npos);
  r.disk = "pool-0123456789abcdef";
  EXPECT_EQ(InstanceFromJson(InstanceToJson(r), "instance.json").disk, r.disk);
  EXPECT_THROW(InstanceFromJson("{\"uuid\": 5}", "x"), Error);
  EXPECT_THROW(InstanceFromJson("{", "x"), Error);
}

TEST(JsonTest, CheckedReads) {
  rapidjson::Document d = ParseJsonObject(R"({"s": "x", "i": 3, "a": ["p"], "o": {}, "n": null})");
  EXPECT_EQ(*OptString(d, "s", "s"), "x");
  EXPECT_FALSE(OptString(d, "n", "n"));
  EXPECT_FALSE(OptString(d, "missing", "missing"));
  EXPECT_THROW(OptString(d, "i", "i"), Error);
  EXPECT_THROW(OptInt(d, "s", "s"), Error);
  EXPECT_THROW(OptStringArray(d, "o", "o"), Error);
  EXPECT_THROW(OptObject(d, "a", "a"), Error);
  EXPECT_THROW(ParseJsonObject("[1]"), Error);
  EXPECT_THROW(ParseJsonObject(""), Error);
  std::string deep(100000, '[');
  EXPECT_THROW(ParseJsonObject(deep), Error);  // iterative: no stack overflow
  EXPECT_EQ(SanitizeUtf8("ok \xc3\xa9"), "ok \xc3\xa9");
  EXPECT_EQ(SanitizeUtf8("bad \xff!"), "bad \xef\xbf\xbd!");
  EXPECT_EQ(ErrorJson(404, "not_found", "gone"),
            R"({"error":{"code":404,"kind":"not_found","message":"gone"}})");
  EXPECT_EQ(ErrorJson(409, "invalid_state", "no",
                      [](JsonWriter& w) {
                        w.Key("power_state");
                        w.Int(4);
                      }),
            R"({"error":{"code":409,"kind":"invalid_state","message":"no","power_state":4}})");
}

TEST(HttpStatusTest, OneMapForAllKinds) {
  EXPECT_EQ(HttpStatusFor(ErrorKind::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kAlreadyExists), 409);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kConflict), 409);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kResourceExhausted), 507);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kResourceExhausted, true), 413);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kUnsupported), 501);
  EXPECT_EQ(HttpStatusFor(ErrorKind::kSystem), 500);
  EXPECT_STREQ(ErrorKindSlug(ErrorKind::kNotFound), "not_found");
  EXPECT_STREQ(ErrorKindSlug(ErrorKind::kInvalidArgument), "invalid_argument");
  EXPECT_STREQ(ErrorKindSlug(ErrorKind::kConflict), "conflict");
}

TEST(RouteTest, AllowedMethodsTellsA405FromA404) {
  const auto& routes = ApiServer::Routes();
  using V = std::vector<std::string>;
  EXPECT_EQ(AllowedMethods(routes, "/v1/instances"), (V{"GET", "POST"}));
  EXPECT_EQ(AllowedMethods(routes, "/v1/instances/abc"), (V{"GET", "DELETE"}));
  EXPECT_EQ(AllowedMethods(routes, "/v1/instances/abc/"), (V{"GET", "DELETE"}));
  EXPECT_EQ(AllowedMethods(routes, "/v1/instances/abc/snapshot"), (V{"POST"}));
  EXPECT_EQ(AllowedMethods(routes, "/v1/images/x/export"), (V{"GET"}));
  EXPECT_TRUE(AllowedMethods(routes, "/v1/nothing").empty());
  EXPECT_TRUE(AllowedMethods(routes, "/v1/instances//action").empty());
  EXPECT_TRUE(AllowedMethods(routes, "/v1/instances/a/b/c").empty());
}

TEST(ActionTest, IdempotentStates) {
  EXPECT_EQ(IdempotentStateOf("start"), PowerState::kRunning);
  EXPECT_EQ(IdempotentStateOf("stop"), PowerState::kShutdown);
  EXPECT_EQ(IdempotentStateOf("pause"), PowerState::kPaused);
  EXPECT_EQ(IdempotentStateOf("suspend"), PowerState::kSuspended);
  EXPECT_FALSE(IdempotentStateOf("unpause"));
  EXPECT_FALSE(IdempotentStateOf("reboot"));
}

TEST(SnapshotTest, RequestIsChecked) {
  auto parse = [](const char* json) {
    rapidjson::Document d;
    d.Parse(json);
    return ParseSnapshotRequest(d);
  };
  EXPECT_EQ(parse(R"({"name": "snap"})").name, "snap");
  EXPECT_FALSE(parse(R"({"name": "snap"})").do_export);
  auto r = parse(R"({"image_id": "g-1", "export": true, "export_format": "oci"})");
  EXPECT_EQ(r.name, "g-1");
  EXPECT_TRUE(r.do_export);
  EXPECT_THROW(parse(R"({})"), Error);
  EXPECT_THROW(parse(R"({"name": 5})"), Error);
  EXPECT_THROW(parse(R"({"name": "a", "export": "yes"})"), Error);
  EXPECT_THROW(parse(R"({"name": "a", "export_format": "zip"})"), Error);
}

TEST(OpenApiTest, DocumentHasEveryRoute) {
  rapidjson::Document d;
  std::string text = BuildOpenApi(ApiServer::Routes(), "1.0");
  d.Parse(text.c_str());
  ASSERT_FALSE(d.HasParseError());
  size_t ops = 0;
  for (auto p = d["paths"].MemberBegin(); p != d["paths"].MemberEnd(); ++p)
    ops += p->value.MemberCount();
  EXPECT_EQ(ops, ApiServer::Routes().size());
  EXPECT_TRUE(d["paths"].HasMember("/v1/instances/{uuid}/action"));
  EXPECT_EQ(OpenApiPath("/v1/images/:id"), "/v1/images/{id}");
  // /healthz is the only route without the token.
  for (const auto& r : ApiServer::Routes()) EXPECT_EQ(r.auth, std::string(r.path) != "/healthz");
}

TEST(MetricsTest, Render) {
  Metrics m;
  m.ObserveSpawn(0.004);
  m.ObserveSpawn(0.2);
  m.CountImageImport(true);
  m.CountRequest("/v1/host", 200);
  std::string t = m.Render({{"RUNNING", 2}});
  EXPECT_NE(t.find("berth_instances{state=\"RUNNING\"} 2"), std::string::npos);
  EXPECT_NE(t.find("berth_spawn_seconds_bucket{le=\"0.005\"} 1"), std::string::npos);
  EXPECT_NE(t.find("berth_spawn_seconds_bucket{le=\"0.25\"} 2"), std::string::npos);
  EXPECT_NE(t.find("berth_spawn_seconds_count 2"), std::string::npos);
  EXPECT_NE(t.find("berth_image_imports_total{result=\"ok\"} 1"), std::string::npos);
  EXPECT_NE(t.find("berth_http_requests_total{route=\"/v1/host\",status=\"200\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace berth::server
