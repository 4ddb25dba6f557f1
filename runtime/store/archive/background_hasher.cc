#include "runtime/store/archive/background_hasher.h"

namespace berth::store {

BackgroundHasher::BackgroundHasher() : thread_([this] { Run(); }) {}

void BackgroundHasher::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

uint64_t BackgroundHasher::Submit(Sha256& hash, const char* data, size_t size) {
  uint64_t ticket;
  {
    std::lock_guard lock(mu_);
    jobs_.push_back({&hash, data, size});
    ticket = ++submitted_;
  }
  work_cv_.notify_one();
  return ticket;
}

void BackgroundHasher::WaitFor(uint64_t ticket) {
  std::unique_lock lock(mu_);
  done_cv_.wait(lock, [&] { return done_ >= ticket || error_; });
  if (error_) std::rethrow_exception(error_);
}

void BackgroundHasher::Drain() {
  uint64_t last;
  {
    std::lock_guard lock(mu_);
    last = submitted_;
  }
  WaitFor(last);
}

void BackgroundHasher::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    Job job = jobs_.front();
    jobs_.pop_front();
    lock.unlock();
    std::exception_ptr error;
    try {
      job.hash->Update(job.data, job.size);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !error_) error_ = error;
    ++done_;
    done_cv_.notify_all();
  }
}

BufferRing::BufferRing(BackgroundHasher& hasher, size_t count, size_t size)
    : hasher_(hasher), size_(size), buffers_(count, std::vector<char>(size)), tickets_(count, 0) {}

char* BufferRing::Next() {
  current_ = (current_ + 1) % buffers_.size();
  hasher_.WaitFor(tickets_[current_]);
  tickets_[current_] = 0;
  return buffers_[current_].data();
}

}  // namespace berth::store
