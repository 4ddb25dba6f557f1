// Finding the cgroup hierarchies from /proc/self/mountinfo.
#include <sys/stat.h>

#include <mutex>
#include <set>
#include <sstream>

#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/file_util.h"

namespace berth::cgroup {

namespace {

// The v1 controllers the kernel knows; super options hold these next to flags such as
// "rw", "noprefix" or "name=systemd" (a named hierarchy with no controller).
const std::set<std::string>& KnownV1Controllers() {
  static const std::set<std::string> names = {
      "cpu",   "cpuacct",    "cpuset",   "memory",  "devices", "freezer", "net_cls",
      "blkio", "perf_event", "net_prio", "hugetlb", "pids",    "rdma",    "misc"};
  return names;
}

bool IsOctal(char c) { return c >= '0' && c <= '7'; }

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && IsOctal(field[i + 1]) &&
        IsOctal(field[i + 2]) && IsOctal(field[i + 3])) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

struct MountLine {
  std::string mount_point;
  std::string fs_type;
  std::string super_options;
};

std::optional<MountLine> ParseMountLine(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> fields;
  std::string f;
  while (in >> f) fields.push_back(f);
  // id parent maj:min root mount_point options [optional...] - fstype source super_options
  size_t dash = 6;
  while (dash < fields.size() && fields[dash] != "-") ++dash;
  if (dash + 3 >= fields.size()) return std::nullopt;
  return MountLine{Unescape(fields[4]), fields[dash + 1], fields[dash + 3]};
}

bool IsUnder(const std::string& path, const std::string& root) {
  if (path == root) return true;
  std::string prefix = root;
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
  return path.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

CgroupHost ParseCgroupHost(const std::string& mountinfo, const std::string& root) {
  CgroupHost host;
  host.root = root;
  std::string unified_elsewhere;
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    auto m = ParseMountLine(line);
    if (!m || !IsUnder(m->mount_point, root)) continue;
    if (m->fs_type == "cgroup2") {
      if (m->mount_point == root) {
        host.unified_mount = m->mount_point;
      } else if (unified_elsewhere.empty()) {
        unified_elsewhere = m->mount_point;
      }
    } else if (m->fs_type == "cgroup") {
      for (const std::string& opt : Split(m->super_options, ',')) {
        if (KnownV1Controllers().count(opt)) host.v1_mounts.emplace(opt, m->mount_point);
      }
    }
  }
  if (!host.unified_mount.empty()) {
    host.version = CgroupVersion::kV2;
  } else {
    host.version = CgroupVersion::kV1;
    host.unified_mount = unified_elsewhere;
  }
  if (!host.unified_mount.empty()) {
    if (auto controllers =
            internal::ReadTrimmed(JoinPath(host.unified_mount, "cgroup.controllers"))) {
      for (const std::string& c : Split(*controllers, ' ')) {
        if (!c.empty()) host.unified_controllers.push_back(c);
      }
    }
  }
  return host;
}

CgroupHost DetectCgroupHost(const std::string& root) {
  return ParseCgroupHost(ReadFile("/proc/self/mountinfo"), root);
}

namespace {

struct PathStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  int64_t mtime_ns = 0;
  bool operator==(const PathStamp&) const = default;
};

PathStamp Stamp(const std::string& path, bool with_mtime) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return {};
  return {
      st.st_dev, st.st_ino,
      with_mtime ? static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec : 0};
}

// What a layout depends on, in a fixed order: the mount namespace, the root, the cgroup2
// mount, each v1 mount point (a mount over one changes its device and inode). The root's
// mtime too when it is not a hierarchy itself (v1: a tmpfs), where a new hierarchy would
// add a directory; a hierarchy's directory changes with every group made at its top (other
// software's, all the time), so a hierarchy is stamped without it.
std::vector<PathStamp> Fingerprint(const CgroupHost& host) {
  std::vector<PathStamp> out = {Stamp("/proc/thread-self/ns/mnt", false),
                                Stamp(host.root, host.version == CgroupVersion::kV1)};
  if (!host.unified_mount.empty()) out.push_back(Stamp(host.unified_mount, false));
  for (const auto& [controller, mount] : host.v1_mounts) out.push_back(Stamp(mount, false));
  return out;
}

bool SameLayout(const CgroupHost& a, const CgroupHost& b) {
  return a.version == b.version && a.root == b.root && a.v1_mounts == b.v1_mounts &&
         a.unified_mount == b.unified_mount && a.unified_controllers == b.unified_controllers;
}

struct HostCache {
  std::mutex mu;
  std::optional<CgroupHost> host;
  std::vector<PathStamp> fingerprint;
};

HostCache& Cache() {
  static HostCache* cache = new HostCache();  // never destroyed: used until exit
  return *cache;
}

}  // namespace

CgroupHost CachedCgroupHost() {
  HostCache& cache = Cache();
  std::lock_guard lock(cache.mu);
  if (cache.host && Fingerprint(*cache.host) == cache.fingerprint) return *cache.host;
  // A layout is kept only with a fingerprint taken between two reads that agree: a change
  // after the fingerprint shows as a mismatch on the next call.
  CgroupHost first = DetectCgroupHost();
  std::vector<PathStamp> fingerprint = Fingerprint(first);
  CgroupHost host = DetectCgroupHost();
  if (SameLayout(first, host)) {
    cache.host = host;
    cache.fingerprint = std::move(fingerprint);
  } else {
    cache.host.reset();
  }
  return host;
}

void ForgetCachedCgroupHost() {
  HostCache& cache = Cache();
  std::lock_guard lock(cache.mu);
  cache.host.reset();
}

}  // namespace berth::cgroup
