#include "runtime/common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <cerrno>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth {

std::optional<std::string> ReadFileIfExists(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return std::nullopt;
    ThrowErrno("open", path);
  }
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  auto content = ReadFileIfExists(path);
  if (!content) ThrowErrnoValue(ENOENT, "open", path);
  return std::move(*content);
}

static void WriteAll(int fd, std::string_view content, const std::string& path) {
  while (!content.empty()) {
    ssize_t n = ::write(fd, content.data(), content.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write", path);
    }
    content.remove_prefix(static_cast<size_t>(n));
  }
}

void WriteToFile(const std::string& path, std::string_view content) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", path);
  WriteAll(fd.get(), content, path);
}

namespace {
thread_local DeferredFsyncs* t_deferred_fsyncs = nullptr;

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void FsyncPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags));
  if (!fd) ThrowErrno("open", path);
  if (::fsync(fd.get()) != 0) ThrowErrno("fsync", path);
}
}  // namespace

DeferredFsyncs::DeferredFsyncs() : previous_(t_deferred_fsyncs) { t_deferred_fsyncs = this; }

DeferredFsyncs::~DeferredFsyncs() {
  if (active_) t_deferred_fsyncs = previous_;
}

std::vector<std::string> DeferredFsyncs::Release() {
  if (active_) {
    t_deferred_fsyncs = previous_;
    active_ = false;
  }
  return std::move(files_);
}

void FsyncFilesAndDirs(const std::vector<std::string>& files) {
  std::vector<std::string> dirs;
  for (const auto& f : files) {
    FsyncPath(f, 0);
    std::string dir = DirOf(f);
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  for (const auto& d : dirs) FsyncPath(d, O_DIRECTORY);
}

namespace {

// `path`'s new content in a temp file beside it (named `path` + `suffix` + pid), synced
// when asked; removed again when anything fails.
StagedFile WriteTemp(const std::string& path, const char* suffix, std::string_view content,
                     mode_t mode, bool sync) {
  StagedFile file{path + suffix + std::to_string(::getpid()), path};
  UniqueFd fd(::open(file.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) ThrowErrno("open", file.tmp);
  try {
    WriteAll(fd.get(), content, file.tmp);
    if (sync && ::fsync(fd.get()) != 0) ThrowErrno("fsync", file.tmp);
  } catch (...) {
    ::unlink(file.tmp.c_str());
    throw;
  }
  return file;
}

void RenameIntoPlace(const StagedFile& file) {
  if (::rename(file.tmp.c_str(), file.path.c_str()) != 0) {
    int err = errno;
    ::unlink(file.tmp.c_str());
    ThrowErrnoValue(err, "rename", file.path);
  }
}

}  // namespace

void WriteFileAtomic(const std::string& path, std::string_view content, mode_t mode,
                     Durability durability) {
  DeferredFsyncs* deferred = durability == Durability::kDurable ? t_deferred_fsyncs : nullptr;
  const bool durable = durability == Durability::kDurable && deferred == nullptr;
  RenameIntoPlace(WriteTemp(path, ".tmp.", content, mode, durable));
  if (deferred) {
    auto& owed = deferred->files_;
    if (std::find(owed.begin(), owed.end(), path) == owed.end()) owed.push_back(path);
  }
  if (durable) FsyncPath(DirOf(path), O_DIRECTORY);
}

StagedFile StageFile(const std::string& path, std::string_view content, mode_t mode) {
  return WriteTemp(path, ".staged.", content, mode, true);
}

void PublishStagedFile(const StagedFile& file) {
  RenameIntoPlace(file);
  FsyncPath(DirOf(file.path), O_DIRECTORY);
}

void DiscardStagedFile(const StagedFile& file) { ::unlink(file.tmp.c_str()); }

void MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return;
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) {
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
      ThrowErrnoValue(ENOTDIR, "mkdir", path);
    }
    return;
  }
  if (errno != ENOENT) ThrowErrno("mkdir", path);
  auto slash = path.find_last_not_of('/');
  slash = path.rfind('/', slash);
  if (slash != std::string::npos && slash > 0) MakeDirs(path.substr(0, slash), mode);
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) ThrowErrno("mkdir", path);
}

static void RemoveTreeAt(int parent_fd, const char* name, dev_t dev, const std::string& path) {
  struct stat st;
  if (::fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return;
    ThrowErrno("stat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    if (st.st_dev != dev) {
      // A mount point below us: never delete another filesystem's content.
      ThrowErrnoValue(EBUSY, "remove", path);
    }
    int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) ThrowErrno("open", path);
    DIR* dir = ::fdopendir(fd);
    if (!dir) {
      ::close(fd);
      ThrowErrno("fdopendir", path);
    }
    try {
      while (struct dirent* ent = ::readdir(dir)) {
        if (std::string_view(ent->d_name) == "." || std::string_view(ent->d_name) == "..") {
          continue;
        }
        RemoveTreeAt(fd, ent->d_name, dev, path + "/" + ent->d_name);
      }
    } catch (...) {
      ::closedir(dir);
      throw;
    }
    ::closedir(dir);
    if (::unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      ThrowErrno("rmdir", path);
    }
  } else if (::unlinkat(parent_fd, name, 0) != 0 && errno != ENOENT) {
    ThrowErrno("unlink", path);
  }
}

void RemoveTree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    ThrowErrno("stat", path);
  }
  RemoveTreeAt(AT_FDCWD, path.c_str(), st.st_dev, path);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> ListDirectory(const std::string& dir, IfMissing if_missing) {
  std::vector<std::string> names;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) {
    if ((errno == ENOENT || errno == ENOTDIR) && if_missing == IfMissing::kEmpty) return names;
    ThrowErrno("opendir", dir);
  }
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d.get());
    if (e == nullptr) {
      if (errno != 0) ThrowErrno("readdir", dir);
      break;
    }
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string JoinPath(std::string_view a, std::string_view b) {
  std::string out(a);
  while (!out.empty() && out.back() == '/') out.pop_back();
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += '/';
  out += b;
  return out;
}

}  // namespace berth
