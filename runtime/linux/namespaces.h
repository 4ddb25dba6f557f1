// Which namespaces a container gets and how: new ones are clone(2) flags; ones the spec
// names by path are joined with setns(2). A pid namespace must be joined by the process
// that forks the init (it applies to children); the rest are joined by the init itself,
// the user namespace first since it decides what the others allow.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/spec/spec.h"

namespace berth::container {

struct NamespacePlan {
  unsigned long clone_flags = 0;  // CLONE_NEW* for clone; cgroup is unshared after the move
  bool new_user = false;
  bool new_cgroup = false;
  bool new_network = false;
  // Namespaces to join: (CLONE_NEW* type, path), user first. Paths were checked to exist.
  std::vector<std::pair<int, std::string>> joins;
  std::string pid_join_path;
};

// kInvalidArgument naming the field for a missing path, a duplicate, or no new mount
// namespace (Berth always builds the root in a mount namespace of the container's own).
NamespacePlan PlanNamespaces(const spec::Spec& spec);

// The host id that `id` inside the container's user namespace maps to (mappings as the
// spec gives them); nullopt when no mapping covers it.
std::optional<uint32_t> HostIdFor(const std::vector<spec::IdMapping>& mappings, uint32_t id);

// setns(CLONE_NEWPID) when the spec joins a pid namespace.
void JoinPidNamespaceBeforeClone(const NamespacePlan& plan);
void JoinNamespacesInChild(const NamespacePlan& plan);

// A new network namespace starts with "lo" down; containers expect 127.0.0.1 to work.
void BringUpLoopback();

// A running container's namespaces, for exec: only those that differ from ours.
struct NamespaceFds {
  std::vector<std::pair<int, UniqueFd>> fds;  // (CLONE_NEW* type, fd), in join order
};
NamespaceFds OpenContainerNamespaces(pid_t init_pid);
// Joins them (the pid namespace takes effect for children: fork after this).
void EnterNamespaces(const NamespaceFds& fds);

}  // namespace berth::container
