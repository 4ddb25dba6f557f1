// The v2 backend for real, on a cgroup2 hierarchy: the host's own when it is v2, else the
// hybrid host's (controller-less) /sys/fs/cgroup/unified. Freezing (cgroup.freeze +
// cgroup.events), killing (cgroup.kill) and eBPF device filters need no controller.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#include <algorithm>
#include <cstring>

#include <gtest/gtest.h>

#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/device_filter.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "tests/integration/cgroup/helpers.h"
#include "tests/support/test_env.h"

namespace berth::cgroup {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::Drain;
using testing::GroupCleaner;
using testing::Pipe;
using testing::TicksWithin;

constexpr long kCgroup2Magic = 0x63677270;

class CgroupV2IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!berth::testing::IsRoot()) GTEST_SKIP() << "needs root";
    CgroupHost detected = DetectCgroupHost();
    std::string mount = detected.unified_mount;
    struct statfs fs;
    if (mount.empty() || ::statfs(mount.c_str(), &fs) != 0 || fs.f_type != kCgroup2Magic) {
      GTEST_SKIP() << "no cgroup2 hierarchy";
    }
    host_.version = CgroupVersion::kV2;
    host_.root = mount;
    host_.unified_mount = mount;
    host_.unified_controllers = detected.unified_controllers;
    cleaner_ = std::make_unique<GroupCleaner>(host_);
  }

  CgroupHost host_;
  std::unique_ptr<GroupCleaner> cleaner_;
};

TEST_F(CgroupV2IntegrationTest, CreateMoveFreezeKillDestroy) {
  Cgroup& cg = cleaner_->Make("life");
  cg.Create();
  std::string dir = cg.DirectoryFor("");
  ASSERT_TRUE(PathExists(JoinPath(dir, "cgroup.freeze")));

  Pipe ticks;
  Child child([&] { testing::TickForever(ticks.write_fd); });
  cg.AddProcess(child.pid());
  EXPECT_EQ(cg.Pids(), std::vector<pid_t>{child.pid()});
  ASSERT_TRUE(TicksWithin(ticks.read_fd, 2s));

  cg.Freeze();
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kFrozen);
  EXPECT_NE(ReadFile(JoinPath(dir, "cgroup.events")).find("frozen 1"), std::string::npos);
  Drain(ticks.read_fd);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(Drain(ticks.read_fd), 0) << "a frozen child made progress";
  cg.Thaw();
  EXPECT_TRUE(TicksWithin(ticks.read_fd, 2s)) << "the thawed child did not resume";
  EXPECT_EQ(cg.GetFreezerState(), FreezerState::kThawed);

  cg.KillAll();
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_TRUE(cg.Pids().empty());

  cg.Destroy();
  EXPECT_FALSE(PathExists(dir));
}

TEST_F(CgroupV2IntegrationTest, KillAllReachesForkedDescendants) {
  Cgroup& cg = cleaner_->Make("tree");
  cg.Create();
  testing::TreeInGroup tree(cg);
  auto pids = cg.Pids();
  EXPECT_NE(std::find(pids.begin(), pids.end(), tree.grandchild()), pids.end());
  cg.KillAll();
  EXPECT_TRUE(cg.Pids().empty());
  int status = tree.child().Wait();
  EXPECT_TRUE(WIFSIGNALED(status)) << status;
}

TEST_F(CgroupV2IntegrationTest, DeviceFilterDeniesAndAllows) {
  berth::testing::TempDir tmp;
  std::string null_node = tmp.Sub("null"), zero_node = tmp.Sub("zero");
  ASSERT_EQ(::mknod(null_node.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0) << strerror(errno);
  ASSERT_EQ(::mknod(zero_node.c_str(), S_IFCHR | 0666, makedev(1, 5)), 0) << strerror(errno);

  Cgroup& cg = cleaner_->Make("devices");
  cg.Create();
  std::string dir = cg.DirectoryFor("devices");

  // Each run: a child joins the group, then opens both nodes and reports the errnos.
  auto probe = [&]() -> std::pair<int, int> {
    Pipe go, result;
    Child child([&] {
      char c;
      if (::read(go.read_fd, &c, 1) != 1) ::_exit(1);
      int errs[2];
      int fd = ::open(null_node.c_str(), O_RDWR);
      errs[0] = fd < 0 ? errno : 0;
      fd = ::open(zero_node.c_str(), O_RDONLY);
      errs[1] = fd < 0 ? errno : 0;
      if (::write(result.write_fd, errs, sizeof errs) != sizeof errs) ::_exit(2);
      ::_exit(0);
    });
    cg.AddProcess(child.pid());
    EXPECT_EQ(::write(go.write_fd, "g", 1), 1);
    int errs[2] = {-1, -1};
    EXPECT_EQ(::read(result.read_fd, errs, sizeof errs), static_cast<ssize_t>(sizeof errs));
    child.Wait();
    return {errs[0], errs[1]};
  };

  spec::Resources r;
  r.devices = {{true, "a", std::nullopt, std::nullopt, "rwm"}, {false, "c", 1, 3, "rwm"}};
  try {
    cg.Apply(r);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kUnsupported) GTEST_SKIP() << e.what();
    throw;
  }
  EXPECT_EQ(QueryDeviceFilters(dir).size(), 1u);
  auto [null_err, zero_err] = probe();
  EXPECT_EQ(null_err, EPERM) << "denied 1:3";
  EXPECT_EQ(zero_err, 0) << "allowed 1:5: " << strerror(zero_err);

  // A resize swaps the program: still one attached, the verdicts reversed; and a rule
  // that grants only reads refuses O_RDWR.
  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"},
               {true, "c", 1, 3, "rw"},
               {true, "c", 1, 5, "r"}};
  cg.Apply(r);
  EXPECT_EQ(QueryDeviceFilters(dir).size(), 1u);
  std::tie(null_err, zero_err) = probe();
  EXPECT_EQ(null_err, 0) << "allowed 1:3: " << strerror(null_err);
  EXPECT_EQ(zero_err, 0) << "allowed read of 1:5: " << strerror(zero_err);

  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}};
  cg.Apply(r);
  std::tie(null_err, zero_err) = probe();
  EXPECT_EQ(null_err, EPERM);
  EXPECT_EQ(zero_err, EPERM);
}

}  // namespace
}  // namespace berth::cgroup
