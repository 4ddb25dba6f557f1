#include "runtime/store/archive/apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"
#include "runtime/store/archive/path.h"
#include "runtime/store/archive/utf8_locale.h"

namespace berth::store {
namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

std::string EntryName(struct archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  if (!p) p = archive_entry_pathname_utf8(e);
  if (!p) throw Error(ErrorKind::kInvalidArgument, "tar entry without a readable path");
  return p;
}

std::string ProcPath(int dirfd, const std::string& name) {
  return "/proc/self/fd/" + std::to_string(dirfd) + (name.empty() ? "" : "/" + name);
}

bool XattrAllowed(std::string_view name) {
  return name.substr(0, 5) == "user." || name.substr(0, 9) == "security.";
}

std::vector<std::string> ListNames(int dirfd) {
  int dup = ::openat(dirfd, ".", kDirFlags);
  if (dup < 0) ThrowErrno("open", ".");
  DIR* dir = ::fdopendir(dup);
  if (!dir) {
    ::close(dup);
    ThrowErrno("fdopendir", ".");
  }
  std::vector<std::string> names;
  while (struct dirent* ent = ::readdir(dir)) {
    std::string_view n = ent->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(dir);
  return names;
}

// Removes name (any type, recursively) from the directory dirfd; missing is fine.
void RemoveAt(int dirfd, const std::string& name, const std::string& path) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) ThrowErrno("unlink", path);
  UniqueFd sub(::openat(dirfd, name.c_str(), kDirFlags));
  if (!sub) ThrowErrno("open", path);
  for (const std::string& child : ListNames(sub.get()))
    RemoveAt(sub.get(), child, path + "/" + child);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    ThrowErrno("rmdir", path);
}

struct DeferredDir {
  std::vector<std::string> parts;
  mode_t mode;
  struct timespec times[2];
};

class Extractor {
 public:
  Extractor(LayerStream& stream, const std::string& dir, const ApplyOptions& options)
      : stream_(stream), dir_(dir), options_(options) {
    root_ = UniqueFd(::open(dir.c_str(), kDirFlags));
    if (!root_) ThrowErrno("open", dir);
  }

  ApplyStats Run() {
    while (struct archive_entry* e = stream_.Next()) {
      std::string name = EntryName(e);
      WithContext("member \"" + name.substr(0, 200) + "\"", [&] { Entry(e, name); });
      stats_.entries++;
    }
    FinishDirs();
    return stats_;
  }

 private:
  [[noreturn]] void Hostile(const std::string& why) {
    throw Error(ErrorKind::kInvalidArgument, why);
  }

