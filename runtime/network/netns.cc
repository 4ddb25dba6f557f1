#include "runtime/network/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>

#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::net {

UniqueFd OpenNetnsOfPid(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", path);
  return fd;
}

UniqueFd OpenCurrentNetns() {
  UniqueFd fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", "/proc/thread-self/ns/net");
  return fd;
}

UniqueFd OpenNetns(const NetnsRef& ref) {
  if (ref.fd >= 0) {
    UniqueFd fd(::fcntl(ref.fd, F_DUPFD_CLOEXEC, 0));
    if (!fd) ThrowErrno("dup", "netns fd " + std::to_string(ref.fd));
    return fd;
  }
  if (ref.pid > 0) return OpenNetnsOfPid(ref.pid);
  return UniqueFd();
}

void RunInNetnsImpl(int netns_fd, const std::function<void()>& fn) {
  if (netns_fd < 0) {
    fn();
    return;
  }
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) ThrowErrno("setns", "CLONE_NEWNET");
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
}

UniqueFd CreateNetns() {
  UniqueFd result;
  std::exception_ptr failure;
  std::thread worker([&] {
    try {
      if (::unshare(CLONE_NEWNET) != 0) ThrowErrno("unshare", "CLONE_NEWNET");
      result = OpenCurrentNetns();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
  return result;
}

void PinNetns(int netns_fd, const std::string& path) {
  UniqueFd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!file) ThrowErrno("open", path);
  file.reset();
  std::string source = "/proc/self/fd/" + std::to_string(netns_fd);
  if (::mount(source.c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    int err = errno;
    ::unlink(path.c_str());
    throw Error::FromErrno("mount", path, err).WithContext("pin network namespace");
  }
}

UniqueFd OpenPinnedNetns(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return UniqueFd();
    ThrowErrno("open", path);
  }
  struct statfs fs {};
  if (::fstatfs(fd.get(), &fs) != 0) ThrowErrno("fstatfs", path);
  if (fs.f_type != NSFS_MAGIC) return UniqueFd();
  return fd;
}

void UnpinNetns(const std::string& path) {
  // EINVAL: not a mount point (never pinned, or a pin's file after a reboot).
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    ThrowErrno("umount", path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink", path);
}

void WriteNetSysctl(int netns_fd, const std::string& key, const std::string& value) {
  RunInNetns(netns_fd, [&] { WriteToFile("/proc/sys/" + key, value); });
}

}  // namespace berth::net
