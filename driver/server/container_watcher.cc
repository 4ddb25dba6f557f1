#include "driver/server/container_watcher.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <set>

#include <spdlog/spdlog.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/monitor/protocol.h"

namespace berth::server {
namespace {

// In the root: container directories appearing (made in place, or renamed in).
constexpr uint32_t kRootMask = IN_CREATE | IN_MOVED_TO | IN_ONLYDIR;
// In a container directory: status.json renamed in (the monitor writes it atomically). The
// directory's removal comes as IN_IGNORED, which needs no bit. Not IN_MODIFY: the console
// log is written there all the time.
constexpr uint32_t kContainerMask = IN_MOVED_TO | IN_ONLYDIR;

}  // namespace

ContainerWatcher::ContainerWatcher(const std::string& state_root, Changed changed, Lost lost)
    : root_(state_root), changed_(std::move(changed)), lost_(std::move(lost)) {
  inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_) ThrowErrno("inotify_init1");
  root_wd_ = ::inotify_add_watch(inotify_.get(), root_.c_str(), kRootMask);
  if (root_wd_ < 0) ThrowErrno("inotify_add_watch", root_);
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_) ThrowErrno("eventfd");
  thread_ = std::thread([this] { Run(); });
}

ContainerWatcher::~ContainerWatcher() {
  uint64_t one = 1;
  if (::write(wake_.get(), &one, sizeof one) != sizeof one) {
    spdlog::error("container watcher: cannot stop its thread: {}", ErrnoName(errno));
  }
  thread_.join();
}

void ContainerWatcher::WatchContainer(const std::string& id) {
  if (id.empty() || id[0] == '.') return;
  const std::string dir = JoinPath(root_, id);
  int wd = ::inotify_add_watch(inotify_.get(), dir.c_str(), kContainerMask);
  if (wd < 0) {
    // Gone again, or a file: nothing to watch. Anything else (no watches left) is worth
    // saying: that container's changes will only be seen by polling.
    if (errno != ENOENT && errno != ENOTDIR) {
      spdlog::warn("container watcher: inotify_add_watch {}: {}", dir, ErrnoName(errno));
    }
    return;
  }
  ids_[wd] = id;
}

void ContainerWatcher::Notify(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    spdlog::warn("container watcher: {}", e.what());
  }
}

void ContainerWatcher::Run() {
  // Containers that existed before the root was watched.
  if (DIR* d = ::opendir(root_.c_str())) {
    while (auto* e = ::readdir(d)) WatchContainer(e->d_name);
    ::closedir(d);
  }
  Notify(lost_);
  pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  for (;;) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("container watcher: poll: {}", ErrnoName(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) ReadEvents();
  }
}

void ContainerWatcher::ReadEvents() {
  alignas(inotify_event) char buf[16384];
  std::set<std::string> changed;  // a burst of events for one container: one callback
  bool lost = false;
  for (;;) {
    ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: all read
    for (char* p = buf; p < buf + n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        lost = true;
        continue;
      }
      const std::string name = e->len > 0 ? e->name : "";
      if (e->wd == root_wd_) {
        if (e->mask & IN_ISDIR) {
          WatchContainer(name);
          changed.insert(name);  // it may have written its status before the watch
        }
        continue;
      }
      auto it = ids_.find(e->wd);
      if (it == ids_.end()) continue;
      if (e->mask & IN_IGNORED) {
        changed.insert(it->second);
        ids_.erase(it);
      } else if (name == monitor::kStatusFile) {
        changed.insert(it->second);
      }
    }
  }
  if (lost) {
    Notify(lost_);
    return;
  }
  for (const auto& id : changed) Notify([&] { changed_(id); });
}

}  // namespace berth::server
