#include "runtime/monitor/mini.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>  // renameat only; no stdio streams are used
#include <unistd.h>

namespace berth::monitor::mini {

Text& Text::Add(const char* s) { return Add(s, StrLen(s)); }

Text& Text::Add(const char* s, size_t n) {
  if (len_ + n + 1 > cap_) {
    overflow_ = true;
    return *this;
  }
  for (size_t i = 0; i < n; ++i) data_[len_++] = s[i];
  data_[len_] = '\0';
  return *this;
}

Text& Text::AddUnsigned(unsigned long long v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char out[24];
  for (size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  return Add(out, n);
}

Text& Text::AddSigned(long long v) {
  if (v < 0) {
    AddChar('-');
    return AddUnsigned(0ull - static_cast<unsigned long long>(v));
  }
  return AddUnsigned(static_cast<unsigned long long>(v));
}

namespace {

// Days since 1970-01-01 to a civil date (H. Hinnant's algorithm), so no time-zone code of
// libc (which reads /etc/localtime into the heap) is ever touched.
void CivilFromDays(long long z, long long* y, unsigned* m, unsigned* d) {
  z += 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<long long>(yoe) + era * 400 + (*m <= 2 ? 1 : 0);
}

void AddPadded(Text& t, unsigned long long v, int width) {
  char buf[24];
  int n = 0;
  for (; n < width; ++n) {
    buf[width - 1 - n] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  t.Add(buf, static_cast<size_t>(width));
}

}  // namespace

Text& Text::AddTime(const struct timespec& ts) {
  long long secs = ts.tv_sec;
  long long days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
  long long rem = secs - days * 86400;
  long long y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  AddPadded(*this, static_cast<unsigned long long>(y), 4);
  AddChar('-');
  AddPadded(*this, m, 2);
  AddChar('-');
  AddPadded(*this, d, 2);
  AddChar('T');
  AddPadded(*this, static_cast<unsigned long long>(rem / 3600), 2);
  AddChar(':');
  AddPadded(*this, static_cast<unsigned long long>(rem / 60 % 60), 2);
  AddChar(':');
  AddPadded(*this, static_cast<unsigned long long>(rem % 60), 2);
  AddChar('.');
  AddPadded(*this, static_cast<unsigned long long>(ts.tv_nsec), 9);
  return AddChar('Z');
}

size_t StrLen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

bool StrEq(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) {
    ++a;
    ++b;
  }
  return *a == *b;
}

bool StartsWith(const char* s, const char* prefix) {
  while (*prefix != '\0') {
    if (*s++ != *prefix++) return false;
  }
  return true;
}

const char* BaseName(const char* path) {
  const char* base = path;
  for (const char* p = path; *p != '\0'; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}

bool ParseUnsigned(const char* s, unsigned long long max, unsigned long long* out) {
  if (*s == '\0') return false;
  unsigned long long v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return false;
    const unsigned digit = static_cast<unsigned>(*s - '0');
    if (v > (max - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

bool WriteAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

ssize_t ReadSmallFile(const char* path, char* buf, size_t cap) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = ::read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      ::close(fd);
      errno = saved;
      return -1;
    }
    if (n == 0) break;
    len += static_cast<size_t>(n);
  }
  ::close(fd);
  buf[len] = '\0';
  return static_cast<ssize_t>(len);
}

int WriteSmallFile(const char* path, const char* value) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const size_t len = StrLen(value);
  ssize_t n;
  do {
    n = ::write(fd, value, len);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : (static_cast<size_t>(n) != len ? EIO : 0);
  ::close(fd);
  return err;
}

int WriteFileAtomic(int dirfd, const char* name, const char* data, size_t len) {
  FixedText<256> tmp;
  tmp.Add(".").Add(name).Add(".tmp");
  if (tmp.overflow()) return ENAMETOOLONG;
  int fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  int err = 0;
  if (!WriteAll(fd, data, len)) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::renameat(dirfd, tmp.c_str(), dirfd, name) != 0) err = errno;
  if (err != 0) {
    ::unlinkat(dirfd, tmp.c_str(), 0);
    return err;
  }
  return 0;
}

long long MonotonicMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

long long FindKeyedValue(const char* text, const char* key) {
  const size_t key_len = StrLen(key);
  const char* line = text;
  while (*line != '\0') {
    if (StartsWith(line, key) && line[key_len] == ' ') {
      const char* p = line + key_len + 1;
      long long v = 0;
      bool any = false;
      for (; *p >= '0' && *p <= '9'; ++p) {
        v = v * 10 + (*p - '0');
        any = true;
      }
      if (any) return v;
    }
    while (*line != '\0' && *line != '\n') ++line;
    if (*line == '\n') ++line;
  }
  return -1;
}

}  // namespace berth::monitor::mini
