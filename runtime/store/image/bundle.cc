#include "runtime/store/image/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "runtime/common/error.h"
#include "runtime/store/archive/path.h"
#include "runtime/store/image/manifest.h"

namespace berth::store {
namespace {

constexpr uint64_t kCacheBudget = 64 << 20;

std::optional<std::string> Normalize(const std::string& name) {
  try {
    auto parts = SanitizeMemberPath(name);
    if (parts.empty()) return std::nullopt;
    return JoinComponents(parts);
  } catch (const Error&) {
    return std::nullopt;  // never looked up, never extracted: harmless
  }
}

std::string ReadAllBounded(ByteSource& src, const std::string& name) {
  std::string out;
  char buf[65536];
  for (;;) {
    size_t n = src.Read(buf, sizeof buf);
    if (n == 0) break;
    out.append(buf, n);
    if (out.size() > kMaxJsonDocument) {
      throw Error(ErrorKind::kInvalidArgument, name + ": larger than 4 MiB");
    }
  }
  return out;
}

// Only these are worth keeping from the indexing pass (a rootfs tar has thousands of small
// files that are not).
bool MayBeMetadata(const std::string& name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return name == "oci-layout" || name == "repositories" || ends_with(".json") ||
         name.rfind("blobs/sha256/", 0) == 0;
}

class DirBundle : public Bundle {
 public:
  explicit DirBundle(const std::string& dir) : dir_(dir) {
    fd_ = UniqueFd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) ThrowErrno("open", dir);
  }
  bool Has(const std::string& name) const override {
    UniqueFd fd = OpenBeneath(name);
    return fd.valid();
  }
  std::string ReadSmall(const std::string& name) override {
    auto src = Open(name);
    return ReadAllBounded(*src, name);
  }
  std::unique_ptr<ByteSource> Open(const std::string& name) override {
    UniqueFd fd = OpenBeneath(name);
    if (!fd) ThrowErrno("open", dir_ + "/" + name);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) ThrowErrno("stat", dir_ + "/" + name);
    if (!S_ISREG(st.st_mode)) {
      throw Error(ErrorKind::kInvalidArgument, dir_ + "/" + name + ": not a regular file");
    }
    return std::make_unique<FdSource>(std::move(fd), dir_ + "/" + name);
  }

 private:
  UniqueFd OpenBeneath(const std::string& name) const {
    struct open_how how = {};
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    int fd = static_cast<int>(::syscall(SYS_openat2, fd_.get(), name.c_str(), &how, sizeof how));
    if (fd >= 0) {
      // Blocking reads from here on (O_NONBLOCK only kept a fifo from hanging the open).
      int fl = ::fcntl(fd, F_GETFL);
      ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    }
    return UniqueFd(fd);
  }

  std::string dir_;
  UniqueFd fd_;
};

ArchivePtr OpenOuter(const std::string& file) {
  ArchivePtr a(archive_read_new());
  if (!a) throw Error(ErrorKind::kResourceExhausted, "archive_read_new failed");
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_filename(a.get(), file.c_str(), 1 << 20) != ARCHIVE_OK) {
    const char* msg = archive_error_string(a.get());
    int err = archive_errno(a.get());
    if (err == ENOENT || err == EACCES) ThrowErrnoValue(err, "open", file);
    throw Error(ErrorKind::kInvalidArgument,
                file + ": not a tar archive: " + (msg ? msg : "unreadable"));
  }
  return a;
}

// A member of a freshly opened outer tar; keeps the archive alive.
class TarMemberSource : public ByteSource {
 public:
  TarMemberSource(ArchivePtr a, std::string name)
      : a_(std::move(a)), inner_(a_.get(), std::move(name)) {}
  size_t Read(void* buf, size_t size) override { return inner_.Read(buf, size); }

 private:
  ArchivePtr a_;
  ArchiveEntrySource inner_;
};

class TarBundle : public Bundle {
 public:
  explicit TarBundle(const std::string& file) : file_(file) {
    ArchivePtr a = OpenOuter(file);
    uint64_t cached = 0;
    struct archive_entry* e;
    for (;;) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) Fail(a.get());
      const char* p = archive_entry_pathname(e);
      auto name = Normalize(p ? p : "");
      if (!name || archive_entry_filetype(e) != AE_IFREG) continue;
      if (!members_.emplace(*name, archive_entry_size(e)).second) {
        throw Error(ErrorKind::kInvalidArgument, file + ": member " + *name + " appears twice");
      }
      int64_t size = archive_entry_size(e);
      if (MayBeMetadata(*name) && size >= 0 && static_cast<uint64_t>(size) <= kMaxJsonDocument &&
          cached + static_cast<uint64_t>(size) <= kCacheBudget) {
        ArchiveEntrySource src(a.get(), file + ":" + *name);
        cache_[*name] = ReadAllBounded(src, *name);
        cached += static_cast<uint64_t>(size);
      }
    }
    if (members_.empty()) throw Error(ErrorKind::kInvalidArgument, file + ": empty archive");
  }

  bool Has(const std::string& name) const override { return members_.count(name) > 0; }

  std::string ReadSmall(const std::string& name) override {
    if (auto it = cache_.find(name); it != cache_.end()) return it->second;
    auto src = Open(name);
    return ReadAllBounded(*src, name);
  }

  std::unique_ptr<ByteSource> Open(const std::string& name) override {
    if (!Has(name)) {
      throw Error(ErrorKind::kNotFound, file_ + ": no member " + name);
    }
    ArchivePtr a = OpenOuter(file_);
    struct archive_entry* e;
    for (;;) {
      int r = archive_read_next_header(a.get(), &e);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) Fail(a.get());
      const char* p = archive_entry_pathname(e);
      auto n = Normalize(p ? p : "");
      if (n && *n == name && archive_entry_filetype(e) == AE_IFREG) {
        return std::make_unique<TarMemberSource>(std::move(a), file_ + ":" + name);
      }
    }
    throw Error(ErrorKind::kNotFound, file_ + ": member " + name + " vanished");
  }

 private:
  [[noreturn]] void Fail(struct archive* a) {
    const char* msg = archive_error_string(a);
    throw Error(ErrorKind::kInvalidArgument, file_ + ": " + (msg ? msg : "corrupt archive"));
  }

  std::string file_;
  std::map<std::string, int64_t> members_;
  std::map<std::string, std::string> cache_;
};

}  // namespace

std::unique_ptr<Bundle> OpenDirBundle(const std::string& dir) {
  return std::make_unique<DirBundle>(dir);
}
std::unique_ptr<Bundle> OpenTarBundle(const std::string& file) {
  return std::make_unique<TarBundle>(file);
}

}  // namespace berth::store
