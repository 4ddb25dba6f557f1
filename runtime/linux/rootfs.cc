#include "runtime/linux/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/fd_io.h"
#include "runtime/common/file_util.h"
#include "runtime/common/phase_timer.h"
#include "runtime/common/unique_fd.h"

namespace berth::container {
namespace {

void Mount(const std::string& source, const std::string& target, const std::string& type,
           unsigned long flags, const std::string& data) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(),
              type.empty() ? nullptr : type.c_str(), flags,
              data.empty() ? nullptr : data.c_str()) != 0) {
    int err = errno;
    std::string what = type.empty() ? source : type;
    throw Error::FromErrno("mount", what + " on " + target, err);
  }
}

// Flags the kernel locks on an existing mount (in a user namespace a remount may not
// clear them), to keep them on a bind remount.
unsigned long LockedFlags(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return 0;
  unsigned long out = 0;
  if (st.f_flag & ST_NOSUID) out |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) out |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) out |= MS_NOEXEC;
  if (st.f_flag & ST_RDONLY) out |= MS_RDONLY;
  if (st.f_flag & ST_NOATIME) out |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) out |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) out |= MS_RELATIME;
  return out;
}

void RemountBind(const std::string& path, unsigned long flags) {
  const unsigned long wanted = flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                        MS_NODIRATIME | MS_RELATIME);
  unsigned long all = MS_BIND | MS_REMOUNT | wanted;
  if (::mount(nullptr, path.c_str(), nullptr, all, nullptr) == 0) return;
  if (errno != EPERM) ThrowErrno("remount", path);
  Mount("", path, "", all | LockedFlags(path), "");
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void CreateMountTarget(const std::string& target, bool as_directory) {
  struct stat st;
  if (::lstat(target.c_str(), &st) == 0) return;
  auto slash = target.rfind('/');
  if (slash != std::string::npos && slash > 0) MakeDirs(target.substr(0, slash));
  if (as_directory) {
    MakeDirs(target);
    return;
  }
  UniqueFd fd(::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
  if (!fd && errno != EEXIST) ThrowErrno("create mount target", target);
}

void DoMount(const RootfsPlan& plan, const MountEntry& m) {
  std::string target = SecureJoin(plan.rootfs, m.destination);
  if (m.tree_fd >= 0) {
    CreateMountTarget(target, true);
    if (::move_mount(m.tree_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      ThrowErrno("move_mount premade tree", target);
    }
    return;
  }
  if (m.flags.flags & MS_REMOUNT) {
    Mount("", target, "", m.flags.flags, m.flags.data);
    return;
  }
  const bool dir = !m.bind || IsDirectory(m.source);
  CreateMountTarget(target, dir);
  if (m.bind) {
    struct stat st;
    if (::stat(m.source.c_str(), &st) != 0) ThrowErrno("bind mount source", m.source);
    Mount(m.source, target, "", MS_BIND | (m.flags.flags & MS_REC), "");
    if (m.remount_after_bind) RemountBind(target, m.flags.flags);
  } else {
    Mount(m.source.empty() ? m.type : m.source, target, m.type, m.flags.flags, m.flags.data);
  }
  if (m.flags.propagation) Mount("", target, "", m.flags.propagation, "");
}

void MakeDevice(const RootfsPlan& plan, const DeviceNode& dev) {
  std::string target = SecureJoin(plan.rootfs, dev.path);
  auto slash = target.rfind('/');
  MakeDirs(target.substr(0, slash));
  ::unlink(target.c_str());
  if (plan.bind_devices) {
    // mknod is not allowed in a user namespace: bind the host's node instead.
    CreateMountTarget(target, false);
    Mount(dev.path, target, "", MS_BIND, "");
    return;
  }
  mode_t type = dev.type == 'b' ? S_IFBLK : dev.type == 'p' ? S_IFIFO : S_IFCHR;
  if (::mknod(target.c_str(), type | dev.mode, makedev(dev.major, dev.minor)) != 0) {
    ThrowErrno("mknod", target);
  }
  // mknod applies the umask; set the mode the spec asked for exactly.
  if (::chmod(target.c_str(), dev.mode) != 0) ThrowErrno("chmod", target);
  if (::chown(target.c_str(), dev.uid, dev.gid) != 0) ThrowErrno("chown", target);
}

void PopulateDev(const RootfsPlan& plan) {
  for (const auto& dev : plan.devices) MakeDevice(plan, dev);
  if (!plan.console.empty()) {
    std::string console = SecureJoin(plan.rootfs, "/dev/console");
    CreateMountTarget(console, false);
    Mount(plan.console, console, "", MS_BIND, "");
  }
  for (const auto& [link_target, link] : plan.dev_symlinks) {
    std::string path = SecureJoin(plan.rootfs, link);
    if (::symlink(link_target.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      ThrowErrno("symlink", path);
    }
  }
}

void PivotRoot(const std::string& rootfs) {
  // pivot_root(".", "."): the old root ends up stacked on the new one and is detached
  // right away, so no directory for it is needed inside the image.
  UniqueFd newroot(::open(rootfs.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!newroot) ThrowErrno("open", rootfs);
  if (::fchdir(newroot.get()) != 0) ThrowErrno("chdir", rootfs);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) ThrowErrno("pivot_root", rootfs);
  // Keep the old root's unmount from propagating anywhere.
  if (::mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, nullptr) != 0) {
    ThrowErrno("make old root rslave", rootfs);
  }
  if (::umount2(".", MNT_DETACH) != 0) ThrowErrno("umount old root", rootfs);
  if (::chdir("/") != 0) ThrowErrno("chdir", "/");
}

void MaskPath(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    ThrowErrno("stat masked path", path);
  }
  if (S_ISDIR(st.st_mode)) {
    Mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0k");
  } else {
    Mount("/dev/null", path, "", MS_BIND, "");
  }
}

void ReadonlyPath(const std::string& path) {
  if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    if (errno == ENOENT) return;
    ThrowErrno("bind readonly path", path);
  }
  RemountBind(path, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC);
}

