// Which containers under a runtime state root changed state, as it happens: their monitor
// rewrote status.json (it does at every change: started, paused, resumed, exited; see
// runtime/monitor/protocol.h), or their state directory went away. One inotify watch per
// container directory, read by a thread of its own, so berthd's cached instance views need
// no polling to see an instance that exits on its own.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <thread>

#include "runtime/common/unique_fd.h"

namespace berth::server {

class ContainerWatcher {
 public:
  using Changed = std::function<void(const std::string& id)>;
  using Lost = std::function<void()>;

  // Watches `state_root` (it must exist) and the container directories in it, now and
  // later. The callbacks run on the watcher's thread, one at a time: `changed` with a
  // container's id, `lost` when changes may have gone unseen (once at start, for changes
  // before the watches existed, and when the kernel's event queue overflowed).
  ContainerWatcher(const std::string& state_root, Changed changed, Lost lost);
  ~ContainerWatcher();  // stops and joins the thread

  ContainerWatcher(const ContainerWatcher&) = delete;
  ContainerWatcher& operator=(const ContainerWatcher&) = delete;

 private:
  void Run();
  // Reads what the kernel queued and calls the callbacks.
  void ReadEvents();
  void Notify(const std::function<void()>& call);
  // Missing (already deleted) or not a directory: nothing to watch.
  void WatchContainer(const std::string& id);

  std::string root_;
  Changed changed_;
  Lost lost_;
  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: the destructor's stop
  int root_wd_ = -1;
  std::map<int, std::string> ids_;  // watch descriptor -> container id (the thread's only)
  std::thread thread_;
};

}  // namespace berth::server
