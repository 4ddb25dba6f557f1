#include "runtime/store/layer/mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <map>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::store {
namespace {

// The kernel copies at most one page of mount data.
size_t PageLimit() { return static_cast<size_t>(::sysconf(_SC_PAGESIZE)) - 1; }

void MountWithFsConfig(const Mount& m, const MountPlan& plan, const std::string& target) {
  UniqueFd fs(::fsopen(m.type.c_str(), FSOPEN_CLOEXEC));
  if (!fs) ThrowErrno("fsopen " + m.type, target);
  auto set = [&](const std::string& key, const std::string& value) {
    if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key.c_str(), value.c_str(), 0) != 0) {
      ThrowErrno("fsconfig " + key, value);
    }
  };
  auto set_flag = [&](const std::string& key) {
    if (::fsconfig(fs.get(), FSCONFIG_SET_FLAG, key.c_str(), nullptr, 0) != 0) {
      ThrowErrno("fsconfig " + key, target);
    }
  };
  for (const std::string& opt : m.options) {
    auto eq = opt.find('=');
    std::string key = opt.substr(0, eq);
    if (key == "ro" || key == "rw" || key == "nodev" || key == "nosuid" || key == "noexec") {
      continue;  // mount attributes, applied at fsmount
    }
    if (key == "lowerdir") {
      std::string list = opt.substr(eq + 1);
      for (size_t start = 0; start <= list.size();) {
        size_t colon = list.find(':', start);
        if (colon == std::string::npos) colon = list.size();
        set("lowerdir+", list.substr(start, colon - start));
        start = colon + 1;
      }
    } else if (eq == std::string::npos) {
      set_flag(key);
    } else {
      set(key, opt.substr(eq + 1));
    }
  }
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    ThrowErrno("fsconfig create " + m.type, target);
  }
  unsigned int attrs = 0;
  if (plan.flags & MS_RDONLY) attrs |= MOUNT_ATTR_RDONLY;
  if (plan.flags & MS_NODEV) attrs |= MOUNT_ATTR_NODEV;
  if (plan.flags & MS_NOSUID) attrs |= MOUNT_ATTR_NOSUID;
  if (plan.flags & MS_NOEXEC) attrs |= MOUNT_ATTR_NOEXEC;
  UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, attrs));
  if (!mnt) ThrowErrno("fsmount " + m.type, target);
  if (::move_mount(mnt.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    ThrowErrno("move_mount", target);
  }
}

}  // namespace

MountPlan PlanMount(const Mount& m) {
  static const std::map<std::string, std::pair<unsigned long, bool>> kFlags = {
      // name -> (flag, set?)
      {"ro", {MS_RDONLY, true}},           {"rw", {MS_RDONLY, false}},
      {"nodev", {MS_NODEV, true}},         {"nosuid", {MS_NOSUID, true}},
      {"noexec", {MS_NOEXEC, true}},       {"bind", {MS_BIND, true}},
      {"rbind", {MS_BIND | MS_REC, true}},
  };
  MountPlan plan;
  for (const std::string& opt : m.options) {
    auto it = kFlags.find(opt);
    if (it == kFlags.end()) {
      if (!plan.data.empty()) plan.data += ',';
      plan.data += opt;
    } else if (it->second.second) {
      plan.flags |= it->second.first;
    } else {
      plan.flags &= ~it->second.first;
    }
  }
  if (m.type == "bind") {
    plan.flags |= MS_BIND;
    plan.remount_readonly = plan.flags & MS_RDONLY;
  }
  return plan;
}

void PerformMounts(const std::vector<Mount>& mounts, const std::string& target) {
  size_t done = 0;
  try {
    for (const Mount& m : mounts) {
      MountPlan plan = PlanMount(m);
      if (m.type == "bind") {
        if (::mount(m.source.c_str(), target.c_str(), nullptr, plan.flags & (MS_BIND | MS_REC),
                    nullptr) != 0) {
          ThrowErrno("mount bind " + m.source, target);
        }
        ++done;
        unsigned long extra = plan.flags & (MS_RDONLY | MS_NODEV | MS_NOSUID | MS_NOEXEC);
        if (extra &&
            ::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | extra, nullptr) != 0) {
          ThrowErrno("remount bind", target);
        }
      } else if (plan.data.size() > PageLimit()) {
        MountWithFsConfig(m, plan, target);
        ++done;
      } else {
        if (::mount(m.source.c_str(), target.c_str(), m.type.c_str(), plan.flags,
                    plan.data.c_str()) != 0) {
          ThrowErrno("mount " + m.type, target);
        }
        ++done;
      }
    }
  } catch (...) {
    for (; done > 0; --done) ::umount2(target.c_str(), MNT_DETACH);
    throw;
  }
}

std::vector<std::string> MountPoints() {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint ...
    size_t pos = 0;
    for (int field = 0; field < 4 && pos != std::string::npos; ++field) {
      pos = line.find(' ', pos);
      if (pos != std::string::npos) ++pos;
    }
    if (pos == std::string::npos) continue;
    out.push_back(line.substr(pos, line.find(' ', pos) - pos));
  }
  return out;
}

std::vector<std::string> MountPointsBelow(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& point : MountPoints()) {
    if (point.rfind(dir + "/", 0) == 0) out.push_back(std::move(point));
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

void UnmountAll(const std::string& target, bool lazy) {
  for (int i = 0; i < 64; ++i) {
    if (::umount2(target.c_str(), lazy ? MNT_DETACH : 0) != 0) {
      if (errno == EINVAL || errno == ENOENT) return;  // nothing (more) mounted there
      ThrowErrno("umount", target);
    }
  }
}

}  // namespace berth::store
