// A loop-mounted btrfs filesystem for the btrfs driver's tests. One per test suite (an image
// costs a mkfs and a mount): each parameterised suite holds one in a static, made on first
// use by a btrfs test and released in TearDownTestSuite, which gtest runs even when tests
// fail. Everything it makes is under a "berth-test" temp dir, so scripts/leak_check.sh sees
// a leftover mount.
#pragma once

#include <memory>
#include <string>

#include "tests/support/test_env.h"

namespace berth::store::testing {

class BtrfsLoop {
 public:
  // An empty string when mkfs.btrfs exists; otherwise why the btrfs tests are skipped.
  static std::string Unavailable();

  // truncate -s 512M, mkfs.btrfs -q, losetup --find --show, mount. Throws on failure,
  // undoing what it did.
  BtrfsLoop();
  // Unmounts (lazily if still busy), detaches the loop device, removes the image.
  ~BtrfsLoop();
  BtrfsLoop(const BtrfsLoop&) = delete;
  BtrfsLoop& operator=(const BtrfsLoop&) = delete;

  const std::string& mount_point() const { return mnt_; }
  // A fresh directory on the btrfs mount.
  std::string NewDir();
  // link (e.g. a test's TempDir::Sub("store")) becomes a symlink to NewDir(), so tests that
  // build paths from their temp dir keep working while the data lives on btrfs.
  std::string LinkNewDir(const std::string& link);

 private:
  void Teardown();

  berth::testing::TempDir tmp_;
  std::string image_;
  std::string loop_dev_;
  std::string mnt_;
  bool mounted_ = false;
  int next_ = 0;
};

// For a parameterised suite: holds the suite's loop, made on first use.
struct BtrfsSuiteLoop {
  std::unique_ptr<BtrfsLoop> loop;
  // Throws when the image cannot be made (check Unavailable() first).
  BtrfsLoop& Get() {
    if (!loop) loop = std::make_unique<BtrfsLoop>();
    return *loop;
  }
  void Release() { loop.reset(); }
};

}  // namespace berth::store::testing
