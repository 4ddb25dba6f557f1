// Starts tests/support/fake_openstack.py (a loopback Keystone + Glance with fault
// injection) on a free port, talks to its /_control API, and kills it by pid at the end.
#pragma once

#include <sys/types.h>

#include <rapidjson/document.h>

#include <string>

namespace berth::testing {

class FakeOpenStack {
 public:
  explicit FakeOpenStack(const std::string& dir);  // store and logs under dir
  ~FakeOpenStack();
  FakeOpenStack(const FakeOpenStack&) = delete;
  FakeOpenStack& operator=(const FakeOpenStack&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // Registers an image; `json` holds the /_control/images fields (data_file, formats...).
  void AddImage(const std::string& json);
  // Arms a fault (see fake_openstack.py).
  void Fault(const std::string& json);
  void SetTokenTtl(int seconds);
  void Revoke(const std::string& token);
  // A token for "berth" (admin) or "demo" (member).
  std::string Issue(const std::string& user);
  void ResetStats();
  // How many requests "METHOD /path" got since the last reset.
  int Count(const std::string& method_path);
  rapidjson::Document Stats();

  long Post(const std::string& path, const std::string& json, std::string* body = nullptr);

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace berth::testing
