// A fixture that runs real containers from a busybox rootfs, with a state root of its own,
// and removes every container (process, cgroup, state) at teardown even when a test fails.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "runtime/linux/container.h"
#include "runtime/spec/spec.h"
#include "tests/support/test_env.h"

namespace berth::testing {

class ContainerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  // The default spec with this rootfs, the given command, hostname "berth-test", and a
  // cgroup path unique to the test.
  spec::Spec BaseSpec(std::vector<std::string> args) const;
  // BaseSpec in a user namespace of its own, root mapped to host_base (65536 ids).
  spec::Spec UsernsSpec(std::vector<std::string> args, uint32_t host_base = 100000) const;
  // Options for a create of `spec` under this test's state root and cgroup, its bundle the
  // test's directory (for creates through the spawner or a shell).
  container::CreateOptions Options(const std::string& id, spec::Spec spec) const;
  // Writes the bundle (config.json) and creates the container.
  container::StateRecord Create(const std::string& id, const spec::Spec& spec,
                                unsigned long console_max = 1u << 20);
  // create + start + wait; returns the stopped container's info.
  container::ContainerInfo RunToExit(const std::string& id, const spec::Spec& spec);
  // console.log.1 + console.log.
  std::string Console(const std::string& id) const;
  std::string StateDir(const std::string& id) const;
  std::string CgroupDir(const std::string& controller, const std::string& id) const;
  // Runs a command in the container and returns its stdout; the exit status in *status.
  std::string Exec(const std::string& id, std::vector<std::string> args, int* status = nullptr);

  static std::string rootfs_;
  static TempDir* suite_dir_;
  std::string state_root_;
  std::unique_ptr<TempDir> dir_;
};

}  // namespace berth::testing
