#include "tests/integration/linux/container_fixture.h"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/spec/parser.h"
#include "tests/support/busybox_rootfs.h"

namespace berth::testing {

std::string ContainerTest::rootfs_;
TempDir* ContainerTest::suite_dir_ = nullptr;

void ContainerTest::SetUpTestSuite() {
  if (!IsRoot()) return;
  suite_dir_ = new TempDir();
  ::chmod(suite_dir_->path().c_str(), 0755);  // a user namespace's root must traverse it
  rootfs_ = suite_dir_->Sub("rootfs");
  BuildBusyboxRootfs(rootfs_);
}

void ContainerTest::TearDownTestSuite() {
  delete suite_dir_;
  suite_dir_ = nullptr;
}

void ContainerTest::SetUp() {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  dir_ = std::make_unique<TempDir>();
  ::chmod(dir_->path().c_str(), 0755);
  state_root_ = dir_->Sub("state");
}

void ContainerTest::TearDown() {
  if (!dir_) return;
  for (const auto& id : container::ListContainers(state_root_)) {
    try {
      container::DeleteContainer(state_root_, id, true);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup of " << id << ": " << e.what();
    }
  }
  dir_.reset();
}

spec::Spec ContainerTest::BaseSpec(std::vector<std::string> args) const {
  spec::Spec s = spec::DefaultSpec();
  s.root.path = rootfs_;
  s.root.readonly = false;
  s.process.args = std::move(args);
  s.process.terminal = false;
  s.hostname = "berth-test";
  return s;
}

spec::Spec ContainerTest::UsernsSpec(std::vector<std::string> args, uint32_t host_base) const {
  spec::Spec s = BaseSpec(std::move(args));
  s.linux.namespaces.push_back({spec::NamespaceType::kUser, ""});
  s.linux.uid_mappings = {{0, host_base, 65536}};
  s.linux.gid_mappings = {{0, host_base, 65536}};
  return s;
}

std::string ContainerTest::StateDir(const std::string& id) const {
  return container::StateDir(state_root_, id);
}

container::CreateOptions ContainerTest::Options(const std::string& id, spec::Spec spec) const {
  container::CreateOptions o;
  o.id = id;
  o.state_root = state_root_;
  o.bundle = dir_->path();
  o.spec = std::move(spec);
  o.cgroup_path = "berth-test-" + std::to_string(::getpid()) + "-" + id;
  return o;
}

container::StateRecord ContainerTest::Create(const std::string& id, const spec::Spec& spec,
                                             unsigned long console_max) {
  std::string bundle = dir_->Sub("bundle-" + id);
  MakeDirs(bundle);
  WriteFileAtomic(JoinPath(bundle, "config.json"), spec::SerializeSpec(spec));
  container::CreateOptions o;
  o.id = id;
  o.state_root = state_root_;
  o.bundle = bundle;
  o.spec = spec::LoadBundle(bundle);
  o.cgroup_path = "berth-test-" + std::to_string(::getpid()) + "-" + id;
  o.console_max = console_max;
  return container::CreateContainer(o);
}

container::ContainerInfo ContainerTest::RunToExit(const std::string& id, const spec::Spec& spec) {
  Create(id, spec);
  container::StartContainer(state_root_, id);
  return container::WaitContainer(state_root_, id);
}

std::string ContainerTest::Console(const std::string& id) const {
  std::string out;
  if (auto old = ReadFileIfExists(JoinPath(StateDir(id), "console.log.1"))) out += *old;
  if (auto cur = ReadFileIfExists(JoinPath(StateDir(id), "console.log"))) out += *cur;
  return out;
}

std::string ContainerTest::CgroupDir(const std::string& controller, const std::string& id) const {
  return "/sys/fs/cgroup/" + controller + "/berth-test-" + std::to_string(::getpid()) + "-" + id;
}

std::string ContainerTest::Exec(const std::string& id, std::vector<std::string> args, int* status) {
  std::string out_path = dir_->Sub("exec-out");
  UniqueFd out(::open(out_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  container::ExecOptions o;
  o.args = std::move(args);
  o.stdout_fd = out.get();
  int st = container::ExecInContainer(state_root_, id, o);
  if (status) *status = st;
  return ReadFile(out_path);
}

}  // namespace berth::testing
