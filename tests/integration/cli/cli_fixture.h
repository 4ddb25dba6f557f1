// Runs the real berth-runtime binary on a busybox bundle with a state root of the test's own,
// and checks what a command leaves behind: state entries, cgroup directories, monitors.
// Teardown removes every container the test made (delete --force, then by pid and cgroup if
// that fails), so a failing test leaves nothing either.
#pragma once

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_env.h"

namespace berth::testing {

struct CliResult {
  int exit_code = -1;  // 128 + signal when the CLI died of one
  std::string out;
  std::string err;
};

// Edits a parsed config.json before it is written.
using ConfigEdit = std::function<void(rapidjson::Document&)>;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  static std::string Binary();
  // berth-runtime --root <state_root_> ARGS..., stdin /dev/null; fails the test (and kills
  // the CLI) after `timeout_s`.
  CliResult Cli(const std::vector<std::string>& args, int timeout_s = 30);

  // A bundle for `id` in the test's dir: the default spec with process.args = `args`,
  // terminal false, root.path the shared rootfs, cgroupsPath CgroupName(id), then `edit`.
  // Returns the bundle directory.
  std::string Bundle(const std::string& id, const std::vector<std::string>& args,
                     const ConfigEdit& edit = nullptr);
  // A bundle whose config.json is `text`, as it is.
  std::string RawBundle(const std::string& id, const std::string& text);

  // "berth-test-<pid>-<id>": the container's cgroup, named so leaks are easy to spot.
  static std::string CgroupName(const std::string& id);
  // Directories /sys/fs/cgroup/*/<CgroupName(id)> (and berth/<id>) that exist.
  static std::vector<std::string> CgroupDirs(const std::string& id);
  // berth-monitor processes whose --state-dir is this test's <state_root>/<id>.
  std::vector<pid_t> Monitors(const std::string& id) const;
  std::string StateDir(const std::string& id) const { return state_root_ + "/" + id; }

  // No state entry, cgroup directory or monitor for `id`.
  void ExpectNothingLeft(const std::string& id) const;

  // `state ID` parsed; fails the test when the command or the JSON fails.
  rapidjson::Document State(const std::string& id);
  // Polls `state ID` until its status is `status` (or `timeout_ms` passes).
  std::string WaitForStatus(const std::string& id, const std::string& status,
                            int timeout_ms = 10000);

  static std::string rootfs_;
  static std::string base_config_;  // `berth-runtime spec` output
  static TempDir* suite_dir_;
  std::unique_ptr<TempDir> dir_;
  std::string state_root_;
  std::atomic<int> cli_calls_{0};
};

bool ProcessAlive(pid_t pid);

}  // namespace berth::testing
