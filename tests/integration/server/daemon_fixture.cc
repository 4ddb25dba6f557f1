#include "tests/integration/server/daemon_fixture.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/common/file_util.h"
#include "runtime/store/layer/mount.h"
#include "tests/support/berth_user.h"
#include "tests/support/busybox_rootfs.h"

namespace berth::testing {

TempDir* ServerTest::dir_ = nullptr;
Daemon* ServerTest::daemon_ = nullptr;
std::string ServerTest::image_id_;
std::string ServerTest::rootfs_tar_;
std::string ServerTest::extra_conf_;

namespace {

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

void RemoveCgroupParent(const std::string& name) {
  std::error_code ec;
  for (const auto& c : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    std::string d = c.path().string() + "/" + name;
    if (PathExists(d)) ::rmdir(d.c_str());
  }
}

}  // namespace

rapidjson::Document HttpResult::Json() const {
  rapidjson::Document d;
  d.Parse(body.c_str());
  EXPECT_FALSE(d.HasParseError()) << "not JSON (status " << status << "): " << body;
  return d;
}

std::string Str(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString()) {
    ADD_FAILURE() << "no string field " << key;
    return "";
  }
  return v[key].GetString();
}

int64_t Int(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsInt64()) {
    ADD_FAILURE() << "no integer field " << key;
    return -1;
  }
  return v[key].GetInt64();
}

Daemon::Daemon(const std::string& dir, const std::string& extra_api, const std::string& extra_conf)
    : dir_(dir) {
  std::string conf =
      "[DEFAULT]\n"
      "state_dir = " +
      state_dir() +
      "\n"
      "run_dir = " +
      run_dir() +
      "\n"
      "log_level = debug\n"
      "[api]\n"
      "listen = 127.0.0.1\n"
      "port = 0\n"
      "token_file = " +
      token_path() +
      "\n"
      "max_body_size = 65536\n"
      "threads = 4\n" +
      extra_api +
      "[instances]\n"
      "cgroup_parent = " +
      cgroup_parent() +
      "\n"
      "default_stop_timeout = 5\n" +
      extra_conf;
  WriteFileAtomic(config_path(), conf);
}

Daemon::~Daemon() {
  Finish();
  RemoveCgroupParent(cgroup_parent());
}

std::string Daemon::cgroup_parent() const { return "berth-test-" + std::to_string(::getpid()); }

std::string Daemon::log() const { return ReadFileIfExists(dir_ + "/berthd.err").value_or(""); }

