#include "runtime/store/archive/layer_stream.h"

#include "runtime/store/archive/background_hasher.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace berth::store {
namespace {

constexpr size_t kBufferSize = 1 << 20;
// libarchive keeps using the buffer a read callback returned until its next call, and the
// hasher owns a buffer until it has hashed it: a few buffers per side keep both busy.
constexpr size_t kBuffersPerSide = 3;

}  // namespace

void ArchiveFree::operator()(struct archive* a) const { archive_read_free(a); }

size_t FdSource::Read(void* buf, size_t size) {
  for (;;) {
    ssize_t n = ::read(fd_.get(), buf, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) ThrowErrno("read", path_);
  }
}

size_t MemorySource::Read(void* buf, size_t size) {
  size_t n = std::min(size, data_.size());
  std::copy_n(data_.data(), n, static_cast<char*>(buf));
  data_.remove_prefix(n);
  return n;
}

size_t ArchiveEntrySource::Read(void* buf, size_t size) {
  la_ssize_t n = archive_read_data(a_, buf, size);
  if (n < 0) {
    const char* msg = archive_error_string(a_);
    throw Error(ErrorKind::kInvalidArgument,
                "read " + name_ + ": " + (msg ? msg : "archive read error"));
  }
  return static_cast<size_t>(n);
}

// Callback state. Exceptions must not cross libarchive's C frames: callbacks store the
// error and return ARCHIVE_FATAL; Fail() rethrows it.
struct LayerStream::State {
  // The hasher's thread may be reading a ring buffer: stop it before the rings go.
  ~State() { hasher.Stop(); }

  ByteSource* source = nullptr;
  Sha256 blob_hash;
  Sha256 diff_hash;
  uint64_t blob_size = 0;
  uint64_t diff_size = 0;
  uint64_t max_uncompressed = 0;
  // Declared before the rings and hashes that its thread uses, so it is destroyed first.
  BackgroundHasher hasher;
  BufferRing in_ring{hasher, kBuffersPerSide, kBufferSize};
  BufferRing out_ring{hasher, kBuffersPerSide, kBufferSize};
  // An uncompressed blob is its own tar stream: its digest is the diff_id, hashed once.
  bool blob_is_diff = false;
  struct archive* decoder = nullptr;
  bool decoder_eof = false;
  std::optional<Error> error;

  // Compressed side.
  static la_ssize_t ReadSource(struct archive*, void* data, const void** out) {
    auto* s = static_cast<State*>(data);
    try {
      char* buf = s->in_ring.Next();
      size_t n = s->source->Read(buf, s->in_ring.buffer_size());
      if (!s->blob_is_diff) s->in_ring.Hashing(s->hasher.Submit(s->blob_hash, buf, n));
      s->blob_size += n;
      *out = buf;
      return static_cast<la_ssize_t>(n);
    } catch (const Error& e) {
      s->error = e;
      return ARCHIVE_FATAL;
    }
  }

  // Decompressed side: what the tar reader consumes.
  la_ssize_t PullDecoded(const void** out) {
    if (decoder_eof) return 0;
    char* buf;
    try {
      buf = out_ring.Next();
    } catch (const Error& e) {
      error = e;
      return ARCHIVE_FATAL;
    }
    la_ssize_t n = archive_read_data(decoder, buf, out_ring.buffer_size());
    if (n < 0) {
      if (!error) {
        const char* msg = archive_error_string(decoder);
        error = Error(ErrorKind::kInvalidArgument,
                      std::string("decompress: ") + (msg ? msg : "corrupt stream"));
      }
      return ARCHIVE_FATAL;
    }
    if (n == 0) decoder_eof = true;
    out_ring.Hashing(hasher.Submit(diff_hash, buf, static_cast<size_t>(n)));
    diff_size += static_cast<uint64_t>(n);
    if (diff_size > max_uncompressed) {
      error = Error(ErrorKind::kResourceExhausted, "decompressed layer exceeds the limit of " +
                                                       std::to_string(max_uncompressed) + " bytes");
      return ARCHIVE_FATAL;
    }
    *out = buf;
    return n;
  }
  static la_ssize_t ReadDecoded(struct archive*, void* data, const void** out) {
    return static_cast<State*>(data)->PullDecoded(out);
  }
};

