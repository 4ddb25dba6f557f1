// Console follow: GET /v1/instances/{uuid}/console?follow=true[&since=CURSOR][&wait=S].
//
// A long poll, not a stream: Debian 12's Pistache (0.0.5) aborts when a chunked
// ResponseStream is flushed from a thread other than its worker (pistache issue #1006,
// fixed upstream in 2025), and a stream written from the worker would hold that thread for
// as long as the client follows. So every answer carries a cursor; a request with
// `since` waits (up to `wait` seconds) until the log has grown past it, and waiting
// requests are parked with ConsoleWaiters, whose one thread answers them through
// ResponseWriter::send (which only queues the write for the worker, safe from any thread).
//
// The monitor rotates console.log into console.log.1 (runtime/monitor/console_rotation.h).
// A cursor names the file by inode, generation and birth time (an inode number alone is
// reused on ext4 as soon as the file is gone; the generation, where the filesystem has
// one, changes on reuse; tmpfs never reuses a number) and an offset in it, so a reader that was in
// the file now called console.log.1 reads the rest of it and then the new console.log: nothing is
// lost or repeated unless the log rotated twice between two polls (then `lost` is set).
#pragma once

#include <pistache/http.h>
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace berth::server {

// Last `lines` lines of text.
std::string TailLines(const std::string& text, size_t lines);

struct ConsoleCursor {
  uint64_t inode = 0;
  uint64_t generation = 0;  // FS_IOC_GETVERSION; 0 where the filesystem has none
  uint64_t born_ns = 0;     // birth time; 0 where the filesystem does not record it
  uint64_t offset = 0;
  bool SameFile(const ConsoleCursor& o) const {
    return inode == o.inode && generation == o.generation && born_ns == o.born_ns;
  }
  std::string str() const;  // "<inode>-<generation>-<born_ns>-<offset>", decimal
  // kInvalidArgument for anything that is not what str() makes.
  static ConsoleCursor Parse(const std::string& text);
};

struct ConsoleRead {
  std::string text;
  ConsoleCursor next;
  bool lost = false;  // the cursor's file is gone: text starts at the oldest output kept
};

// From the container state dir's console.log.1 and console.log. Without a cursor: the
// last `lines` lines (and the cursor at the end). With one: what was written after it, up
// to `max` bytes.
ConsoleRead ReadConsole(const std::string& dir, const std::optional<ConsoleCursor>& since,
                        size_t lines, size_t max);

class ConsoleWaiters {
 public:
  // What a parked request needs: its reader (returns an empty text while nothing new), a
  // running check (an answer goes out, empty, once the instance stops) and the reply.
  struct Waiter {
    Pistache::Http::ResponseWriter response;
    std::function<ConsoleRead()> read;
    std::function<bool()> running;
    std::function<void(Pistache::Http::ResponseWriter&, const ConsoleRead&, bool running)> reply;
    std::chrono::steady_clock::time_point deadline;
    ConsoleCursor since;
  };

  ConsoleWaiters(size_t max_waiters, std::chrono::milliseconds interval);
  ~ConsoleWaiters() { Stop(); }
  ConsoleWaiters(const ConsoleWaiters&) = delete;
  ConsoleWaiters& operator=(const ConsoleWaiters&) = delete;

  // False when full or stopped; the waiter is then untouched (the caller answers).
  bool Park(Waiter& waiter);
  // Answers every parked request with what there is (berthd's shutdown, before the
  // endpoint that owns the transport goes).
  void Stop();
  size_t size();

 private:
  // True when the waiter was answered.
  static bool Poll(Waiter& w, bool final);
  void Run();

  size_t max_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  size_t count_ = 0;
  std::list<Waiter> incoming_;
  std::thread thread_;
};

}  // namespace berth::server
