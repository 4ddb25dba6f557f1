// The btrfs layer driver: one subvolume per snapshot, driven by ioctls (no btrfs-progs).
#include <fcntl.h>
#include <linux/btrfs.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/layer/drivers.h"
#include "runtime/store/layer/fs_ops.h"

namespace berth::store {
namespace {

// The inode number of every subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
constexpr ino_t kSubvolumeRootIno = 256;
constexpr const char* kFsName = "fs";

std::string FsTypeName(int64_t type) {
  switch (static_cast<uint64_t>(type)) {
    case EXT4_SUPER_MAGIC:
      return "ext2/ext3/ext4";
    case TMPFS_MAGIC:
      return "tmpfs";
    case XFS_SUPER_MAGIC:
      return "xfs";
    case OVERLAYFS_SUPER_MAGIC:
      return "overlay";
    case NFS_SUPER_MAGIC:
      return "nfs";
    case 0x2fc12fc1:
      return "zfs";
    case BTRFS_SUPER_MAGIC:
      return "btrfs";
    default:
      return "unknown";
  }
}

// statfs of path, or of its nearest existing ancestor while path does not exist yet.
struct statfs StatFsOfNearest(const std::string& root) {
  std::string p = root.empty() ? "." : root;
  for (;;) {
    struct statfs fs;
    if (::statfs(p.c_str(), &fs) == 0) return fs;
    if (errno != ENOENT) ThrowErrno("statfs", p);
    size_t slash = p.find_last_of('/');
    if (slash == std::string::npos) {
      p = ".";
    } else {
      p = slash == 0 ? "/" : p.substr(0, slash);
    }
  }
}

std::string CheckedBtrfsRoot(std::string root) {
  struct statfs fs = StatFsOfNearest(root);
  if (static_cast<uint64_t>(fs.f_type) != BTRFS_SUPER_MAGIC) {
    char hex[32];
    std::snprintf(hex, sizeof hex, "0x%llx", static_cast<unsigned long long>(fs.f_type));
    throw Error(ErrorKind::kUnsupported, "storage driver btrfs: " + root + " is on " +
                                             FsTypeName(fs.f_type) + " (f_type " + hex +
                                             "), not btrfs");
  }
  return root;
}

UniqueFd OpenDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) ThrowErrno("open", path);
  return fd;
}

template <typename Args>
void SetName(Args& args, const char* name) {
  std::strncpy(args.name, name, sizeof args.name - 1);
}

void CreateSubvolume(const std::string& dir, const char* name) {
  UniqueFd fd = OpenDir(dir);
  struct btrfs_ioctl_vol_args args = {};
  SetName(args, name);
  if (::ioctl(fd.get(), BTRFS_IOC_SUBVOL_CREATE, &args) != 0) {
    ThrowErrno("ioctl BTRFS_IOC_SUBVOL_CREATE", dir + "/" + name);
  }
}

void SnapshotSubvolume(const std::string& src, const std::string& dir, const char* name,
                       bool readonly) {
  UniqueFd src_fd = OpenDir(src);
  UniqueFd dir_fd = OpenDir(dir);
  struct btrfs_ioctl_vol_args_v2 args = {};
  args.fd = src_fd.get();
  args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
  SetName(args, name);
  if (::ioctl(dir_fd.get(), BTRFS_IOC_SNAP_CREATE_V2, &args) != 0) {
    ThrowErrno("ioctl BTRFS_IOC_SNAP_CREATE_V2 of " + src, dir + "/" + name);
  }
}

void SetReadOnly(const std::string& subvol) {
  UniqueFd fd = OpenDir(subvol);
  uint64_t flags = 0;
  if (::ioctl(fd.get(), BTRFS_IOC_SUBVOL_GETFLAGS, &flags) != 0) {
    ThrowErrno("ioctl BTRFS_IOC_SUBVOL_GETFLAGS", subvol);
  }
  flags |= BTRFS_SUBVOL_RDONLY;
  if (::ioctl(fd.get(), BTRFS_IOC_SUBVOL_SETFLAGS, &flags) != 0) {
    ThrowErrno("ioctl BTRFS_IOC_SUBVOL_SETFLAGS", subvol);
  }
}

bool IsSubvolume(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return false;
    ThrowErrno("stat", path);
  }
  if (!S_ISDIR(st.st_mode) || st.st_ino != kSubvolumeRootIno) return false;
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) != 0) ThrowErrno("statfs", path);
  return static_cast<uint64_t>(fs.f_type) == BTRFS_SUPER_MAGIC;
}

// Destroying works on read-only subvolumes too; their snapshots live on independently.
void DestroySubvolume(const std::string& dir, const char* name) {
  UniqueFd fd = OpenDir(dir);
  struct btrfs_ioctl_vol_args args = {};
  SetName(args, name);
  if (::ioctl(fd.get(), BTRFS_IOC_SNAP_DESTROY, &args) != 0) {
    ThrowErrno("ioctl BTRFS_IOC_SNAP_DESTROY", dir + "/" + name);
  }
}

Mount Bind(const std::string& dir, bool readonly) {
  return Mount{"bind", dir, {"rbind", readonly ? "ro" : "rw", "nodev"}};
}

}  // namespace

BtrfsSnapshotter::BtrfsSnapshotter(std::string root)
    : LocalSnapshotter(CheckedBtrfsRoot(std::move(root))) {}

void BtrfsSnapshotter::CreateDirs(SnapshotRecord& rec,
                                  const std::vector<const SnapshotRecord*>& chain,
                                  const SnapshotDb&) {
  std::string dir = SnapshotDir(rec.id);
  bool view = rec.info.kind == SnapshotKind::kView;
  if (!chain.empty()) {
    SnapshotSubvolume(FsDir(*chain[0]), dir, kFsName, view);
    return;
  }
  CreateSubvolume(dir, kFsName);
  if (::chmod(FsDir(rec).c_str(), 0755) != 0) ThrowErrno("chmod", FsDir(rec));
  if (view) SetReadOnly(FsDir(rec));
}

std::vector<Mount> BtrfsSnapshotter::MountsFor(const SnapshotRecord& rec,
                                               const std::vector<const SnapshotRecord*>&) const {
  return {Bind(FsDir(rec), rec.info.kind == SnapshotKind::kView)};
}

std::vector<DiffEntry> BtrfsSnapshotter::ChangesFor(
    const SnapshotRecord& rec, const std::vector<const SnapshotRecord*>& chain) const {
  return TreeDiff(FsDir(rec), chain.empty() ? "" : FsDir(*chain[0]));
}

void BtrfsSnapshotter::OnCommit(const SnapshotRecord& rec) { SetReadOnly(FsDir(rec)); }

void BtrfsSnapshotter::RemoveSnapshotDir(const std::string& dir) {
  if (IsSubvolume(dir + "/" + kFsName)) DestroySubvolume(dir, kFsName);
  RemoveTree(dir);
}

}  // namespace berth::store
