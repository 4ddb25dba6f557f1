// CreateContainer run in a small helper process.
//
// A container's create forks twice and clones once (see container.h). Forking copies the
// forking process's page tables, so from a daemon with many threads and a large heap
// (berthd) those forks cost several milliseconds each, and more on a paravirtualized guest
// where page-table updates trap. The spawner is a process forked from the daemon at the
// very start, while it is still small and single-threaded; every later create is sent to it
// over a socket and its forks are cheap. It ends with the process that started it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "runtime/common/unique_fd.h"
#include "runtime/linux/container.h"
#include "runtime/linux/shell.h"

namespace berth::container {

class Spawner {
 public:
  // Forks the spawner. Call before any thread exists: the child must not inherit a lock
  // another thread holds. Throws on failure (fork, socketpair).
  // `shells`: how many shells (shell.h) it keeps made ahead for the shape the caller says
  // comes next; 0: none, every create makes its processes. With shells, the spawner forks
  // a zygote (shell_zygote.h) first thing, which makes them: the spawner itself never forks
  // for a shell. If the zygote dies, the spawner says so on stderr and creates go cold.
  static std::unique_ptr<Spawner> Start(size_t shells = 0);

  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;
  ~Spawner();  // ends the spawner and reaps it

  // CreateContainer in the spawner; the same result and the same errors (kind and message).
  // inherit_stdio and console_socket are not supported: they belong to the caller's
  // process. Creates may run concurrently, each on a thread of the spawner.
  // If the spawner has died, throws kSystem and alive() turns false: the caller then calls
  // CreateContainer itself.
  // `spec_json`: options.spec as spec::SerializeSpec wrote it, when the caller has it
  // already (berthd writes it to the bundle); empty: serialized here.
  // `used_shell`, when given, says whether this create claimed a shell.
  StateRecord Create(const CreateOptions& options, std::string_view spec_json = {},
                     bool* used_shell = nullptr);

  // The shape the caller's next create will likely have (its next user-namespace slot):
  // the spawner makes shells for it, dropping those of other shapes. Returns at once. Call
  // it when the machine is otherwise idle (after a spawn, not during one): making a shell
  // costs about what a create does.
  void Prepare(const ShellShape& next);

  // Prepare, and the shell, once made, is handed over to this process (a thread of ours
  // waits for it): a create of that shape then claims it here, TakeShell and
  // CreateContainer(options, shell), with no request to the spawner on its path: no
  // request to encode and decode, and the monitor answers the caller itself. One shell is
  // held at a time: an Expect of another shape drops the one held. Returns at once.
  void Expect(const ShellShape& next);
  // The shell held for this shape, if it is still alive; else null (create through the
  // spawner, as before).
  std::unique_ptr<Shell> TakeShell(const ShellShape& shape);

  bool alive() const { return alive_.load(); }
  pid_t pid() const { return pid_; }

 private:
  Spawner(pid_t pid, UniqueFd control);

  // Sends one request on a new stream socket; returns our end, or an empty fd (and alive()
  // turns false) when the spawner is gone.
  UniqueFd SendRequest(const std::string& body);
  void FetchShells();  // the thread Expect starts: waits for each expected shell

  pid_t pid_ = -1;
  std::atomic<bool> alive_{true};
  std::mutex send_mu_;  // one request's fd and header at a time on the control socket
  UniqueFd control_;

  std::mutex held_mu_;
  std::condition_variable held_cv_;
  std::optional<ShellShape> expected_;  // the next shell to fetch, once the fetcher is free
  std::unique_ptr<Shell> held_;
  std::optional<ShellShape> fetching_;  // the shape of the fetcher's request in flight
  int fetching_fd_ = -1;  // the fetcher's request in flight: shut down to stop waiting
  bool stopping_ = false;
  std::thread fetcher_;
};

}  // namespace berth::container