LayerStream::LayerStream(ByteSource& source, StreamLimits limits, std::string what)
    : state_(std::make_unique<State>()), limits_(limits), what_(std::move(what)) {
  state_->source = &source;
  state_->max_uncompressed = limits.max_uncompressed;

  decoder_.reset(archive_read_new());
  if (!decoder_) throw Error(ErrorKind::kResourceExhausted, "archive_read_new failed");
  // Only in-process decoders: libarchive falls back to running external programs for
  // formats it was built without, which tenant input must never trigger.
  if (archive_read_support_filter_gzip(decoder_.get()) != ARCHIVE_OK ||
      archive_read_support_filter_zstd(decoder_.get()) != ARCHIVE_OK ||
      archive_read_support_filter_none(decoder_.get()) != ARCHIVE_OK ||
      archive_read_support_format_raw(decoder_.get()) != ARCHIVE_OK) {
    throw Error(ErrorKind::kUnsupported, "libarchive lacks built-in gzip or zstd support");
  }
  state_->decoder = decoder_.get();
  if (archive_read_open(decoder_.get(), state_.get(), nullptr, &State::ReadSource, nullptr) !=
      ARCHIVE_OK) {
    Fail("open");
  }
  struct archive_entry* raw = nullptr;
  int r = archive_read_next_header(decoder_.get(), &raw);
  if (r == ARCHIVE_EOF) {
    state_->decoder_eof = true;  // an empty blob: an empty layer
  } else if (r != ARCHIVE_OK) {
    Fail("open");
  }
  state_->blob_is_diff = archive_filter_code(decoder_.get(), 0) == ARCHIVE_FILTER_NONE;

  tar_.reset(archive_read_new());
  if (!tar_) throw Error(ErrorKind::kResourceExhausted, "archive_read_new failed");
  archive_read_support_format_tar(tar_.get());
  if (archive_read_open(tar_.get(), state_.get(), nullptr, &State::ReadDecoded, nullptr) !=
      ARCHIVE_OK) {
    Fail("open tar");
  }
}

LayerStream::~LayerStream() = default;

void LayerStream::Fail(const std::string& context) {
  std::string where = what_ + ": " + context;
  if (state_->error) {
    Error e = *state_->error;
    e.WithContext(where);
    throw e;
  }
  const char* msg = tar_ ? archive_error_string(tar_.get()) : nullptr;
  if (!msg && decoder_) msg = archive_error_string(decoder_.get());
  throw Error(ErrorKind::kInvalidArgument,
              where + ": " + (msg ? msg : "corrupt or truncated archive"));
}

struct archive_entry* LayerStream::Next() {
  struct archive_entry* entry = nullptr;
  int r = archive_read_next_header(tar_.get(), &entry);
  if (r == ARCHIVE_EOF) return nullptr;
  // Warnings are refused too: a tar that libarchive had to guess about is not trusted.
  if (r != ARCHIVE_OK) Fail("read tar header");
  int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
  if (size < 0) Fail("negative entry size");
  declared_ += static_cast<uint64_t>(size);
  if (declared_ > limits_.max_uncompressed) {
    throw Error(ErrorKind::kResourceExhausted, what_ + ": entries declare more than the limit of " +
                                                   std::to_string(limits_.max_uncompressed) +
                                                   " bytes");
  }
  return entry;
}

LayerDigests LayerStream::Finish() {
  const void* buf = nullptr;
  while (!state_->decoder_eof) {
    if (state_->PullDecoded(&buf) < 0) Fail("read to end");
  }
  // The decoder may stop before the end of the source (e.g. after the gzip trailer); the
  // blob digest covers every byte.
  for (;;) {
    char* buf = state_->in_ring.Next();
    size_t n = state_->source->Read(buf, state_->in_ring.buffer_size());
    if (n == 0) break;
    if (state_->blob_is_diff) {
      // The raw reader passes on every byte up to the end of an uncompressed blob.
      throw Error(ErrorKind::kInternal, what_ + ": bytes after the end of an uncompressed layer");
    }
    state_->in_ring.Hashing(state_->hasher.Submit(state_->blob_hash, buf, n));
    state_->blob_size += n;
  }
  state_->hasher.Drain();
  LayerDigests d;
  d.diff_id = state_->diff_hash.Final();
  d.blob = state_->blob_is_diff ? d.diff_id : state_->blob_hash.Final();
  d.blob_size = state_->blob_size;
  d.diff_size = state_->diff_size;
  return d;
}

}  // namespace berth::store
