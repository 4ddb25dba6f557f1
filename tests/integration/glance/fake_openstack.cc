#include "tests/integration/glance/fake_openstack.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/support/test_env.h"

namespace berth::testing {
namespace {

size_t Collect(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

long Http(const std::string& method, const std::string& url, const std::string& body,
          std::string* out) {
  CURL* c = curl_easy_init();
  std::string sink;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out ? out : &sink);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_slist* h = curl_slist_append(nullptr, "Content-Type: application/json");
  if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  EXPECT_EQ(rc, CURLE_OK) << method << " " << url << ": " << curl_easy_strerror(rc);
  return status;
}

}  // namespace

FakeOpenStack::FakeOpenStack(const std::string& dir) : dir_(dir) {
  MakeDirs(dir_ + "/store", 0700);
  std::string out = dir_ + "/fake.out";
  std::string err = dir_ + "/fake.err";
  std::string script = SourceDir() + "/tests/support/fake_openstack.py";
  std::string store = dir_ + "/store";
  pid_ = ::fork();
  if (pid_ == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::execl("/usr/bin/python3", "python3", script.c_str(), "--store", store.c_str(), "--port", "0",
            nullptr);
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = ReadFileIfExists(out).value_or("");
    size_t pos = text.find("listening on 127.0.0.1:");
    if (pos != std::string::npos && text.find('\n', pos) != std::string::npos) {
      port_ = std::atoi(text.c_str() + pos + 23);
      return;
    }
    int st;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      ADD_FAILURE() << "fake_openstack.py exited: " << ReadFileIfExists(err).value_or("");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "fake_openstack.py did not start";
}

FakeOpenStack::~FakeOpenStack() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

long FakeOpenStack::Post(const std::string& path, const std::string& json, std::string* body) {
  return Http("POST", url() + path, json, body);
}

void FakeOpenStack::AddImage(const std::string& json) {
  std::string body;
  ASSERT_EQ(Post("/_control/images", json, &body), 201) << body;
}

void FakeOpenStack::Fault(const std::string& json) {
  ASSERT_EQ(Post("/_control/faults", json), 204);
}

void FakeOpenStack::SetTokenTtl(int seconds) {
  ASSERT_EQ(Post("/_control/token_ttl", "{\"seconds\": " + std::to_string(seconds) + "}"), 204);
}

void FakeOpenStack::Revoke(const std::string& token) {
  ASSERT_EQ(Post("/_control/revoke", "{\"token\": \"" + token + "\"}"), 204);
}

std::string FakeOpenStack::Issue(const std::string& user) {
  std::string body;
  EXPECT_EQ(Post("/_control/issue", "{\"user\": \"" + user + "\"}", &body), 201);
  rapidjson::Document d;
  d.Parse(body.c_str());
  return d.IsObject() && d.HasMember("token") ? d["token"].GetString() : "";
}

void FakeOpenStack::ResetStats() { ASSERT_EQ(Post("/_control/reset_stats", "{}"), 204); }

rapidjson::Document FakeOpenStack::Stats() {
  std::string body;
  EXPECT_EQ(Http("GET", url() + "/_control/stats", "", &body), 200);
  rapidjson::Document d;
  d.Parse(body.c_str());
  return d;
}

int FakeOpenStack::Count(const std::string& method_path) {
  rapidjson::Document d = Stats();
  const auto& r = d["requests"];
  auto it = r.FindMember(method_path.c_str());
  return it == r.MemberEnd() ? 0 : it->value.GetInt();
}

}  // namespace berth::testing
