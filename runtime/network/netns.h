// Network namespaces as file descriptors, and running code inside one without moving the
// caller. berthd is multi-threaded and setns(2) changes only the calling thread, so every
// "inside that namespace" step runs on a short-lived std::thread that joins the namespace,
// does the work and ends; the caller's thread never changes namespace. A netlink socket
// (or any socket) opened on such a thread stays bound to that namespace and may then be
// used from any thread.
#pragma once

#include <sys/types.h>

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "runtime/common/unique_fd.h"

namespace berth::net {

// Refers to a network namespace: an open nsfs fd, or a process whose namespace it is.
// Neither is owned. fd < 0 and pid <= 0: the caller's current namespace.
struct NetnsRef {
  int fd = -1;
  pid_t pid = 0;
  static NetnsRef Fd(int fd) { return NetnsRef{fd, 0}; }
  static NetnsRef Pid(pid_t pid) { return NetnsRef{-1, pid}; }
  bool is_current() const { return fd < 0 && pid <= 0; }
};

// /proc/<pid>/ns/net, O_RDONLY|O_CLOEXEC.
UniqueFd OpenNetnsOfPid(pid_t pid);
// The calling thread's own namespace (/proc/thread-self/ns/net).
UniqueFd OpenCurrentNetns();
// An fd for ref (a dup when ref is already an fd), or an invalid UniqueFd for "current".
UniqueFd OpenNetns(const NetnsRef& ref);

// A new, empty network namespace (only "lo", down), alive while the fd is open. Made by a
// helper thread that unshares, so the caller stays where it is.
UniqueFd CreateNetns();

// Pins the namespace on `path`, as `ip netns add` does: an empty file is made there and the
// namespace's nsfs file bind-mounted over it, so the namespace lives on without any
// process or fd holding it (across a restart of the caller), until UnpinNetns.
void PinNetns(int netns_fd, const std::string& path);
// The namespace pinned on `path`, or an invalid UniqueFd when nothing is: no file, or a
// plain file (the mount of a pin does not survive a reboot; its file does).
UniqueFd OpenPinnedNetns(const std::string& path);
// Unmounts and removes the pin; idempotent. The namespace ends once nothing else holds it
// (a process, an fd, a socket opened inside it).
void UnpinNetns(const std::string& path);

// Runs fn on a helper thread that first setns(netns_fd, CLONE_NEWNET); returns its result
// or rethrows its exception. netns_fd < 0 runs fn right here.
void RunInNetnsImpl(int netns_fd, const std::function<void()>& fn);

template <typename Fn>
auto RunInNetns(int netns_fd, Fn&& fn) -> std::invoke_result_t<Fn> {
  using R = std::invoke_result_t<Fn>;
  if constexpr (std::is_void_v<R>) {
    RunInNetnsImpl(netns_fd, std::forward<Fn>(fn));
  } else {
    std::optional<R> result;
    RunInNetnsImpl(netns_fd, [&] { result.emplace(fn()); });
    return std::move(*result);
  }
}

// Writes a /proc/sys/net value (e.g. "net/ipv4/ip_forward") in the given namespace; the
// net sysctls are per namespace and resolved against the writing thread's namespace.
void WriteNetSysctl(int netns_fd, const std::string& key, const std::string& value);

}  // namespace berth::net
