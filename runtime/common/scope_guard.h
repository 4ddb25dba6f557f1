// Runs a rollback action at scope exit unless dismissed: creation steps register their
// undo as they succeed, and the whole chain unwinds if a later step throws.
#pragma once

#include <functional>
#include <utility>
#include <vector>

namespace berth {

template <typename Fn>
class ScopeGuard {
 public:
  explicit ScopeGuard(Fn fn) : fn_(std::move(fn)) {}
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;
  ~ScopeGuard() {
    if (active_) {
      try {
        fn_();
      } catch (...) {
        // A rollback that fails must not mask the error that caused it.
      }
    }
  }
  void Dismiss() { active_ = false; }

 private:
  Fn fn_;
  bool active_ = true;
};

// An ordered list of undo actions, run last-first unless committed.
class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() { Run(); }

  void Add(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  void Commit() { undo_.clear(); }
  void Run() {
    while (!undo_.empty()) {
      auto fn = std::move(undo_.back());
      undo_.pop_back();
      try {
        fn();
      } catch (...) {
      }
    }
  }

 private:
  std::vector<std::function<void()>> undo_;
};

}  // namespace berth
