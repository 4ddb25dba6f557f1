#include "runtime/linux/mount_plan.h"

#include <sys/mount.h>

#include <string_view>

#include "runtime/common/error.h"

namespace berth::container {
namespace {

struct FlagOption {
  std::string_view name;
  bool clear;
  unsigned long flag;
};

// The option words of mount(8) that are flags rather than filesystem data.
constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},
    {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},
    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},
    {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},
    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},
    {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},
    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},
    {"atime", true, MS_NOATIME},
    {"noatime", false, MS_NOATIME},
    {"diratime", true, MS_NODIRATIME},
    {"nodiratime", false, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"lazytime", false, MS_LAZYTIME},
    {"nolazytime", true, MS_LAZYTIME},
    {"bind", false, MS_BIND},
    {"rbind", false, MS_BIND | MS_REC},
    {"silent", false, MS_SILENT},
    {"loud", true, MS_SILENT},
};

constexpr std::pair<std::string_view, unsigned long> kPropagationOptions[] = {
    {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
};

unsigned long PropagationFromName(const std::string& name, const char* field) {
  if (name.empty()) return MS_PRIVATE | MS_REC;
  for (const auto& [n, f] : kPropagationOptions) {
    if (n == name) return f;
  }
  throw Error(ErrorKind::kInvalidArgument,
              std::string(field) + ": unknown propagation \"" + name + "\"");
}

bool IsAbsoluteClean(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (std::string_view(path).substr(start, end - start) == "..") return false;
    start = end + 1;
  }
  return true;
}

// Without a cgroup namespace the container must not see the host's cgroup tree: give it a
// tmpfs with only its own groups, read-only, as runc does for cgroup v1.
void AddCgroupMounts(const spec::Mount& m, const MountFlags& flags, const RootfsHostInfo& host,
                     std::vector<MountEntry>& out) {
  const unsigned long ro_flags = (flags.flags & MS_RDONLY) | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  if (host.cgroup_host.version == cgroup::CgroupVersion::kV2) {
    if (host.new_cgroup_namespace) {
      out.push_back({"cgroup2", m.destination, "cgroup2", {ro_flags, 0, ""}, false, false});
    } else {
      out.push_back(
          {host.unified_dir, m.destination, "", {ro_flags | MS_BIND | MS_REC, 0, ""}, true, true});
    }
    return;
  }
  out.push_back({"tmpfs",
                 m.destination,
                 "tmpfs",
                 {MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, "mode=755"},
                 false,
                 false});
  for (const auto& [controller, dir] : host.cgroup_dirs) {
    out.push_back({dir,
                   m.destination + "/" + controller,
                   "",
                   {MS_BIND | MS_REC | ro_flags, 0, ""},
                   true,
                   true});
  }
  // Read-only after the sub-mounts are in place.
  if (flags.flags & MS_RDONLY) {
    out.push_back({"",
                   m.destination,
                   "",
                   {MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, "mode=755"},
                   false,
                   false});
  }
}

}  // namespace

MountFlags ParseMountOptions(const std::vector<std::string>& options) {
  MountFlags out;
  for (const auto& opt : options) {
    bool matched = false;
    for (const auto& f : kFlagOptions) {
      if (f.name == opt) {
        if (f.clear) {
          out.flags &= ~f.flag;
        } else {
          out.flags |= f.flag;
        }
        matched = true;
        break;
      }
    }
    if (matched) continue;
    for (const auto& [name, flag] : kPropagationOptions) {
      if (name == opt) {
        out.propagation = flag;
        matched = true;
        break;
      }
    }
    // Options some runtimes understand that mean nothing to the kernel.
    if (matched || opt == "tmpcopyup" || opt == "defaults" || opt.empty()) continue;
    if (!out.data.empty()) out.data += ',';
    out.data += opt;
  }
  return out;
}

std::vector<DeviceNode> DefaultDevices() {
  return {
      {"/dev/null", 'c', 1, 3, 0666, 0, 0},    {"/dev/zero", 'c', 1, 5, 0666, 0, 0},
      {"/dev/full", 'c', 1, 7, 0666, 0, 0},    {"/dev/random", 'c', 1, 8, 0666, 0, 0},
      {"/dev/urandom", 'c', 1, 9, 0666, 0, 0}, {"/dev/tty", 'c', 5, 0, 0666, 0, 0},
  };
}

std::vector<spec::DeviceRule> EffectiveDeviceRules(const spec::Spec& spec) {
  std::vector<spec::DeviceRule> rules;
  if (spec.linux.resources) rules = spec.linux.resources->devices;
  auto allow = [&rules](const char* type, std::optional<int64_t> major,
                        std::optional<int64_t> minor, const char* access) {
    rules.push_back({true, type, major, minor, access});
  };
  // mknod of any node is harmless without read/write access to it.
  allow("c", std::nullopt, std::nullopt, "m");
  allow("b", std::nullopt, std::nullopt, "m");
  for (const auto& d : DefaultDevices()) allow("c", d.major, d.minor, "rwm");
  allow("c", 5, 1, "rwm");               // /dev/console
  allow("c", 5, 2, "rwm");               // /dev/ptmx
  allow("c", 136, std::nullopt, "rwm");  // /dev/pts/*
  for (const auto& d : spec.linux.devices) {
    if (d.type == "p") continue;
    allow(d.type == "b" ? "b" : "c", d.major, d.minor, "rwm");
  }
  return rules;
}

