#include "runtime/store/archive/layer_stream.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace berth::store {
namespace {

constexpr size_t kBufferSize = 1 << 20;

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
  ByteSource* source = nullptr;
  Sha256 blob_hash;
  Sha256 diff_hash;
  uint64_t blob_size = 0;
  uint64_t diff_size = 0;
  uint64_t max_uncompressed = 0;
  std::vector<char> in_buf = std::vector<char>(kBufferSize);
  std::vector<char> out_buf = std::vector<char>(kBufferSize);
  struct archive* decoder = nullptr;
  bool decoder_eof = false;
  std::optional<Error> error;

  // Compressed side.
  static la_ssize_t ReadSource(struct archive*, void* data, const void** out) {
    auto* s = static_cast<State*>(data);
    try {
      size_t n = s->source->Read(s->in_buf.data(), s->in_buf.size());
      s->blob_hash.Update(s->in_buf.data(), n);
      s->blob_size += n;
      *out = s->in_buf.data();
      return static_cast<la_ssize_t>(n);
    } catch (const Error& e) {
      s->error = e;
      return ARCHIVE_FATAL;
    }
  }

  // Decompressed side: what the tar reader consumes.
  la_ssize_t PullDecoded(const void** out) {
    if (decoder_eof) return 0;
    la_ssize_t n = archive_read_data(decoder, out_buf.data(), out_buf.size());
    if (n < 0) {
      if (!error) {
        const char* msg = archive_error_string(decoder);
        error = Error(ErrorKind::kInvalidArgument,
                      std::string("decompress: ") + (msg ? msg : "corrupt stream"));
      }
      return ARCHIVE_FATAL;
    }
    if (n == 0) decoder_eof = true;
    diff_hash.Update(out_buf.data(), static_cast<size_t>(n));
    diff_size += static_cast<uint64_t>(n);
    if (diff_size > max_uncompressed) {
      error = Error(ErrorKind::kResourceExhausted, "decompressed layer exceeds the limit of " +
                                                       std::to_string(max_uncompressed) + " bytes");
      return ARCHIVE_FATAL;
    }
    *out = out_buf.data();
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
    size_t n = state_->source->Read(state_->in_buf.data(), state_->in_buf.size());
    if (n == 0) break;
    state_->blob_hash.Update(state_->in_buf.data(), n);
    state_->blob_size += n;
  }
  LayerDigests d;
  d.blob = state_->blob_hash.Final();
  d.diff_id = state_->diff_hash.Final();
  d.blob_size = state_->blob_size;
  d.diff_size = state_->diff_size;
  return d;
}

}  // namespace berth::store
