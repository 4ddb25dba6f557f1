#include "runtime/linux/idmap_mount.h"

#include <fcntl.h>
#include <fts.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"

namespace berth::container {
namespace {

std::string MapText(const std::vector<spec::IdMapping>& maps) {
  std::string text;
  for (const auto& m : maps) {
    text += std::to_string(m.container_id) + " " + std::to_string(m.host_id) + " " +
            std::to_string(m.size) + "\n";
  }
  return text;
}

// open_tree + mount_setattr(IDMAP): a detached copy of `source` with shifted ownership.
UniqueFd IdmappedTree(const std::string& source, int userns_fd, bool readonly) {
  UniqueFd tree(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!tree) ThrowErrno("open_tree", source);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
    ThrowErrno("mount_setattr MOUNT_ATTR_IDMAP", source);
  }
  return tree;
}

// The child of MakeMappingUserns: holds its new user namespace open until the parent kills
// it. Not a pipe it waits on: the child gets a copy of berthd's fd table, so concurrent
// spawns' holders would each keep the others' write ends open and none would ever see EOF
// (seen as a hung spawn storm). PDEATHSIG: a berthd that dies meanwhile takes it along.
int HoldUserns(void*) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (;;) ::pause();
}

}  // namespace

UniqueFd MakeMappingUserns(const std::vector<spec::IdMapping>& uid,
                           const std::vector<spec::IdMapping>& gid) {
  if (uid.empty() || gid.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "idmapped mount: empty uid or gid mapping");
  }
  const std::string uid_text = MapText(uid), gid_text = MapText(gid);
  // CLONE_VM: the child shares berthd's memory instead of copying its page tables, which
  // made this step several times slower; it only sleeps, on a stack of its own, touching
  // nothing else.
  std::vector<char> stack(64 * 1024);
  pid_t pid =
      ::clone(HoldUserns, stack.data() + stack.size(), CLONE_NEWUSER | CLONE_VM | SIGCHLD, nullptr);
  if (pid < 0) ThrowErrno("clone", "CLONE_NEWUSER");
  ScopeGuard reap([&] {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  });
  const std::string proc = "/proc/" + std::to_string(pid);
  WriteToFile(proc + "/uid_map", uid_text);
  WriteToFile(proc + "/gid_map", gid_text);
  UniqueFd ns(::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) ThrowErrno("open", proc + "/ns/user");
  return ns;
}

void IdmappedBind(const std::string& source, const std::string& target, int userns_fd,
                  bool readonly) {
  UniqueFd tree = IdmappedTree(source, userns_fd, readonly);
  if (::syscall(SYS_move_mount, tree.get(), "", AT_FDCWD, target.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    ThrowErrno("move_mount", target);
  }
}

IdmapSupport ProbeIdmapSupport(const std::string& dir) {
  IdmapSupport out;
  const std::string base = dir + "/.idmap-probe-" + std::to_string(::getpid());
  const std::string lower = base + "/lower", mapped = base + "/mapped", upper = base + "/upper",
                    work = base + "/work", merged = base + "/merged";
  ScopeGuard cleanup([&] {
    ::umount2(merged.c_str(), MNT_DETACH);
    ::umount2(mapped.c_str(), MNT_DETACH);
    RemoveTree(base);
  });
  try {
    for (const auto& d : {base, lower, mapped, upper, work, merged}) MakeDirs(d, 0700);
    WriteFileAtomic(lower + "/f", "x");
    std::vector<spec::IdMapping> map = {{0, 1000000, 65536}};
    UniqueFd ns = MakeMappingUserns(map, map);
    IdmappedBind(lower, mapped, ns.get(), true);
    struct stat st;
    if (::stat((mapped + "/f").c_str(), &st) != 0) ThrowErrno("stat", mapped + "/f");
    if (st.st_uid != 1000000) {
      out.detail = "idmapped mount shows uid " + std::to_string(st.st_uid) + ", want 1000000";
      return out;
    }
    out.idmapped_mount = true;
    std::string data = "lowerdir=" + mapped + ",upperdir=" + upper + ",workdir=" + work;
    if (::mount("overlay", merged.c_str(), "overlay", 0, data.c_str()) != 0) {
      ThrowErrno("mount overlay over an idmapped lower", merged);
    }
    if (::stat((merged + "/f").c_str(), &st) != 0) ThrowErrno("stat", merged + "/f");
    out.overlay_over_idmapped = st.st_uid == 1000000;
    if (!out.overlay_over_idmapped) out.detail = "overlay shows uid " + std::to_string(st.st_uid);
  } catch (const Error& e) {
    out.detail = e.message();
  }
  return out;
}

size_t ShiftOwnership(const std::string& root, uid_t uid_delta, gid_t gid_delta) {
  char* paths[] = {const_cast<char*>(root.c_str()), nullptr};
  FTS* fts = ::fts_open(paths, FTS_PHYSICAL | FTS_XDEV | FTS_NOCHDIR, nullptr);
  if (!fts) ThrowErrno("fts_open", root);
  ScopeGuard close([&] { ::fts_close(fts); });
  size_t count = 0;
  errno = 0;
  while (FTSENT* e = ::fts_read(fts)) {
    if (e->fts_info == FTS_DP) continue;  // directories are handled on the way down
    if (e->fts_info == FTS_NS || e->fts_info == FTS_ERR || e->fts_info == FTS_DNR) {
      ThrowErrnoValue(e->fts_errno, "fts_read", e->fts_path);
    }
    const struct stat& st = *e->fts_statp;
    const bool link = S_ISLNK(st.st_mode);
    // chown drops setuid/setgid and security.capability: put them back as they were.
    char caps[64];
    ssize_t caps_len =
        link ? -1 : ::lgetxattr(e->fts_path, "security.capability", caps, sizeof caps);
    if (::lchown(e->fts_path, st.st_uid + uid_delta, st.st_gid + gid_delta) != 0) {
      ThrowErrno("lchown", e->fts_path);
    }
    if (!link) {
      if (caps_len > 0 && ::lsetxattr(e->fts_path, "security.capability", caps,
                                      static_cast<size_t>(caps_len), 0) != 0) {
        ThrowErrno("lsetxattr security.capability", e->fts_path);
      }
      if ((st.st_mode & (S_ISUID | S_ISGID)) && ::chmod(e->fts_path, st.st_mode & 07777) != 0) {
        ThrowErrno("chmod", e->fts_path);
      }
    }
    ++count;
    errno = 0;
  }
  if (errno != 0) ThrowErrno("fts_read", root);  // NULL with errno 0 is the end
  return count;
}

}  // namespace berth::container
