// process.rlimits: resolved and checked before clone, so a limit the kernel would refuse
// is reported to the caller with its field instead of failing in the child.
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <utility>

#include "runtime/common/error.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

std::optional<int> ResourceByName(std::string_view name) {
  static const std::pair<std::string_view, int> kResources[] = {
      {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_CORE", RLIMIT_CORE},
      {"RLIMIT_CPU", RLIMIT_CPU},
      {"RLIMIT_DATA", RLIMIT_DATA},
      {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
      {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_NPROC", RLIMIT_NPROC},
      {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
      {"RLIMIT_RTTIME", RLIMIT_RTTIME},
      {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_STACK", RLIMIT_STACK},
  };
  for (const auto& [resource_name, resource] : kResources) {
    if (resource_name == name) return resource;
  }
  return std::nullopt;
}

std::string LimitText(uint64_t value) {
  return value == RLIM_INFINITY ? std::string("unlimited") : std::to_string(value);
}

}  // namespace

bool HasEffectiveCapability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) ThrowErrno("capget");
  return (data[cap / 32].effective >> (cap % 32)) & 1u;
}

std::vector<PreparedRlimit> PrepareRlimits(const std::vector<spec::Rlimit>& rlimits) {
  bool may_raise = HasEffectiveCapability(CAP_SYS_RESOURCE);
  std::vector<PreparedRlimit> prepared;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const spec::Rlimit& limit = rlimits[i];
    std::string field = "process.rlimits[" + std::to_string(i) + "]";
    std::optional<int> resource = ResourceByName(limit.type);
    if (!resource) {
      throw Error(ErrorKind::kInvalidArgument,
                  field + ".type: unknown rlimit \"" + limit.type + "\"");
    }
    if (limit.soft > limit.hard) {
      throw Error(ErrorKind::kInvalidArgument, field + ": " + limit.type + " soft limit " +
                                                   LimitText(limit.soft) + " is above hard limit " +
                                                   LimitText(limit.hard));
    }
    // Raising a hard limit needs CAP_SYS_RESOURCE; without it setrlimit in the child would
    // fail with a bare EPERM.
    if (!may_raise) {
      rlimit current{};
      if (::getrlimit(*resource, &current) != 0) ThrowErrno("getrlimit", limit.type);
      if (limit.hard > current.rlim_max) {
        throw Error(ErrorKind::kInvalidArgument,
                    field + ".hard: " + limit.type + " hard limit " + LimitText(limit.hard) +
                        " is above this process's hard limit " + LimitText(current.rlim_max) +
                        " and CAP_SYS_RESOURCE is not held");
      }
    }
    prepared.push_back({*resource, limit.soft, limit.hard});
  }
  return prepared;
}

}  // namespace berth::security