// Through `proc_fd` when >= 0 (a premade /proc's root alone: its /proc/sys is read-only by
// now), else through /proc. A sysctl is the writer's namespace's either way.
void WriteSysctls(const std::map<std::string, std::string>& sysctl, int proc_fd) {
  for (const auto& [key, value] : sysctl) {
    if (key.find("..") != std::string::npos || key.find('/') != std::string::npos) {
      throw Error(ErrorKind::kInvalidArgument, "linux.sysctl: invalid key \"" + key + "\"");
    }
    std::string path = "/proc/sys/" + key;
    for (size_t i = 10; i < path.size(); ++i) {
      if (path[i] == '.') path[i] = '/';
    }
    WithContext("linux.sysctl." + key, [&] {
      if (proc_fd < 0) {
        WriteToFile(path, value);
        return;
      }
      UniqueFd fd(::openat(proc_fd, path.c_str() + 6, O_WRONLY | O_CLOEXEC));
      if (!fd) ThrowErrno("open", path);
      if (!WriteFully(fd.get(), value.data(), value.size())) ThrowErrno("write", path);
    });
  }
}

}  // namespace

std::string SecureJoin(const std::string& root, const std::string& path) {
  std::vector<std::string> resolved;  // components below root
  std::vector<std::string> pending;   // components still to walk, last first
  auto push_components = [&pending](const std::string& p) {
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find('/', start);
      if (end == std::string::npos) end = p.size();
      if (end > start) parts.push_back(p.substr(start, end - start));
      start = end + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(*it);
  };
  auto current = [&]() {
    std::string out = root;
    for (const auto& c : resolved) out += "/" + c;
    return out;
  };
  push_components(path);
  int links = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    std::string candidate = current() + "/" + part;
    struct stat st;
    if (::lstat(candidate.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      if (++links > 255) ThrowErrnoValue(ELOOP, "resolve", root + path);
      char buf[PATH_MAX];
      ssize_t n = ::readlink(candidate.c_str(), buf, sizeof buf - 1);
      if (n < 0) ThrowErrno("readlink", candidate);
      std::string target(buf, static_cast<size_t>(n));
      if (!target.empty() && target[0] == '/') resolved.clear();
      push_components(target);
      continue;
    }
    resolved.push_back(std::move(part));
  }
  return current();
}

void SetupRootfs(const RootfsPlan& plan, const std::function<void()>& before_cgroup_mounts) {
  PhaseTimer timer("  rootfs");
  WithContext("rootfs propagation", [&] { Mount("", "/", "", plan.root_propagation, ""); });
  timer.Mark("propagation");
  // pivot_root needs the new root to be a mount point.
  if (plan.rootfs_tree_fd >= 0) {
    if (::syscall(SYS_move_mount, plan.rootfs_tree_fd, "", AT_FDCWD, plan.rootfs.c_str(),
                  MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      ThrowErrno("move_mount", plan.rootfs);
    }
    timer.Mark("move root");
  } else {
    Mount(plan.rootfs, plan.rootfs, "", MS_BIND | MS_REC, "");
    timer.Mark("bind root");
  }
  bool cgroups_entered = !before_cgroup_mounts;
  auto enter_cgroups = [&] {
    if (cgroups_entered) return;
    cgroups_entered = true;
    before_cgroup_mounts();
    timer.Mark("cgroups entered");
  };
  for (const auto& m : plan.mounts) {
    if (m.destination == "/sys/fs/cgroup" || m.destination.rfind("/sys/fs/cgroup/", 0) == 0) {
      enter_cgroups();
    }
    WithContext("mount " + m.destination, [&] { DoMount(plan, m); });
    timer.Mark(m.destination.c_str());
  }
  enter_cgroups();
  if (plan.populate_dev || !plan.devices.empty() || !plan.console.empty()) {
    mode_t old = ::umask(0);
    try {
      WithContext("populate /dev", [&] { PopulateDev(plan); });
    } catch (...) {
      ::umask(old);
      throw;
    }
    ::umask(old);
  }
  timer.Mark("dev");
  PivotRoot(plan.rootfs);
  timer.Mark("pivot_root");
  WriteSysctls(plan.sysctl, plan.sysctl_proc_fd);
  for (const auto& p : plan.masked_paths) {
    WithContext("mask " + p, [&] { MaskPath(p); });
  }
  timer.Mark("masked");
  for (const auto& p : plan.readonly_paths) {
    WithContext("readonly " + p, [&] { ReadonlyPath(p); });
  }
  timer.Mark("readonly");
  if (plan.readonly_root) {
    WithContext("read-only root", [&] { RemountBind("/", MS_RDONLY); });
  }
}

}  // namespace berth::container