void Daemon::Start() {
  EnsureBerthUser();
  // An instance's root in its user namespace must traverse the path to its rootfs, which
  // runs through this directory (berthd's own dirs under it are 0711).
  ::chmod(dir_.c_str(), 0711);
  ++starts_;
  std::string out = dir_ + "/berthd.out";
  ::unlink(out.c_str());
  std::string bin = BuildDir() + "/driver/server/berthd";
  std::string conf = config_path();
  std::string err = dir_ + "/berthd.err";
  pid_ = ::fork();
  if (pid_ == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    if (!pause_at_.empty()) ::setenv("BERTH_TEST_PAUSE_AT", pause_at_.c_str(), 1);
    ::execl(bin.c_str(), bin.c_str(), "--config", conf.c_str(), nullptr);
    ::_exit(127);
  }
  ASSERT_GT(pid_, 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFileIfExists(out).value_or("");
    size_t pos = text.find("listening on 127.0.0.1:");
    if (pos != std::string::npos && text.find('\n', pos) != std::string::npos) {
      port_ = static_cast<uint16_t>(std::atoi(text.c_str() + pos + 23));
      token_ = ReadFile(token_path());
      while (!token_.empty() && token_.back() == '\n') token_.pop_back();
      return;
    }
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "berthd exited at start: " << log();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "berthd did not start listening: " << log();
}

bool Daemon::WaitPaused(const std::string& point, int timeout_s) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFileIfExists(dir_ + "/berthd.out").value_or("");
    if (text.find("paused at " + point + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

int Daemon::SendAndForget(const std::string& method, const std::string& path,
                          const std::string& body) const {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port_);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: " + token_ +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  EXPECT_EQ(::write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  return fd;
}

void Daemon::Kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void Daemon::Finish(int timeout_s) {
  if (pid_ <= 0) return;
  if (pause_at_.empty()) {
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::fprintf(stderr, "berthd %d did not stop on SIGTERM within %d s: killed\n", pid_,
                 timeout_s);
  }
  Kill9();
  // A killed berthd's next start would unmount these (the rootfs pool's staging mounts, an
  // instance's root mid-spawn); there is no next start.
  for (const auto& point : store::MountPointsBelow(dir_)) ::umount2(point.c_str(), MNT_DETACH);
}

void Daemon::Terminate() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "berthd status " << st;
}

HttpResult Daemon::Request(const std::string& method, const std::string& path,
                           const std::string& body, bool auth, const std::string& content_type,
                           const std::string& token_override) const {
  HttpResult r;
  CURL* c = curl_easy_init();
  std::string url = this->url() + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (method == "POST" || !body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  struct curl_slist* headers = nullptr;
  std::string tok = "X-Auth-Token: " + (token_override.empty() ? token_ : token_override);
  if (auth) headers = curl_slist_append(headers, tok.c_str());
  std::string ct = "Content-Type: " + content_type;
  headers = curl_slist_append(headers, ct.c_str());
  headers = curl_slist_append(headers, "Expect:");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  EXPECT_EQ(rc, CURLE_OK) << method << " " << path << ": " << curl_easy_strerror(rc);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type) r.content_type = type;
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

int Daemon::DeleteAllInstances() const {
  if (pid_ <= 0) return 0;
  HttpResult list = Get("/v1/instances");
  if (list.status != 200) return 1;
  rapidjson::Document d = list.Json();
  int failed = 0;
  if (!d.IsObject() || !d.HasMember("instances")) return 1;
  for (const auto& inst : d["instances"].GetArray()) {
    HttpResult del = Delete("/v1/instances/" + std::string(inst["uuid"].GetString()));
    if (del.status != 204) ++failed;
  }
  return failed;
}

void ServerTest::SetUpTestSuite() {
  if (!IsRoot()) return;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  dir_ = new TempDir();
  ::chmod(dir_->path().c_str(), 0755);
  std::string rootfs = dir_->Sub("rootfs");
  BuildBusyboxRootfs(rootfs);
  rootfs_tar_ = dir_->Sub("busybox.tar");
  std::string cmd = "tar -C " + rootfs + " -cf " + rootfs_tar_ + " .";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  daemon_ = new Daemon(dir_->path(), "", extra_conf_);
  daemon_->Start();
  HttpResult imp = daemon_->Request("POST", "/v1/images?name=busybox&format=rootfs-tar",
                                    ReadFile(rootfs_tar_), true, "application/x-tar");
  ASSERT_EQ(imp.status, 201) << imp.body;
  image_id_ = Str(imp.Json(), "id");
}

void ServerTest::TearDownTestSuite() {
  if (daemon_) {
    if (daemon_->pid() <= 0) daemon_->Start();
    EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
    daemon_->Finish();
  }
  delete daemon_;
  daemon_ = nullptr;
  delete dir_;
  dir_ = nullptr;
}

void ServerTest::SetUp() {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  ASSERT_NE(daemon_, nullptr);
  if (daemon_->pid() <= 0) daemon_->Start();
}

void ServerTest::TearDown() {
  if (!daemon_) return;
  if (daemon_->pid() <= 0) daemon_->Start();
  EXPECT_EQ(daemon_->DeleteAllInstances(), 0);
  if (HasFailure() || std::getenv("BERTH_TEST_SHOW_LOG"))
    std::fprintf(stderr, "--- berthd log ---\n%s\n", daemon_->log().c_str());
}

std::string ServerTest::CreateInstance(const std::string& extra_json, const std::string& script) {
  std::string sh =
      script.empty()
          ? "echo hello from $(hostname); trap 'exit 0' TERM; while true; do sleep 0.05; done"
          : script;
  std::string body =
      "{\"image\": \"busybox\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64}, "
      "\"command\": [\"sh\", \"-c\", \"" +
      sh + "\"]" + (extra_json.empty() ? "" : ", " + extra_json) + "}";
  HttpResult r = daemon_->Post("/v1/instances", body);
  EXPECT_EQ(r.status, 201) << r.body;
  if (r.status != 201) return "";
  return Str(r.Json(), "uuid");
}

std::string ServerTest::InstanceDir(const std::string& uuid) const {
  return daemon_->state_dir() + "/instances/" + uuid;
}

std::string ServerTest::CgroupDir(const std::string& controller, const std::string& uuid) const {
  return "/sys/fs/cgroup/" + controller + "/" + daemon_->cgroup_parent() + "/" + uuid;
}

rapidjson::Document ServerTest::Show(const std::string& uuid) const {
  HttpResult r = daemon_->Get("/v1/instances/" + uuid);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.Json();
}

std::string ServerTest::PowerState(const std::string& uuid) const {
  return Str(Show(uuid), "power_state_name");
}

HttpResult ServerTest::Action(const std::string& uuid, const std::string& json) const {
  return daemon_->Post("/v1/instances/" + uuid + "/action", json);
}

std::string ServerTest::Exec(const std::string& uuid, const std::string& shell) const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("command");
  w.StartArray();
  w.String("sh");
  w.String("-c");
  w.String(shell.c_str());
  w.EndArray();
  w.EndObject();
  HttpResult r = daemon_->Post("/v1/instances/" + uuid + "/exec", sb.GetString());
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return "";
  return Str(r.Json(), "stdout");
}

std::string SnapshotRecords(const std::string& state_dir) {
  std::string out;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(state_dir, ec)) {
    if (e.path().filename() == "metadata.json") out += ReadFile(e.path().string());
  }
  return out;
}

std::string DiskKeyOf(const std::string& state_dir, const std::string& uuid) {
  const std::string dir = state_dir + "/instances/" + uuid;
  if (auto disk = ReadFileIfExists(dir + "/disk"); disk && !disk->empty()) return *disk;
  if (auto record = ReadFileIfExists(dir + "/instance.json")) {
    rapidjson::Document doc;
    doc.Parse(record->c_str());
    if (doc.IsObject() && doc.HasMember("disk") && doc["disk"].IsString()) {
      return doc["disk"].GetString();
    }
  }
  return "instance-" + uuid;
}

}  // namespace berth::testing
