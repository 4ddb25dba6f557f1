#include "runtime/store/blob/blob_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::store {
namespace {

void FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", dir);
  if (::fsync(fd.get()) != 0) ThrowErrno("fsync", dir);
}

}  // namespace

BlobWriter::BlobWriter(const BlobStore* store, std::string temp_path, UniqueFd fd)
    : store_(store), temp_path_(std::move(temp_path)), fd_(std::move(fd)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : store_(o.store_),
      temp_path_(std::exchange(o.temp_path_, {})),
      fd_(std::move(o.fd_)),
      hash_(std::move(o.hash_)),
      written_(o.written_) {}

BlobWriter::~BlobWriter() { Abort(); }

void BlobWriter::Abort() {
  fd_.reset();
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

void BlobWriter::Write(const void* data, size_t size) {
  if (temp_path_.empty()) throw Error(ErrorKind::kInternal, "write to a finished blob writer");
  hash_.Update(data, size);
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_.get(), p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("write", temp_path_);
    }
    p += n;
    size -= static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
}

Digest BlobWriter::Commit(const std::optional<Digest>& expected,
                          std::optional<uint64_t> expected_size) {
  if (temp_path_.empty()) throw Error(ErrorKind::kInternal, "commit of a finished blob writer");
  Digest actual = hash_.Final();
  if (expected_size && *expected_size != written_) {
    Abort();
    throw Error(ErrorKind::kInvalidArgument,
                "blob size mismatch: expected " + std::to_string(*expected_size) + " bytes, got " +
                    std::to_string(written_) + " (" + actual.str() + ")");
  }
  if (expected && *expected != actual) {
    Abort();
    throw Error(ErrorKind::kInvalidArgument,
                "blob digest mismatch: expected " + expected->str() + ", got " + actual.str());
  }
  if (::fsync(fd_.get()) != 0) {
    int err = errno;
    Abort();
    ThrowErrnoValue(err, "fsync", temp_path_);
  }
  fd_.reset();
  std::string target = store_->Path(actual);
  if (::rename(temp_path_.c_str(), target.c_str()) != 0) {
    int err = errno;
    Abort();
    ThrowErrnoValue(err, "rename", target);
  }
  temp_path_.clear();
  FsyncDir(store_->blob_dir_);
  return actual;
}

BlobStore::BlobStore(std::string root)
    : root_(std::move(root)), blob_dir_(root_ + "/blobs/sha256"), ingest_dir_(root_ + "/ingest") {
  MakeDirs(blob_dir_, 0700);
  MakeDirs(ingest_dir_, 0700);
}

BlobWriter BlobStore::Ingest() const {
  std::string tmpl = ingest_dir_ + "/blob.XXXXXX";
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) ThrowErrno("mkostemp", tmpl);
  // Blobs are immutable once committed.
  if (::fchmod(fd.get(), 0444) != 0) {
    int err = errno;
    ::unlink(tmpl.c_str());
    ThrowErrnoValue(err, "fchmod", tmpl);
  }
  return BlobWriter(this, tmpl, std::move(fd));
}

Digest BlobStore::Put(std::string_view data, const std::optional<Digest>& expected) const {
  BlobWriter w = Ingest();
  w.Write(data);
  return w.Commit(expected, std::nullopt);
}

std::string BlobStore::Path(const Digest& d) const {
  if (d.empty()) throw Error(ErrorKind::kInvalidArgument, "empty digest");
  return blob_dir_ + "/" + d.hex();
}

bool BlobStore::Exists(const Digest& d) const { return PathExists(Path(d)); }

std::string BlobStore::Read(const Digest& d) const {
  return WithContext("read blob " + d.str(), [&] { return ReadFile(Path(d)); });
}

uint64_t BlobStore::Size(const Digest& d) const {
  struct stat st;
  if (::stat(Path(d).c_str(), &st) != 0) ThrowErrno("stat", Path(d));
  return static_cast<uint64_t>(st.st_size);
}

void BlobStore::Delete(const Digest& d) const {
  if (::unlink(Path(d).c_str()) != 0) ThrowErrno("unlink", Path(d));
}

std::vector<Digest> BlobStore::List() const {
  std::vector<Digest> out;
  for (const auto& name : ListDirectory(blob_dir_, IfMissing::kThrow)) {
    // Stray files that are not digests (never written by us) are ignored, not trusted.
    if (Digest::IsValid("sha256:" + name)) out.push_back(Digest::FromHex(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace berth::store