RootfsPlan BuildRootfsPlan(const spec::Spec& spec, const RootfsHostInfo& host) {
  RootfsPlan plan;
  plan.rootfs = spec.root.path;
  plan.readonly_root = spec.root.readonly;
  plan.root_propagation =
      PropagationFromName(spec.linux.rootfs_propagation, "linux.rootfsPropagation");
  plan.bind_devices = host.new_user_namespace;
  if (const auto* uts = spec.FindNamespace(spec::NamespaceType::kUts); uts && uts->path.empty()) {
    plan.hostname = spec.hostname;
  }
  plan.sysctl = spec.linux.sysctl;

  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const auto& m = spec.mounts[i];
    const std::string field = "mounts[" + std::to_string(i) + "]";
    if (!IsAbsoluteClean(m.destination)) {
      throw Error(ErrorKind::kInvalidArgument,
                  field + ".destination: must be an absolute path without \"..\": \"" +
                      m.destination + "\"");
    }
    MountFlags flags = ParseMountOptions(m.options);
    if (m.type == "cgroup" || m.type == "cgroup2") {
      AddCgroupMounts(m, flags, host, plan.mounts);
      continue;
    }
    if (m.type == "sysfs" && !host.new_network_namespace && !host.new_user_namespace) {
      // sysfs shows the network namespace of the mounter; without our own netns, bind the
      // host's read-only instead (runc does the same).
      plan.mounts.push_back(
          {"/sys",
           m.destination,
           "",
           {MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, ""},
           true,
           true});
      continue;
    }
    MountEntry entry;
    entry.source = m.source;
    entry.destination = m.destination;
    entry.type = m.type;
    entry.flags = flags;
    entry.bind = (flags.flags & MS_BIND) != 0 || m.type == "bind";
    if (entry.bind) {
      entry.flags.flags |= MS_BIND;
      if (m.source.empty()) {
        throw Error(ErrorKind::kInvalidArgument, field + ".source: a bind mount needs a source");
      }
      entry.remount_after_bind =
          (flags.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) != 0;
    } else if (m.type.empty()) {
      throw Error(ErrorKind::kInvalidArgument, field + ".type: required for a non-bind mount");
    }
    if (m.destination == "/dev" && m.type == "tmpfs") plan.populate_dev = true;
    plan.mounts.push_back(std::move(entry));
  }

  if (plan.populate_dev) {
    plan.devices = DefaultDevices();
    plan.dev_symlinks = {{"/proc/self/fd", "/dev/fd"},       {"/proc/self/fd/0", "/dev/stdin"},
                         {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
                         {"/proc/kcore", "/dev/core"},       {"pts/ptmx", "/dev/ptmx"}};
  }
  for (size_t i = 0; i < spec.linux.devices.size(); ++i) {
    const auto& d = spec.linux.devices[i];
    const std::string field = "linux.devices[" + std::to_string(i) + "]";
    if (!IsAbsoluteClean(d.path) || d.path.rfind("/dev/", 0) != 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  field + ".path: must be an absolute path under /dev: \"" + d.path + "\"");
    }
    DeviceNode node;
    node.path = d.path;
    if (d.type == "c" || d.type == "u") {
      node.type = 'c';
    } else if (d.type == "b" || d.type == "p") {
      node.type = d.type[0];
    } else {
      throw Error(ErrorKind::kInvalidArgument,
                  field + ".type: unknown device type \"" + d.type + "\"");
    }
    node.major = static_cast<unsigned>(d.major);
    node.minor = static_cast<unsigned>(d.minor);
    node.mode = d.file_mode.value_or(0666) & 07777;
    node.uid = d.uid.value_or(0);
    node.gid = d.gid.value_or(0);
    // A spec device replaces a default one with the same path.
    std::erase_if(plan.devices, [&](const DeviceNode& n) { return n.path == node.path; });
    plan.devices.push_back(node);
  }
  for (size_t i = 0; i < spec.linux.masked_paths.size(); ++i) {
    if (!IsAbsoluteClean(spec.linux.masked_paths[i])) {
      throw Error(ErrorKind::kInvalidArgument,
                  "linux.maskedPaths[" + std::to_string(i) + "]: must be an absolute path");
    }
  }
  for (size_t i = 0; i < spec.linux.readonly_paths.size(); ++i) {
    if (!IsAbsoluteClean(spec.linux.readonly_paths[i])) {
      throw Error(ErrorKind::kInvalidArgument,
                  "linux.readonlyPaths[" + std::to_string(i) + "]: must be an absolute path");
    }
  }
  plan.masked_paths = spec.linux.masked_paths;
  plan.readonly_paths = spec.linux.readonly_paths;
  return plan;
}

}  // namespace berth::container