  // Opens the directory made of the first `count` components, creating missing ones
  // (mode 0755) when create is set. Never follows a symlink.
  UniqueFd OpenDir(const std::vector<std::string>& parts, size_t count, bool create) {
    UniqueFd cur(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
    if (!cur) ThrowErrno("dup", dir_);
    for (size_t i = 0; i < count; ++i) {
      const std::string& c = parts[i];
      UniqueFd next(::openat(cur.get(), c.c_str(), kDirFlags));
      if (!next && errno == ENOENT && create) {
        if (::mkdirat(cur.get(), c.c_str(), 0755) != 0 && errno != EEXIST) {
          ThrowErrno("mkdir", JoinComponents(parts, i + 1));
        }
        next = UniqueFd(::openat(cur.get(), c.c_str(), kDirFlags));
      }
      if (!next) {
        if (errno == ELOOP || errno == ENOTDIR) {
          Hostile("path component \"" + JoinComponents(parts, i + 1) +
                  "\" is a symlink or not a directory");
        }
        ThrowErrno("open", JoinComponents(parts, i + 1));
      }
      cur = std::move(next);
    }
    return cur;
  }

  // The parent directory of an entry, cached across consecutive entries in one directory.
  int Parent(const std::vector<std::string>& parts) {
    std::string key = JoinComponents(parts, parts.size() - 1);
    if (!parent_valid_ || key != parent_key_) {
      parent_fd_ = OpenDir(parts, parts.size() - 1, true);
      parent_key_ = key;
      parent_valid_ = true;
    }
    return parent_fd_.get();
  }

  void Invalidate() { parent_valid_ = false; }

  void Entry(struct archive_entry* e, const std::string& name) {
    std::vector<std::string> parts = SanitizeMemberPath(name);
    if (parts.empty()) {
      // "./": the layer root itself; only its metadata applies.
      if (archive_entry_filetype(e) == AE_IFDIR) DeferDir(parts, e);
      return;
    }
    std::string target;
    switch (ClassifyWhiteout(parts.back(), &target)) {
      case WhiteoutKind::kMeta:
        return;
      case WhiteoutKind::kOpaque:
        Opaque(parts);
        stats_.whiteouts++;
        return;
      case WhiteoutKind::kFile:
        Whiteout(parts, target);
        stats_.whiteouts++;
        return;
      case WhiteoutKind::kNone:
        break;
    }
    const std::string path = JoinComponents(parts);
    if (const char* link = archive_entry_hardlink(e)) {
      Hardlink(parts, link);
      created_.insert(path);
      return;
    }
    int parent = Parent(parts);
    const std::string& base = parts.back();
    mode_t type = archive_entry_filetype(e);
    switch (type) {
      case AE_IFDIR: {
        struct stat st;
        bool is_dir =
            ::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        if (!is_dir) {
          Replace(parent, base, path);
          if (::mkdirat(parent, base.c_str(), 0700) != 0) ThrowErrno("mkdir", path);
        }
        UniqueFd fd(::openat(parent, base.c_str(), kDirFlags));
        if (!fd) ThrowErrno("open", path);
        Owner(fd.get(), "", e, path);
        Xattrs(fd.get(), "", e, path);
        DeferDir(parts, e);
        break;
      }
      case AE_IFREG:
        File(parent, base, path, e);
        break;
      case AE_IFLNK: {
        const char* to = archive_entry_symlink(e);
        if (!to) to = archive_entry_symlink_utf8(e);
        if (!to || !*to) Hostile("symlink without a target");
        Replace(parent, base, path);
        if (::symlinkat(to, parent, base.c_str()) != 0) ThrowErrno("symlink", path);
        Owner(parent, base, e, path);
        Xattrs(parent, base, e, path);
        Times(parent, base, e, path);
        break;
      }
      case AE_IFIFO:
        Replace(parent, base, path);
        if (::mknodat(parent, base.c_str(), S_IFIFO | 0600, 0) != 0) ThrowErrno("mkfifo", path);
        Owner(parent, base, e, path);
        Mode(parent, base, e, path);
        Times(parent, base, e, path);
        break;
      case AE_IFCHR:
      case AE_IFBLK:
        stats_.skipped_devices++;
        return;
      default:
        return;  // sockets and unknown types carry no content
    }
    created_.insert(path);
  }

  // Whatever is at name goes: tar semantics, and the reason a symlink planted earlier can
  // never be written through.
  void Replace(int parent, const std::string& base, const std::string& path) {
    struct stat st;
    if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;
      ThrowErrno("stat", path);
    }
    if (S_ISDIR(st.st_mode)) Invalidate();
    RemoveAt(parent, base, path);
  }

