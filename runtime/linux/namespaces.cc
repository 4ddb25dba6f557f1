#include "runtime/linux/namespaces.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "runtime/common/error.h"

namespace berth::container {
namespace {

int CloneFlag(spec::NamespaceType type) {
  switch (type) {
    case spec::NamespaceType::kPid:
      return CLONE_NEWPID;
    case spec::NamespaceType::kNetwork:
      return CLONE_NEWNET;
    case spec::NamespaceType::kMount:
      return CLONE_NEWNS;
    case spec::NamespaceType::kIpc:
      return CLONE_NEWIPC;
    case spec::NamespaceType::kUts:
      return CLONE_NEWUTS;
    case spec::NamespaceType::kUser:
      return CLONE_NEWUSER;
    case spec::NamespaceType::kCgroup:
      return CLONE_NEWCGROUP;
  }
  return 0;
}

// Join order: user first (it grants the rights for the rest), mount last (after it, paths
// resolve inside the container).
constexpr std::pair<int, const char*> kJoinOrder[] = {
    {CLONE_NEWUSER, "user"}, {CLONE_NEWIPC, "ipc"}, {CLONE_NEWUTS, "uts"},
    {CLONE_NEWNET, "net"},   {CLONE_NEWPID, "pid"}, {CLONE_NEWCGROUP, "cgroup"},
    {CLONE_NEWNS, "mnt"},
};

void SetNs(const std::string& path, int type) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) ThrowErrno("open namespace", path);
  if (::setns(fd.get(), type) != 0) ThrowErrno("setns", path);
}

}  // namespace

NamespacePlan PlanNamespaces(const spec::Spec& spec) {
  NamespacePlan plan;
  bool new_mount = false;
  int seen = 0;
  std::vector<std::pair<int, std::string>> joins;
  for (size_t i = 0; i < spec.linux.namespaces.size(); ++i) {
    const auto& ns = spec.linux.namespaces[i];
    const std::string field = "linux.namespaces[" + std::to_string(i) + "]";
    int flag = CloneFlag(ns.type);
    if (seen & flag) {
      throw Error(ErrorKind::kInvalidArgument, field + ".type: duplicate namespace \"" +
                                                   spec::NamespaceTypeName(ns.type) + "\"");
    }
    seen |= flag;
    if (ns.path.empty()) {
      if (flag == CLONE_NEWNS) new_mount = true;
      if (flag == CLONE_NEWUSER) plan.new_user = true;
      if (flag == CLONE_NEWNET) plan.new_network = true;
      if (flag == CLONE_NEWCGROUP) {
        plan.new_cgroup = true;
        continue;  // unshared by the init once it is in its cgroup
      }
      plan.clone_flags |= static_cast<unsigned long>(flag);
      continue;
    }
    struct stat st;
    if (::stat(ns.path.c_str(), &st) != 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  field + ".path: cannot open namespace \"" + ns.path + "\": " + ErrnoName(errno));
    }
    if (flag == CLONE_NEWNS) {
      throw Error(ErrorKind::kInvalidArgument,
                  field +
                      ".path: joining a mount namespace is not supported; the container's "
                      "root is built in a new one");
    }
    if (flag == CLONE_NEWPID) {
      plan.pid_join_path = ns.path;
    } else {
      joins.emplace_back(flag, ns.path);
    }
  }
  if (!new_mount) {
    throw Error(ErrorKind::kInvalidArgument,
                "linux.namespaces: a new \"mount\" namespace is required");
  }
  for (const auto& [flag, name] : kJoinOrder) {
    for (auto& j : joins) {
      if (j.first == flag) plan.joins.push_back(j);
    }
  }
  if (plan.new_user && spec.linux.uid_mappings.empty()) {
    throw Error(ErrorKind::kInvalidArgument,
                "linux.uidMappings: a new user namespace needs uid mappings");
  }
  return plan;
}

void JoinPidNamespaceBeforeClone(const NamespacePlan& plan) {
  if (!plan.pid_join_path.empty()) SetNs(plan.pid_join_path, CLONE_NEWPID);
}

void JoinNamespacesInChild(const NamespacePlan& plan) {
  for (const auto& [flag, path] : plan.joins) SetNs(path, flag);
}

std::optional<uint32_t> HostIdFor(const std::vector<spec::IdMapping>& mappings, uint32_t id) {
  for (const auto& m : mappings) {
    if (id >= m.container_id && uint64_t{id} < uint64_t{m.container_id} + m.size) {
      return m.host_id + (id - m.container_id);
    }
  }
  return std::nullopt;
}

void BringUpLoopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) ThrowErrno("socket", "lo");
  struct ifreq ifr = {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) ThrowErrno("SIOCGIFFLAGS", "lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) ThrowErrno("SIOCSIFFLAGS", "lo");
}

NamespaceFds OpenContainerNamespaces(pid_t init_pid) {
  NamespaceFds out;
  const std::string base = "/proc/" + std::to_string(init_pid) + "/ns/";
  for (const auto& [flag, name] : kJoinOrder) {
    std::string theirs = base + name;
    std::string ours = std::string("/proc/self/ns/") + name;
    struct stat a, b;
    if (::stat(theirs.c_str(), &a) != 0) ThrowErrno("stat", theirs);
    if (::stat(ours.c_str(), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
    UniqueFd fd(::open(theirs.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) ThrowErrno("open", theirs);
    out.fds.emplace_back(flag, std::move(fd));
  }
  return out;
}

void EnterNamespaces(const NamespaceFds& fds) {
  for (const auto& [flag, fd] : fds.fds) {
    if (::setns(fd.get(), flag) != 0) {
      ThrowErrno("setns", std::to_string(flag));
    }
  }
}

}  // namespace berth::container
