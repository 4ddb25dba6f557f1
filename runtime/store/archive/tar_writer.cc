#include "runtime/store/archive/tar_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "runtime/store/archive/utf8_locale.h"

namespace berth::store {
namespace {

constexpr size_t kCopyBuffer = 1 << 20;

struct EntryFree {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

bool XattrExported(std::string_view name) {
  return name.substr(0, 5) == "user." || name.substr(0, 9) == "security.";
}

std::vector<std::pair<std::string, std::string>> HostXattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len < 0 && (errno == ENOTSUP || errno == EPERM)) return out;
  if (len < 0) ThrowErrno("llistxattr", path);
  if (len == 0) return out;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) ThrowErrno("llistxattr", path);
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    if (!XattrExported(name)) continue;
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) ThrowErrno("lgetxattr " + name, path);
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) ThrowErrno("lgetxattr " + name, path);
    value.resize(static_cast<size_t>(vlen));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

ByteSink FdSink(int fd, std::string what) {
  return [fd, what = std::move(what)](const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      ssize_t n = ::write(fd, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        ThrowErrno("write", what);
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  };
}

ByteSink NullSink() {
  return [](const void*, size_t) {};
}

TarWriter::TarWriter(ByteSink sink) : sink_(std::move(sink)) {
  a_ = archive_write_new();
  if (!a_) throw Error(ErrorKind::kResourceExhausted, "archive_write_new failed");
  // Full pax (not "restricted"): nanosecond mtimes survive the round trip.
  archive_write_set_format_pax(a_);
  // No padding of the last block to 10 KiB: a layer tar ends with its two zero blocks.
  archive_write_set_bytes_per_block(a_, 0);
  archive_write_set_bytes_in_last_block(a_, 1);
  if (archive_write_open(a_, this, nullptr, &TarWriter::Write, nullptr) != ARCHIVE_OK) {
    std::string msg = archive_error_string(a_) ? archive_error_string(a_) : "open failed";
    archive_write_free(a_);
    throw Error(ErrorKind::kInternal, "tar writer: " + msg);
  }
}

TarWriter::~TarWriter() {
  if (a_) {
    // Abandoned mid-stream (an error): don't let close write a trailer to the sink.
    if (!finished_) archive_write_fail(a_);
    archive_write_free(a_);
  }
}

long TarWriter::Write(struct archive*, void* self, const void* data, size_t size) {
  auto* w = static_cast<TarWriter*>(self);
  try {
    w->sink_(data, size);
  } catch (const Error& e) {
    w->error_ = e;
    return -1;
  }
  w->hash_.Update(data, size);
  w->size_ += size;
  return static_cast<long>(size);
}

void TarWriter::Check(int r, const std::string& what) {
  if (r >= ARCHIVE_WARN && !error_) return;
  if (error_) {
    Error e = *error_;
    throw e.WithContext(what);
  }
  const char* msg = archive_error_string(a_);
  throw Error(ErrorKind::kInvalidArgument, what + ": " + (msg ? msg : "tar write failed"));
}

void TarWriter::Header(const TarEntry& t) {
  ScopedUtf8Locale utf8;  // pax writes UTF-8 names; conversion needs a UTF-8 locale
  std::unique_ptr<struct archive_entry, EntryFree> e(archive_entry_new());
  archive_entry_set_pathname_utf8(e.get(), t.path.c_str());
  archive_entry_set_uid(e.get(), t.uid);
  archive_entry_set_gid(e.get(), t.gid);
  archive_entry_set_mtime(e.get(), t.mtime, t.mtime_nsec);
  archive_entry_set_perm(e.get(), t.perm & 07777);
  for (const auto& [k, v] : t.xattrs) {
    archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
  }
  if (!t.hardlink.empty()) {
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_hardlink_utf8(e.get(), t.hardlink.c_str());
    archive_entry_set_size(e.get(), 0);
  } else {
    archive_entry_set_filetype(e.get(), t.type);
    if (t.type == S_IFLNK) archive_entry_set_symlink_utf8(e.get(), t.link.c_str());
    archive_entry_set_size(e.get(), t.type == S_IFREG ? t.size : 0);
  }
  Check(archive_write_header(a_, e.get()), "tar header " + t.path);
}

void TarWriter::Data(const void* data, size_t size) {
  la_ssize_t n = archive_write_data(a_, data, size);
  if (n < 0 || static_cast<size_t>(n) != size) Check(ARCHIVE_FATAL, "tar data");
}

void TarWriter::AddFile(const TarEntry& entry, int fd, const std::string& host_path) {
  Header(entry);
  std::vector<char> buf(std::min<size_t>(kCopyBuffer, std::max<int64_t>(entry.size, 1)));
  int64_t left = entry.size;
  while (left > 0) {
    ssize_t n = ::read(fd, buf.data(), std::min<size_t>(buf.size(), static_cast<size_t>(left)));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read", host_path);
    }
    if (n == 0) {
      throw Error(ErrorKind::kConflict, host_path + ": file shrank while being archived");
    }
    Data(buf.data(), static_cast<size_t>(n));
    left -= n;
  }
}

void TarWriter::AddBytes(const TarEntry& entry, std::string_view data) {
  TarEntry e = entry;
  e.size = static_cast<int64_t>(data.size());
  Header(e);
  if (!data.empty()) Data(data.data(), data.size());
}

Digest TarWriter::Finish() {
  Check(archive_write_close(a_), "tar close");
  finished_ = true;
  return hash_.Final();
}

TarEntry EntryFromHost(const std::string& host_path, const std::string& member_path,
                       const struct stat& st) {
  TarEntry e;
  e.path = member_path;
  e.type = st.st_mode & S_IFMT;
  e.perm = st.st_mode & 07777;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.mtime = st.st_mtim.tv_sec;
  e.mtime_nsec = st.st_mtim.tv_nsec;
  if (S_ISREG(st.st_mode)) e.size = st.st_size;
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(host_path.c_str(), target.data(), target.size());
    if (n < 0) ThrowErrno("readlink", host_path);
    target.resize(static_cast<size_t>(n));
    e.link = std::move(target);
  }
  e.xattrs = HostXattrs(host_path);
  return e;
}

}  // namespace berth::store