  void File(int parent, const std::string& base, const std::string& path, struct archive_entry* e) {
    Replace(parent, base, path);
    UniqueFd fd(
        ::openat(parent, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) ThrowErrno("open", path);
    const void* buf;
    size_t size;
    la_int64_t offset;
    int64_t end = 0;
    for (;;) {
      int r = archive_read_data_block(stream_.tar(), &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) stream_.Fail("read data of " + path);
      const char* p = static_cast<const char*>(buf);
      while (size > 0) {
        ssize_t n = ::pwrite(fd.get(), p, size, offset);
        if (n < 0) {
          if (errno == EINTR) continue;
          ThrowErrno("write", path);
        }
        p += n;
        size -= static_cast<size_t>(n);
        offset += n;
        stats_.bytes += static_cast<uint64_t>(n);
      }
      end = std::max<int64_t>(end, offset);
    }
    // Sparse files end in a hole that no data block covers.
    int64_t declared = archive_entry_size(e);
    if (declared > end && ::ftruncate(fd.get(), declared) != 0) ThrowErrno("ftruncate", path);
    Owner(fd.get(), "", e, path);
    Mode(fd.get(), "", e, path);
    Xattrs(fd.get(), "", e, path);
    Times(fd.get(), "", e, path);
    stats_.files++;
  }

  void Hardlink(const std::vector<std::string>& parts, const char* link) {
    std::vector<std::string> target;
    try {
      target = SanitizeMemberPath(link);
    } catch (Error& err) {
      err.WithContext("hardlink target");
      throw;
    }
    if (target.empty()) Hostile("hardlink to the layer root");
    UniqueFd tparent = OpenDir(target, target.size() - 1, false);
    struct stat st;
    if (::fstatat(tparent.get(), target.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) {
        Hostile("hardlink target \"" + JoinComponents(target) + "\" is not in this layer");
      }
      ThrowErrno("stat", JoinComponents(target));
    }
    if (S_ISDIR(st.st_mode)) Hostile("hardlink to a directory");
    int parent = Parent(parts);
    const std::string path = JoinComponents(parts);
    if (JoinComponents(target) == path) return;  // a link to itself: nothing to do
    Replace(parent, parts.back(), path);
    parent = Parent(parts);
    // flags 0: link the entry itself, never what a symlink points to.
    if (::linkat(tparent.get(), target.back().c_str(), parent, parts.back().c_str(), 0) != 0) {
      ThrowErrno("link", path);
    }
  }

  void Whiteout(const std::vector<std::string>& parts, const std::string& target) {
    int parent = Parent(parts);
    std::string path = JoinComponents(parts, parts.size() - 1);
    path = path.empty() ? target : path + "/" + target;
    Replace(parent, target, path);
    if (options_.style == WhiteoutStyle::kOverlay) {
      if (::mknodat(parent, target.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
        ThrowErrno("mknod whiteout", path);
      }
    }
    created_.erase(path);
  }

  void Opaque(const std::vector<std::string>& parts) {
    int parent = Parent(parts);
    std::string dir = JoinComponents(parts, parts.size() - 1);
    if (options_.style == WhiteoutStyle::kOverlay) {
      if (::setxattr(ProcPath(parent, "").c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
        ThrowErrno("setxattr trusted.overlay.opaque", dir.empty() ? "/" : dir);
      }
      return;
    }
    // The apply dir is a full copy: delete what lower layers put there, keep this layer's.
    Invalidate();
    RemoveNotCreated(parent, dir);
  }

  void RemoveNotCreated(int dirfd, const std::string& dir) {
    for (const std::string& name : ListNames(dirfd)) {
      std::string path = dir.empty() ? name : dir + "/" + name;
      if (!created_.count(path)) {
        RemoveAt(dirfd, name, path);
        continue;
      }
      UniqueFd sub(::openat(dirfd, name.c_str(), kDirFlags));
      if (sub) RemoveNotCreated(sub.get(), path);
    }
  }

  // Metadata setters: fd alone when name is empty, else (dirfd, name) without following.
  void Owner(int fd, const std::string& name, struct archive_entry* e, const std::string& path) {
    if (!options_.preserve_owners) return;
    int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
    if (uid < 0 || gid < 0 || uid >= 0xffffffffLL || gid >= 0xffffffffLL) {
      Hostile("owner out of range");
    }
    int r = name.empty() ? ::fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid))
                         : ::fchownat(fd, name.c_str(), static_cast<uid_t>(uid),
                                      static_cast<gid_t>(gid), AT_SYMLINK_NOFOLLOW);
    if (r != 0) ThrowErrno("chown", path);
  }

  // After Owner: chown clears setuid/setgid.
  void Mode(int fd, const std::string& name, struct archive_entry* e, const std::string& path) {
    mode_t mode = archive_entry_perm(e) & 07777;
    int r = name.empty() ? ::fchmod(fd, mode) : ::fchmodat(fd, name.c_str(), mode, 0);
    if (r != 0) ThrowErrno("chmod", path);
  }

  void Times(int fd, const std::string& name, struct archive_entry* e, const std::string& path) {
    struct timespec ts[2];
    ts[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    ts[0] = archive_entry_atime_is_set(e)
                ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                : ts[1];
    int r =
        name.empty() ? ::futimens(fd, ts) : ::utimensat(fd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
    if (r != 0) ThrowErrno("utimensat", path);
  }

  void Xattrs(int fd, const std::string& name, struct archive_entry* e, const std::string& path) {
    if (archive_entry_xattr_reset(e) == 0) return;
    const char* key;
    const void* value;
    size_t size;
    while (archive_entry_xattr_next(e, &key, &value, &size) == ARCHIVE_OK) {
      if (!key || !XattrAllowed(key)) {
        stats_.skipped_xattrs++;
        continue;
      }
      int r = name.empty() ? ::fsetxattr(fd, key, value, size, 0)
                           : ::lsetxattr(ProcPath(fd, name).c_str(), key, value, size, 0);
      if (r != 0) {
        // Filesystems without user xattrs on symlinks, and unprivileged tests, lose them.
        if (errno == EPERM || errno == ENOTSUP) {
          stats_.skipped_xattrs++;
          continue;
        }
        ThrowErrno(std::string("setxattr ") + key, path);
      }
    }
  }

  // Directory modes and times are applied last: creating children would change the mtime,
  // and a read-only mode would stop an unprivileged extraction.
  void DeferDir(const std::vector<std::string>& parts, struct archive_entry* e) {
    DeferredDir d;
    d.parts = parts;
    d.mode = archive_entry_perm(e) & 07777;
    d.times[1] = {archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
    d.times[0] = archive_entry_atime_is_set(e)
                     ? timespec{archive_entry_atime(e), archive_entry_atime_nsec(e)}
                     : d.times[1];
    if (parts.empty() && options_.preserve_owners) {
      if (::fchown(root_.get(), static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e))) != 0) {
        ThrowErrno("chown", dir_);
      }
    }
    dirs_.push_back(std::move(d));
  }

  void FinishDirs() {
    Invalidate();
    parent_fd_.reset();
    // Deepest first, so setting a parent's times is the last change inside it.
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      UniqueFd fd;
      try {
        fd = OpenDir(it->parts, it->parts.size(), false);
      } catch (const Error& e) {
        if (e.kind() == ErrorKind::kNotFound || e.kind() == ErrorKind::kInvalidArgument) {
          continue;  // replaced or removed later in the same layer
        }
        throw;
      }
      std::string path = it->parts.empty() ? "." : JoinComponents(it->parts);
      if (::fchmod(fd.get(), it->mode) != 0) ThrowErrno("chmod", path);
      if (::futimens(fd.get(), it->times) != 0) ThrowErrno("utimensat", path);
    }
  }

  LayerStream& stream_;
  std::string dir_;
  ApplyOptions options_;
  UniqueFd root_;
  UniqueFd parent_fd_;
  std::string parent_key_;
  bool parent_valid_ = false;
  std::unordered_set<std::string> created_;
  std::vector<DeferredDir> dirs_;
  ApplyStats stats_;
};

}  // namespace

ApplyStats ApplyLayer(LayerStream& stream, const std::string& dir, const ApplyOptions& options) {
  ScopedUtf8Locale utf8;
  return Extractor(stream, dir, options).Run();
}

}  // namespace berth::store
