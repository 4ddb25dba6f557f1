// A real berthd for the API tests: its own state, run and token files under a temp dir,
// its own cgroup parent "berth-test-<pid>", port 0 (the daemon prints the port it got), and
// a busybox root filesystem imported as image "busybox". Teardown deletes every instance
// through the API, stops the daemon by its pid (SIGTERM, as an operator would), and removes
// the cgroup parent.
#pragma once

#include <sys/types.h>

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace berth::testing {

struct HttpResult {
  long status = 0;
  std::string body;
  std::string content_type;
  rapidjson::Document Json() const;  // fails the test when the body is not JSON
};

class Daemon {
 public:
  // extra_api: more "key = value" lines for the [api] section (e.g. the TLS options).
  // extra_conf: more sections appended to the file (e.g. "[network]\n...").
  explicit Daemon(const std::string& dir, const std::string& extra_api = "",
                  const std::string& extra_conf = "");
  ~Daemon();

  void Start();  // waits until it listens
  // TEST-ONLY crash point for the next Start()s (BERTH_TEST_PAUSE_AT; "" clears it).
  void SetPauseAt(const std::string& point) { pause_at_ = point; }
  // Waits until berthd printed "paused at <point>"; false after timeout_s.
  bool WaitPaused(const std::string& point, int timeout_s = 30) const;
  // Sends a request without waiting for the answer (to a berthd that will pause in it);
  // returns the connection, kept open so the server never sees the client go.
  int SendAndForget(const std::string& method, const std::string& path,
                    const std::string& body) const;
  void Kill9();      // SIGKILL, then reaps
  void Terminate();  // SIGTERM, then reaps
  // The end of a daemon's life in a test: SIGTERM, so its clean shutdown is what the leak
  // check judges. One that does not stop within timeout_s (or waits at a test point) is
  // killed, and what a killed berthd leaves for its next start is unmounted here instead.
  void Finish(int timeout_s = 10);
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& token() const { return token_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  std::string state_dir() const { return dir_ + "/state"; }
  std::string run_dir() const { return dir_ + "/run"; }
  std::string cgroup_parent() const;
  std::string config_path() const { return dir_ + "/berthd.conf"; }
  std::string token_path() const { return dir_ + "/admin-token"; }
  std::string log() const;

  HttpResult Request(const std::string& method, const std::string& path,
                     const std::string& body = "", bool auth = true,
                     const std::string& content_type = "application/json",
                     const std::string& token_override = "") const;
  HttpResult Get(const std::string& path) const { return Request("GET", path); }
  HttpResult Post(const std::string& path, const std::string& body) const {
    return Request("POST", path, body);
  }
  HttpResult Delete(const std::string& path) const { return Request("DELETE", path); }

  // Deletes every instance the daemon knows; returns how many failed.
  int DeleteAllInstances() const;

 private:
  std::string dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string token_;
  int starts_ = 0;
  std::string pause_at_;
};

// Shared by the API tests: one daemon and one image for the whole binary.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  static Daemon& daemon() { return *daemon_; }
  // POST /v1/instances with the busybox image and a shell loop that exits on SIGTERM.
  std::string CreateInstance(const std::string& extra_json = "", const std::string& script = "");
  std::string InstanceDir(const std::string& uuid) const;
  std::string CgroupDir(const std::string& controller, const std::string& uuid) const;
  rapidjson::Document Show(const std::string& uuid) const;
  std::string PowerState(const std::string& uuid) const;
  HttpResult Action(const std::string& uuid, const std::string& json) const;
  std::string Exec(const std::string& uuid, const std::string& shell) const;

  // More lines for the daemon's config file, appended in its [instances] section; a suite
  // sets it in its own SetUpTestSuite before calling this one's.
  static std::string extra_conf_;
  static TempDir* dir_;
  static Daemon* daemon_;
  static std::string image_id_;
  static std::string rootfs_tar_;
};

// The layer store's snapshot records (every metadata.json under the state dir).
std::string SnapshotRecords(const std::string& state_dir);
// The snapshot key of an instance's disk as berthd reads it: <instance dir>/disk (a
// rebuild's), else the record's "disk" (a root made ahead), else "instance-<uuid>".
std::string DiskKeyOf(const std::string& state_dir, const std::string& uuid);

std::string Str(const rapidjson::Value& v, const char* key);
int64_t Int(const rapidjson::Value& v, const char* key);

}  // namespace berth::testing
