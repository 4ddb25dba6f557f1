// SHA-256 on a second thread. An import reads, hashes and extracts each layer in one pass;
// hashing is a third of the CPU of an uncompressed import, so the extracting thread hands
// each buffer it has read to this thread and goes on writing files while it is hashed.
//
// Jobs are hashed in the order they were submitted, so several digests can share one
// hasher (a layer's blob digest and its diff_id). A buffer belongs to the hasher from
// Submit until WaitFor(ticket) returns: BufferRing hands out buffers on that rule.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/store/blob/digest.h"

namespace berth::store {

class BackgroundHasher {
 public:
  BackgroundHasher();
  ~BackgroundHasher() { Stop(); }
  BackgroundHasher(const BackgroundHasher&) = delete;
  BackgroundHasher& operator=(const BackgroundHasher&) = delete;

  // Queues `size` bytes at `data` for `hash`; returns the job's ticket (> 0).
  uint64_t Submit(Sha256& hash, const char* data, size_t size);
  // Returns once the job with `ticket` (and every earlier one) is hashed; 0 returns at once.
  // Rethrows an error the hasher met.
  void WaitFor(uint64_t ticket);
  void Drain();
  // Drops jobs not started yet and waits for the running one; the owner of the buffers
  // calls it before freeing them. Idempotent.
  void Stop();

 private:
  struct Job {
    Sha256* hash;
    const char* data;
    size_t size;
  };
  void Run();

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<Job> jobs_;
  uint64_t submitted_ = 0;
  uint64_t done_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

// A few equal buffers used in turn. Next() hands out the oldest one once the hasher is
// done with it; Hashing() records the ticket of what was submitted from it.
class BufferRing {
 public:
  BufferRing(BackgroundHasher& hasher, size_t count, size_t size);
  char* Next();
  void Hashing(uint64_t ticket) { tickets_[current_] = ticket; }
  size_t buffer_size() const { return size_; }

 private:
  BackgroundHasher& hasher_;
  size_t size_;
  std::vector<std::vector<char>> buffers_;
  std::vector<uint64_t> tickets_;
  size_t current_ = 0;
};

}  // namespace berth::store
