#include "runtime/store/layer/fs_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::store {
namespace {

// Lists the entry names of an open directory (the fd stays owned by the caller).
std::vector<std::string> ListDir(int dirfd, const std::string& path) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) ThrowErrno("dup", path);
  DIR* dir = ::fdopendir(dup);
  if (!dir) {
    ::close(dup);
    ThrowErrno("fdopendir", path);
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* ent = ::readdir(dir)) {
    std::string_view n = ent->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(dir);
  return names;
}

void UsageAt(int dirfd, const std::string& path, dev_t dev, std::set<std::pair<dev_t, ino_t>>& seen,
             SnapshotUsage& usage) {
  for (const std::string& name : ListDir(dirfd, path)) {
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      ThrowErrno("stat", path + "/" + name);
    }
    if (seen.insert({st.st_dev, st.st_ino}).second) {
      usage.inodes++;
      usage.size += static_cast<int64_t>(st.st_blocks) * 512;
    }
    if (S_ISDIR(st.st_mode) && st.st_dev == dev) {
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) ThrowErrno("open", path + "/" + name);
      UsageAt(sub.get(), path + "/" + name, dev, seen, usage);
    }
  }
}

void CopyXattrs(const std::string& src, const std::string& dst) {
  ssize_t len = ::llistxattr(src.c_str(), nullptr, 0);
  if (len <= 0) return;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(src.c_str(), names.data(), names.size());
  if (len < 0) ThrowErrno("llistxattr", src);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    ssize_t vlen = ::lgetxattr(src.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) ThrowErrno("lgetxattr " + name, src);
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(src.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) ThrowErrno("lgetxattr " + name, src);
    if (::lsetxattr(dst.c_str(), name.c_str(), value.data(), static_cast<size_t>(vlen), 0) != 0) {
      ThrowErrno("lsetxattr " + name, dst);
    }
  }
}

void CopyData(int in, int out, off_t size, const std::string& src) {
  off_t left = size;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EINVAL) break;
      ThrowErrno("copy_file_range", src);
    }
    if (n == 0) break;
    left -= n;
  }
  char buf[65536];
  while (left > 0) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read", src);
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        ThrowErrno("write", src);
      }
      done += w;
    }
    left -= n;
  }
}

struct Copier {
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  std::vector<std::pair<std::string, struct stat>> dirs;  // times applied last
  bool root = ::geteuid() == 0;

  void Entry(const std::string& src, const std::string& dst) {
    struct stat st;
    if (::lstat(src.c_str(), &st) != 0) ThrowErrno("stat", src);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, fresh] = links.try_emplace({st.st_dev, st.st_ino}, dst);
      if (!fresh) {
        if (::link(it->second.c_str(), dst.c_str()) != 0) ThrowErrno("link", dst);
        return;
      }
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) ThrowErrno("mkdir", dst);
      UniqueFd fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) ThrowErrno("open", src);
      for (const std::string& name : ListDir(fd.get(), src))
        Entry(src + "/" + name, dst + "/" + name);
      dirs.emplace_back(dst, st);
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) ThrowErrno("open", src);
      UniqueFd out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) ThrowErrno("open", dst);
      CopyData(in.get(), out.get(), st.st_size, src);
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
      if (n < 0) ThrowErrno("readlink", src);
      target.resize(static_cast<size_t>(n));
      if (::symlink(target.c_str(), dst.c_str()) != 0) ThrowErrno("symlink", dst);
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
      if (::mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0) ThrowErrno("mknod", dst);
    } else {
      return;  // sockets are not content
    }
    if (!S_ISDIR(st.st_mode)) Finish(dst, st);
  }

  void Finish(const std::string& dst, const struct stat& st) {
    if (root && ::lchown(dst.c_str(), st.st_uid, st.st_gid) != 0) ThrowErrno("lchown", dst);
    CopyXattrs(src_of(dst), dst);
    if (!S_ISLNK(st.st_mode) && ::chmod(dst.c_str(), st.st_mode & 07777) != 0) {
      ThrowErrno("chmod", dst);
    }
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
      ThrowErrno("utimensat", dst);
    }
  }

  std::string src_root, dst_root;
  std::string src_of(const std::string& dst) const {
    return src_root + dst.substr(dst_root.size());
  }
};

}  // namespace

SnapshotUsage TreeUsage(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) ThrowErrno("open", dir);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("stat", dir);
  SnapshotUsage usage;
  std::set<std::pair<dev_t, ino_t>> seen;
  UsageAt(fd.get(), dir, st.st_dev, seen, usage);
  return usage;
}

void CopyTree(const std::string& src, const std::string& dst) {
  Copier c;
  c.src_root = src;
  c.dst_root = dst;
  UniqueFd fd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) ThrowErrno("open", src);
  for (const std::string& name : ListDir(fd.get(), src))
    c.Entry(src + "/" + name, dst + "/" + name);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("stat", src);
  c.dirs.emplace_back(dst, st);
  // Children first, so creating entries no longer disturbs a finished directory's mtime.
  for (const auto& [path, dst_st] : c.dirs) c.Finish(path, dst_st);
}

}  // namespace berth::store
