#include "runtime/linux/premade_mounts.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/common/error.h"

namespace berth::container {
namespace {

// "/dev/pts" below "/dev" is "pts"; "" when `path` is not strictly below `root`.
std::string Below(const std::string& root, const std::string& path) {
  if (path.size() <= root.size() + 1 || path.compare(0, root.size(), root) != 0 ||
      path[root.size()] != '/') {
    return "";
  }
  return path.substr(root.size() + 1);
}

bool AtOrBelow(const std::string& root, const std::string& path) {
  return path == root || !Below(root, path).empty();
}

bool Overlap(const std::string& a, const std::string& b) {
  return AtOrBelow(a, b) || AtOrBelow(b, a);
}

[[noreturn]] void Unsupported(const std::string& what) {
  throw Error(ErrorKind::kUnsupported, what);
}

// The mount attributes of a new mount for mount(2) flags. Anything else (a remount, a bind,
// sync, lazytime, propagation) is not premade.
unsigned AttrsOf(const MountEntry& m) {
  constexpr unsigned long kKnown = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                   MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
  if (m.bind || (m.flags.flags & ~kKnown) != 0 || m.flags.propagation != 0 || m.type.empty()) {
    Unsupported(m.destination + ": not a plain new mount");
  }
  const unsigned long f = m.flags.flags;
  unsigned attrs = 0;
  if (f & MS_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
  if (f & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
  if (f & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (f & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  if (f & MS_NODIRATIME) attrs |= MOUNT_ATTR_NODIRATIME;
  // mount(2): noatime wins over strictatime, which wins over relatime (the default).
  if (f & MS_NOATIME) {
    attrs |= MOUNT_ATTR_NOATIME;
  } else if (f & MS_STRICTATIME) {
    attrs |= MOUNT_ATTR_STRICTATIME;
  }
  return attrs;
}

// The mount mount(2) would make for `m` (source, type, flags, data), detached.
UniqueFd FsMount(const MountEntry& m) {
  const unsigned attrs = AttrsOf(m);
  UniqueFd context(::fsopen(m.type.c_str(), FSOPEN_CLOEXEC));
  if (!context) ThrowErrno("fsopen", m.type);
  auto set = [&](const std::string& key, const std::string* value) {
    int rc = value ? ::fsconfig(context.get(), FSCONFIG_SET_STRING, key.c_str(), value->c_str(), 0)
                   : ::fsconfig(context.get(), FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0);
    if (rc != 0) ThrowErrno("fsconfig " + key, m.destination);
  };
  const std::string source = m.source.empty() ? m.type : m.source;
  set("source", &source);
  // mount(2) with MS_RDONLY makes the superblock read-only as well as the mount.
  if (m.flags.flags & MS_RDONLY) set("ro", nullptr);
  size_t start = 0;
  while (start < m.flags.data.size()) {
    size_t end = m.flags.data.find(',', start);
    if (end == std::string::npos) end = m.flags.data.size();
    const std::string option = m.flags.data.substr(start, end - start);
    start = end + 1;
    if (option.empty()) continue;
    const size_t eq = option.find('=');
    if (eq == std::string::npos) {
      set(option, nullptr);
    } else {
      const std::string value = option.substr(eq + 1);
      set(option.substr(0, eq), &value);
    }
  }
  if (::fsconfig(context.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    ThrowErrno("fsconfig create", m.type + " for " + m.destination);
  }
  UniqueFd mnt(::fsmount(context.get(), FSMOUNT_CLOEXEC, attrs));
  if (!mnt) ThrowErrno("fsmount", m.type + " for " + m.destination);
  return mnt;
}

// `rel` below the tree, never through a symbolic link nor above the tree's root; -1 when it
// does not exist.
UniqueFd OpenBelowIfAny(int tree, const std::string& rel, const std::string& what) {
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, tree, rel.c_str(), &how, sizeof how)));
  if (!fd && errno != ENOENT) ThrowErrno("openat2", what);
  return fd;
}

UniqueFd OpenBelow(int tree, const std::string& rel, const std::string& what) {
  UniqueFd fd = OpenBelowIfAny(tree, rel, what);
  if (!fd) ThrowErrno("openat2", what);
  return fd;
}

void MakeDirsBelow(int tree, const std::string& rel) {
  for (size_t slash = rel.find('/');; slash = rel.find('/', slash + 1)) {
    const std::string part = rel.substr(0, slash);
    if (::mkdirat(tree, part.c_str(), 0755) != 0 && errno != EEXIST) ThrowErrno("mkdir", part);
    if (slash == std::string::npos) return;
  }
}

void MoveOnto(const UniqueFd& mount, const UniqueFd& target, const std::string& what) {
  if (::move_mount(mount.get(), "", target.get(), "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    ThrowErrno("move_mount into premade tree", what);
  }
}

void AttachBelow(int tree, const std::string& rel, const UniqueFd& mount, const std::string& what) {
  MoveOnto(mount, OpenBelow(tree, rel, what), what);
}

// Propagation as the cold path leaves it: the init makes "/" private before it mounts, so
// its binds of host nodes are private; a clone here would keep the host's slave link.
void MakePrivate(const UniqueFd& tree, const std::string& what) {
  struct mount_attr attr = {};
  attr.propagation = MS_PRIVATE;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
    ThrowErrno("mount_setattr MS_PRIVATE", what);
  }
}

UniqueFd CloneHostPath(const std::string& path) {
  UniqueFd fd(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!fd) ThrowErrno("open_tree", path);
  return fd;
}

// What MaskPath does after pivot_root, done in the tree: a directory gets an empty read-only
// tmpfs, a file the host's /dev/null (the container's, when its /dev is the premade one);
// nothing when the path does not exist.
void MaskBelow(const UniqueFd& tree, const std::string& root, const std::string& path,
               PremadeTree* t) {
  const std::string rel = Below(root, path);
  UniqueFd target = OpenBelowIfAny(tree.get(), rel, path);
  if (target) {
    struct stat st;
    if (::fstat(target.get(), &st) != 0) ThrowErrno("stat masked path", path);
    UniqueFd mask;
    if (S_ISDIR(st.st_mode)) {
      mask = FsMount({"tmpfs",
                      path,
                      "tmpfs",
                      {MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, "size=0k"},
                      false,
                      false});
    } else {
      mask = CloneHostPath("/dev/null");
      t->binds_dev_null = true;
    }
    MoveOnto(mask, target, path);
  }
  t->masked_paths.push_back(path);
}

// What ReadonlyPath does: the path bound onto itself with its submounts, read-only, nosuid,
// nodev, noexec on top; nothing when it does not exist.
void ReadonlyBelow(const UniqueFd& tree, const std::string& root, const std::string& path,
                   PremadeTree* t) {
  UniqueFd target = OpenBelowIfAny(tree.get(), Below(root, path), path);
  if (target) {
    UniqueFd copy(static_cast<int>(
        ::syscall(SYS_open_tree, target.get(), "",
                  AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
    if (!copy) ThrowErrno("open_tree", path);
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if (::mount_setattr(copy.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      ThrowErrno("mount_setattr read-only", path);
    }
    MoveOnto(copy, target, path);
  }
  t->readonly_paths.push_back(path);
}

// The plan's mounts at or below `root`, in order.
std::vector<MountEntry> MountsAt(const RootfsPlan& plan, const std::string& root) {
  std::vector<MountEntry> out;
  for (const auto& m : plan.mounts) {
    if (AtOrBelow(root, m.destination)) out.push_back(m);
  }
  return out;
}

bool MountsOnRoot(const RootfsPlan& plan) {
  return std::any_of(plan.mounts.begin(), plan.mounts.end(),
                     [](const MountEntry& m) { return m.destination == "/"; });
}

// What PopulateDev and the /dev mounts of SetupRootfs make, in the same order.
PremadeTree PremakeDev(const RootfsPlan& plan) {
  PremadeTree t;
  if (!plan.populate_dev) Unsupported("the plan has no /dev tmpfs");
  if (!plan.bind_devices) Unsupported("device nodes are made with mknod");
  if (!plan.console.empty() || MountsOnRoot(plan)) Unsupported("a console or a mount on /");
  t.mounts = MountsAt(plan, "/dev");
  if (t.mounts.empty() || t.mounts[0].destination != "/dev") Unsupported("/dev is not first");
  UniqueFd tree = FsMount(t.mounts[0]);
  for (size_t i = 1; i < t.mounts.size(); ++i) {
    const std::string rel = Below("/dev", t.mounts[i].destination);
    MakeDirsBelow(tree.get(), rel);
    AttachBelow(tree.get(), rel, FsMount(t.mounts[i]), t.mounts[i].destination);
  }
  for (const auto& dev : plan.devices) {
    const std::string rel = Below("/dev", dev.path);
    if (rel.empty()) Unsupported(dev.path + ": not below /dev");
    if (auto slash = rel.rfind('/'); slash != std::string::npos) {
      MakeDirsBelow(tree.get(), rel.substr(0, slash));
    }
    UniqueFd file(::openat(tree.get(), rel.c_str(),
                           O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!file) ThrowErrno("create mount target", dev.path);
    file.reset();
    AttachBelow(tree.get(), rel, CloneHostPath(dev.path), dev.path);
  }
  for (const auto& [target, link] : plan.dev_symlinks) {
    const std::string rel = Below("/dev", link);
    if (rel.empty()) Unsupported(link + ": not below /dev");
    if (::symlinkat(target.c_str(), tree.get(), rel.c_str()) != 0 && errno != EEXIST) {
      ThrowErrno("symlink", link);
    }
  }
  MakePrivate(tree, "/dev");
  t.devices = plan.devices;
  t.dev_symlinks = plan.dev_symlinks;
  t.fd = std::move(tree);
  return t;
}

// The plan's one mount on `destination` (recorded in t->mounts), made detached: the root
// of a premade tree.
UniqueFd FsMountTheOnly(const RootfsPlan& plan, const std::string& destination, PremadeTree* t) {
  if (MountsOnRoot(plan)) Unsupported("a mount on /");
  for (const auto& m : plan.mounts) {
    if (m.destination == destination) t->mounts.push_back(m);
  }
  if (t->mounts.size() != 1) Unsupported("no single " + destination + " mount");
  return FsMount(t->mounts[0]);
}

// sysfs with the plan's masks below /sys that are directories (a tmpfs, as MaskPath).
PremadeTree PremakeSys(const RootfsPlan& plan) {
  PremadeTree t;
  UniqueFd tree = FsMountTheOnly(plan, "/sys", &t);
  for (const auto& path : plan.masked_paths) {
    if (!Below("/sys", path).empty()) MaskBelow(tree, "/sys", path, &t);
  }
  MakePrivate(tree, "/sys");
  t.fd = std::move(tree);
  return t;
}

// proc of the shell's pid namespace, with the plan's masks and read-only paths below /proc.
PremadeTree PremakeProc(const RootfsPlan& plan) {
  PremadeTree t;
  UniqueFd tree = FsMountTheOnly(plan, "/proc", &t);
  t.plain.reset(static_cast<int>(::syscall(SYS_open_tree, tree.get(), "",
                                           AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!t.plain) ThrowErrno("open_tree", "/proc");
  for (const auto& path : plan.masked_paths) {
    if (!Below("/proc", path).empty()) MaskBelow(tree, "/proc", path, &t);
  }
  for (const auto& path : plan.readonly_paths) {
    if (!Below("/proc", path).empty()) ReadonlyBelow(tree, "/proc", path, &t);
  }
  MakePrivate(tree, "/proc");
  t.fd = std::move(tree);
  return t;
}

template <typename Make>
PremadeTree Premake(Make make) {
  try {
    return make();
  } catch (const Error& e) {
    PremadeTree t;
    t.unmade = e.what();
    return t;
  }
}

// Replaces the plan's mount at `root` (and below it, `with_submounts`) with one entry that
// moves the tree there, at the first one's place.
void ReplaceWithTree(RootfsPlan& plan, const std::string& root, const PremadeTree& tree,
                     bool with_submounts) {
  std::vector<MountEntry> mounts;
  bool placed = false;
  for (auto& m : plan.mounts) {
    if (with_submounts ? !AtOrBelow(root, m.destination) : m.destination != root) {
      mounts.push_back(std::move(m));
      continue;
    }
    if (placed) continue;
    MountEntry moved;
    moved.destination = root;
    moved.tree_fd = tree.fd.get();
    mounts.push_back(std::move(moved));
    placed = true;
  }
  plan.mounts = std::move(mounts);
}

bool DevMatches(const RootfsPlan& plan, const PremadeTree& dev) {
  return dev.fd && plan.populate_dev && plan.bind_devices && plan.console.empty() &&
         !MountsOnRoot(plan) && MountsAt(plan, "/dev") == dev.mounts &&
         plan.devices == dev.devices && plan.dev_symlinks == dev.dev_symlinks;
}

bool SysMatches(const RootfsPlan& plan, const PremadeTree& sys) {
  if (!sys.fd || MountsOnRoot(plan)) return false;
  std::vector<MountEntry> at_sys;
  for (const auto& m : plan.mounts) {
    if (m.destination == "/sys") at_sys.push_back(m);
  }
  if (at_sys != sys.mounts) return false;
  for (const auto& masked : sys.masked_paths) {
    if (std::find(plan.masked_paths.begin(), plan.masked_paths.end(), masked) ==
        plan.masked_paths.end()) {
      return false;
    }
    // A mount the claim makes there would be under the mask instead of over it.
    for (const auto& m : plan.mounts) {
      if (m.destination != "/sys" && Overlap(m.destination, masked)) return false;
    }
  }
  return true;
}

// Masks and read-only paths are applied after pivot_root, after the sysctls are written
// and in the plan's order: premade ones are earlier, so nothing may depend on that order
// (the sysctls are written through the tree's plain root, below its read-only /proc/sys).
bool ProcMatches(const RootfsPlan& plan, const PremadeTree& proc, bool dev_used) {
  if (!proc.fd || !proc.plain || MountsOnRoot(plan)) return false;
  // A sysctl below a premade mask would be written where the cold path masks it later.
  for (const auto& [key, value] : plan.sysctl) {
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    for (const auto& masked : proc.masked_paths) {
      if (Overlap(path, masked)) return false;
    }
  }
  if (proc.binds_dev_null && !dev_used) return false;  // the container's /dev/null is another
  std::vector<MountEntry> at_proc;
  for (const auto& m : plan.mounts) {
    if (m.destination == "/proc") at_proc.push_back(m);
    if (!Below("/proc", m.destination).empty()) return false;
  }
  if (at_proc != proc.mounts) return false;
  auto contains = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (const auto& p : proc.masked_paths) {
    if (!contains(plan.masked_paths, p)) return false;
  }
  for (const auto& p : proc.readonly_paths) {
    if (!contains(plan.readonly_paths, p)) return false;
  }
  // The masks and read-only paths left to the claim must not touch the premade ones.
  std::vector<std::string> premade = proc.masked_paths;
  premade.insert(premade.end(), proc.readonly_paths.begin(), proc.readonly_paths.end());
  for (const auto* list : {&plan.masked_paths, &plan.readonly_paths}) {
    for (const auto& p : *list) {
      if (contains(premade, p)) continue;
      for (const auto& q : premade) {
        if (Overlap(p, q)) return false;
      }
    }
  }
  return true;
}

void EraseEach(std::vector<std::string>& from, const std::vector<std::string>& paths) {
  for (const auto& p : paths) {
    auto it = std::find(from.begin(), from.end(), p);
    if (it != from.end()) from.erase(it);
  }
}

}  // namespace

PremadeMounts PremakeMounts(const RootfsPlan& plan) {
  PremadeMounts out;
  out.root_propagation = plan.root_propagation;
  out.dev = Premake([&] { return PremakeDev(plan); });
  out.sys = Premake([&] { return PremakeSys(plan); });
  out.proc = Premake([&] { return PremakeProc(plan); });
  return out;
}

std::vector<std::string> UsePremadeMounts(RootfsPlan& plan, PremadeMounts& premade) {
  std::vector<std::string> used;
  const bool same_root = plan.root_propagation == premade.root_propagation;
  if (same_root && DevMatches(plan, premade.dev)) {
    ReplaceWithTree(plan, "/dev", premade.dev, true);
    plan.populate_dev = false;
    plan.devices.clear();
    plan.dev_symlinks.clear();
    used.push_back("/dev");
  }
  if (same_root && SysMatches(plan, premade.sys)) {
    ReplaceWithTree(plan, "/sys", premade.sys, false);
    EraseEach(plan.masked_paths, premade.sys.masked_paths);
    used.push_back("/sys");
  } else {
    // sysfs has one superblock per network namespace, which keeps the flags of its first
    // mount: held on, the premade read-only one would make a cold read-write /sys read-only
    // too. Closed now, it is gone before the cold mount (at the cost of a grace period).
    premade.sys.fd.reset();
  }
  const bool dev_used = !used.empty() && used.front() == "/dev";
  if (same_root && ProcMatches(plan, premade.proc, dev_used)) {
    ReplaceWithTree(plan, "/proc", premade.proc, false);
    plan.sysctl_proc_fd = premade.proc.plain.get();
    EraseEach(plan.masked_paths, premade.proc.masked_paths);
    EraseEach(plan.readonly_paths, premade.proc.readonly_paths);
    used.push_back("/proc");
  }
  return used;
}

}  // namespace berth::container
