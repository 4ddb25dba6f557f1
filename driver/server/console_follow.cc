#include "driver/server/console_follow.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/unique_fd.h"

namespace berth::server {
namespace {

struct LogFile {
  UniqueFd fd;
  ConsoleCursor id;  // inode and birth time; offset 0
  bool Is(const ConsoleCursor& c) const { return id.SameFile(c); }
};

std::optional<LogFile> OpenLog(const std::string& path) {
  LogFile f;
  f.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!f.fd) {
    if (errno == ENOENT) return std::nullopt;
    ThrowErrno("open", path);
  }
  struct statx st;
  if (::statx(f.fd.get(), "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &st) != 0) {
    ThrowErrno("statx", path);
  }
  f.id.inode = st.stx_ino;
  unsigned long generation = 0;  // NOLINT(runtime/int): the ioctl's type
  if (::ioctl(f.fd.get(), FS_IOC_GETVERSION, &generation) == 0) f.id.generation = generation;
  if (st.stx_mask & STATX_BTIME) {
    f.id.born_ns = static_cast<uint64_t>(st.stx_btime.tv_sec) * 1000000000u + st.stx_btime.tv_nsec;
  }
  return f;
}

// Up to `max` bytes of `f` from `offset` on, appended to out; returns the new offset.
uint64_t ReadFrom(const LogFile& f, const std::string& path, uint64_t offset, size_t max,
                  std::string& out) {
  char buf[64 << 10];
  while (out.size() < max) {
    ssize_t n = ::pread(f.fd.get(), buf, std::min(sizeof buf, max - out.size()),
                        static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      ThrowErrno("read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return offset;
}

bool ParseDecimal(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::string TailLines(const std::string& text, size_t lines) {
  if (lines == 0) return "";
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  size_t count = 0;
  while (pos > 0) {
    size_t nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos) return text;
    if (++count == lines) return text.substr(nl + 1);
    pos = nl;
  }
  return text;
}

std::string ConsoleCursor::str() const {
  return std::to_string(inode) + "-" + std::to_string(generation) + "-" + std::to_string(born_ns) +
         "-" + std::to_string(offset);
}

ConsoleCursor ConsoleCursor::Parse(const std::string& text) {
  std::string_view rest = text;
  constexpr int kFields = 4;
  uint64_t fields[kFields];
  for (int i = 0; i < kFields; ++i) {
    size_t dash = i < kFields - 1 ? rest.find('-') : rest.size();
    if (dash == std::string_view::npos || !ParseDecimal(rest.substr(0, dash), fields[i])) {
      throw Error(ErrorKind::kInvalidArgument,
                  "since: want a cursor from an earlier answer, got \"" + text + "\"");
    }
    rest.remove_prefix(std::min(rest.size(), dash + 1));
  }
  return {fields[0], fields[1], fields[2], fields[3]};
}

ConsoleRead ReadConsole(const std::string& dir, const std::optional<ConsoleCursor>& since,
                        size_t lines, size_t max) {
  const std::string cur_path = JoinPath(dir, "console.log");
  const std::string old_path = JoinPath(dir, "console.log.1");
  // The current file first: if the monitor rotates between the two opens, the old file
  // we then open is the one we hold, and is recognised by its inode.
  std::optional<LogFile> cur = OpenLog(cur_path);
  std::optional<LogFile> old = OpenLog(old_path);
  if (old && cur && old->Is(cur->id)) old.reset();

  ConsoleRead r;
  if (!since) {
    std::string text;
    if (old) ReadFrom(*old, old_path, 0, SIZE_MAX, text);
    uint64_t end = cur ? ReadFrom(*cur, cur_path, 0, SIZE_MAX, text) : 0;
    r.text = TailLines(text, lines);
    r.next = cur ? cur->id : ConsoleCursor{};
    r.next.offset = end;
    return r;
  }
  if (!cur && !old) {  // no output yet, or the container is gone (its log was saved)
    r.next = *since;
    return r;
  }
  if (cur && cur->Is(*since)) {
    r.next = cur->id;
    r.next.offset = ReadFrom(*cur, cur_path, since->offset, max, r.text);
    return r;
  }
  uint64_t old_from = 0;
  if (old && old->Is(*since)) {
    old_from = since->offset;
  } else {
    // A cursor from before the monitor started its file (inode 0), or from a file since
    // rotated away twice: everything kept.
    r.lost = since->inode != 0;
  }
  if (old) {
    uint64_t end = ReadFrom(*old, old_path, old_from, max, r.text);
    if (r.text.size() >= max || !cur) {
      r.next = old->id;
      r.next.offset = end;
      return r;
    }
  }
  r.next = cur->id;
  r.next.offset = ReadFrom(*cur, cur_path, 0, max, r.text);
  return r;
}

ConsoleWaiters::ConsoleWaiters(size_t max_waiters, std::chrono::milliseconds interval)
    : max_(max_waiters), interval_(interval), thread_([this] { Run(); }) {}

bool ConsoleWaiters::Park(Waiter& waiter) {
  std::lock_guard lock(mu_);
  if (stop_ || count_ >= max_) return false;
  ++count_;
  incoming_.push_back(std::move(waiter));
  cv_.notify_one();
  return true;
}

size_t ConsoleWaiters::size() {
  std::lock_guard lock(mu_);
  return count_;
}

void ConsoleWaiters::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool ConsoleWaiters::Poll(Waiter& w, bool final) {
  try {
    ConsoleRead r = w.read();
    bool news = !r.text.empty() || r.lost;
    bool running = w.running();
    if (!news && running && !final && std::chrono::steady_clock::now() < w.deadline) return false;
    // The output written just before the exit may have landed since the read.
    if (!news && !running) r = w.read();
    w.reply(w.response, r, running);
  } catch (const std::exception&) {
    // The client went away (the send found no peer) or the log became unreadable.
  }
  return true;
}

void ConsoleWaiters::Run() {
  std::list<Waiter> waiting;  // only this thread touches them
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, interval_, [&] { return stop_ || !incoming_.empty(); });
    waiting.splice(waiting.end(), incoming_);
    bool final = stop_;
    lock.unlock();
    size_t answered = 0;
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (Poll(*it, final)) {
        it = waiting.erase(it);
        ++answered;
      } else {
        ++it;
      }
    }
    lock.lock();
    count_ -= answered;
    if (final) return;
  }
}

}  // namespace berth::server
