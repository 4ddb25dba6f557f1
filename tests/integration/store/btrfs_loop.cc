#include "tests/integration/store/btrfs_loop.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/common/unique_fd.h"

namespace berth::store::testing {
namespace {

constexpr const char* kImageSize = "512M";

std::string FindMkfs() {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    std::string p = std::string(dir) + "/mkfs.btrfs";
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs a command line (fixed arguments, no user input), returning its stdout; throws with
// the command and status when it fails.
std::string Run(const std::string& cmd) {
  FILE* f = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!f) ThrowErrno("popen", cmd);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int status = ::pclose(f);
  if (status != 0) {
    throw Error(ErrorKind::kSystem,
                cmd + ": exit status " + std::to_string(WEXITSTATUS(status)) + ": " + out);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string BtrfsLoop::Unavailable() {
  if (FindMkfs().empty()) return "mkfs.btrfs not found (install btrfs-progs): btrfs tests skipped";
  return "";
}

BtrfsLoop::BtrfsLoop() {
  image_ = tmp_.Sub("btrfs.img");
  mnt_ = tmp_.Sub("btrfs-mnt");
  Rollback undo;
  undo.Add([this] { Teardown(); });
  Run("truncate -s " + std::string(kImageSize) + " " + image_);
  Run(FindMkfs() + " -q " + image_);
  loop_dev_ = Run("losetup --find --show " + image_);
  MakeDirs(mnt_, 0755);
  if (::mount(loop_dev_.c_str(), mnt_.c_str(), "btrfs", 0, nullptr) != 0) {
    ThrowErrno("mount btrfs " + loop_dev_, mnt_);
  }
  mounted_ = true;
  undo.Commit();
}

BtrfsLoop::~BtrfsLoop() { Teardown(); }

void BtrfsLoop::Teardown() {
  if (mounted_ && ::umount2(mnt_.c_str(), 0) != 0) {
    // Something (a leaked bind of a snapshot) still holds it: detach, so it goes when freed.
    ::umount2(mnt_.c_str(), MNT_DETACH);
  }
  mounted_ = false;
  if (!loop_dev_.empty()) {
    UniqueFd fd(::open(loop_dev_.c_str(), O_RDONLY | O_CLOEXEC));
    // LOOP_CLR_FD is what losetup -d does; a still-busy device is cleared when released.
    if (fd) ::ioctl(fd.get(), LOOP_CLR_FD, 0);
    loop_dev_.clear();
  }
  ::unlink(image_.c_str());
  // tmp_'s destructor removes the (now unmounted) mount point.
}

std::string BtrfsLoop::NewDir() {
  std::string dir = mnt_ + "/d" + std::to_string(next_++);
  MakeDirs(dir, 0755);
  return dir;
}

std::string BtrfsLoop::LinkNewDir(const std::string& link) {
  std::string dir = NewDir();
  if (::symlink(dir.c_str(), link.c_str()) != 0) ThrowErrno("symlink", link);
  return link;
}

}  // namespace berth::store::testing
