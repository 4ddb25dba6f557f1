// Allocation-free helpers for berth-monitor. The monitor runs once per container, so it
// avoids the heap, stdio, locale and time-zone code of libc (each of which dirties pages):
// text is built in fixed buffers and numbers and times are formatted here.
#pragma once

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

namespace berth::monitor::mini {

// A fixed-capacity text builder. Appends past the capacity are dropped and remembered, so
// callers check overflow() once at the end instead of after every append.
class Text {
 public:
  Text(char* storage, size_t capacity) : data_(storage), cap_(capacity) { data_[0] = '\0'; }
  Text& Add(const char* s);
  Text& Add(const char* s, size_t n);
  Text& AddChar(char c) { return Add(&c, 1); }
  Text& AddUnsigned(unsigned long long v);
  Text& AddSigned(long long v);
  // RFC 3339 in UTC with nanoseconds: 2026-11-28T02:51:38.123456789Z
  Text& AddTime(const struct timespec& ts);
  const char* c_str() const { return data_; }
  size_t size() const { return len_; }
  bool overflow() const { return overflow_; }
  void Clear() {
    len_ = 0;
    overflow_ = false;
    data_[0] = '\0';
  }

 private:
  char* data_;
  size_t cap_;  // includes room for the terminating NUL
  size_t len_ = 0;
  bool overflow_ = false;
};

template <size_t N>
class FixedText : public Text {
 public:
  FixedText() : Text(storage_, N) {}

 private:
  char storage_[N];
};

size_t StrLen(const char* s);
bool StrEq(const char* a, const char* b);
bool StartsWith(const char* s, const char* prefix);
// The part after the last '/'.
const char* BaseName(const char* path);

// Decimal, whole string, no sign; false on junk or overflow past max.
bool ParseUnsigned(const char* s, unsigned long long max, unsigned long long* out);

// write(2)/read(2) that retry on EINTR and short counts; false with errno set on failure.
bool WriteAll(int fd, const void* data, size_t len);
// Reads up to cap-1 bytes of a small file and NUL-terminates; -1 with errno on failure.
ssize_t ReadSmallFile(const char* path, char* buf, size_t cap);
// Writes the whole value with one write(2), as cgroup files want. 0 or an errno.
int WriteSmallFile(const char* path, const char* value);

// Atomic replace of dirfd/name: temp file, rename (readers never see a torn file; not
// fsynced, see protocol.h). 0 or an errno.
int WriteFileAtomic(int dirfd, const char* name, const char* data, size_t len);

long long MonotonicMs();
void SleepMs(long ms);

// The value of a "key N" line in a flat-keyed file such as memory.events, or -1.
long long FindKeyedValue(const char* text, const char* key);

}  // namespace berth::monitor::mini
