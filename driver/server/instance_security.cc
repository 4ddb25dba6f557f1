#include "driver/server/instance_security.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/linux/idmap_mount.h"
#include "runtime/security/security.h"
#include "runtime/spec/parser.h"
#include "runtime/store/layer/mount.h"

namespace berth::server {
namespace {

bool SpecBool(const Flavor& f, const char* key) {
  auto it = f.extra_specs.find(key);
  if (it == f.extra_specs.end()) return false;
  if (it->second == "true" || it->second == "True") return true;
  if (it->second == "false" || it->second == "False") return false;
  throw Error(ErrorKind::kInvalidArgument,
              std::string("flavor.extra_specs.") + key + ": want \"true\" or \"false\"");
}

std::vector<std::string> SplitColon(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(':', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string OptionValue(const store::Mount& m, const std::string& key) {
  for (const auto& o : m.options) {
    if (o.rfind(key + "=", 0) == 0) return o.substr(key.size() + 1);
  }
  return "";
}

// Beside `scratch` (outside the instance's reach): the private copy is shifted already, so a
// remount after a berthd restart must not shift it twice.
constexpr const char* kShiftedMark = ".shifted";

}  // namespace

SecurityRequest ParseSecurityRequest(const Flavor& flavor, bool allow_privileged) {
  SecurityRequest r;
  r.privileged = SpecBool(flavor, "berth:privileged");
  r.net_raw = SpecBool(flavor, "berth:net_raw");
  if (r.privileged && !allow_privileged) {
    throw Error(ErrorKind::kInvalidArgument,
                "flavor.extra_specs.berth:privileged: privileged instances are disabled on "
                "this host (set [security] allow_privileged = true in berthd.conf to allow "
                "them for trusted images)");
  }
  return r;
}

void ApplySecurityProfile(spec::Spec& s, const SecurityRequest& request,
                          const std::optional<IdRange>& range) {
  auto& ns = s.linux.namespaces;
  auto has = [&](spec::NamespaceType t) {
    return std::any_of(ns.begin(), ns.end(), [&](const auto& n) { return n.type == t; });
  };
  if (request.privileged) {
    // Every capability berthd itself holds: a host may withhold some even from root.
    uint64_t held = 0;
    for (int c = 0; c <= security::LastCapability(); ++c) {
      if (security::HasEffectiveCapability(c)) held |= uint64_t{1} << c;
    }
    std::vector<std::string> all = security::CapabilityNames(held);
    s.process.capabilities = spec::Capabilities{
        .bounding = all, .effective = all, .inheritable = {}, .permitted = all, .ambient = {}};
    s.linux.seccomp.reset();
    s.linux.masked_paths.clear();
    s.linux.readonly_paths.clear();
    s.linux.uid_mappings.clear();
    s.linux.gid_mappings.clear();
    std::erase_if(ns, [](const auto& n) { return n.type == spec::NamespaceType::kUser; });
    spec::ValidateSpec(s);
    return;
  }
  if (!request.net_raw && s.process.capabilities) {
    auto& c = *s.process.capabilities;
    for (auto* v : {&c.bounding, &c.effective, &c.permitted, &c.inheritable, &c.ambient}) {
      std::erase(*v, std::string("CAP_NET_RAW"));
    }
    // As Docker does since 20.10: without CAP_NET_RAW, ping still works through ICMP
    // datagram sockets, which cannot forge packets. The instance's own network namespace
    // only; the range must be gids its user namespace maps.
    if (has(spec::NamespaceType::kNetwork)) {
      s.linux.sysctl["net.ipv4.ping_group_range"] =
          "0 " + std::to_string(range ? range->size - 1 : 2147483647u);
    }
  }
  if (!has(spec::NamespaceType::kCgroup)) ns.push_back({spec::NamespaceType::kCgroup, ""});
  if (range) {
    if (!has(spec::NamespaceType::kUser)) ns.push_back({spec::NamespaceType::kUser, ""});
    s.linux.uid_mappings = range->UidMappings();
    s.linux.gid_mappings = range->GidMappings();
  }
  spec::ValidateSpec(s);
}

void MountInstanceRootfs(const std::vector<store::Mount>& mounts, const std::string& rootfs,
                         const std::optional<IdRange>& range, const std::string& scratch,
                         MappingUsernsCache& userns_cache) {
  if (!range) {
    store::PerformMounts(mounts, rootfs);
    return;
  }
  std::vector<store::Mount> planned = mounts;
  std::vector<std::string> idmapped;  // scratch mount points to drop once the overlay is up
  ScopeGuard drop_scratch([&] {
    for (const auto& d : idmapped) ::umount2(d.c_str(), MNT_DETACH);
    RemoveTree(scratch);
  });
  std::shared_ptr<const UniqueFd> userns;
  auto mapping_ns = [&]() -> int {
    if (!userns) userns = userns_cache.Get(*range);
    return userns->get();
  };
  for (auto& m : planned) {
    if (m.type == "overlay") {
      std::vector<std::string> lowers = SplitColon(OptionValue(m, "lowerdir"));
      std::string lowerdir;
      for (size_t i = 0; i < lowers.size(); ++i) {
        std::string point = JoinPath(scratch, std::to_string(i));
        MakeDirs(point, 0700);
        container::IdmappedBind(lowers[i], point, mapping_ns(), true);
        idmapped.push_back(point);
        lowerdir += (i ? ":" : "") + point;
      }
      for (auto& o : m.options) {
        if (o.rfind("lowerdir=", 0) == 0) o = "lowerdir=" + lowerdir;
      }
      // The overlay's root takes its owner from the upper dir's root, which berthd made:
      // give it to the range's root, else root inside could not write in "/".
      std::string upper = OptionValue(m, "upperdir");
      struct stat st;
      if (!upper.empty() && !lowers.empty() && ::stat(lowers[0].c_str(), &st) == 0 &&
          ::chown(upper.c_str(), range->uid + st.st_uid, range->gid + st.st_gid) != 0) {
        ThrowErrno("chown", upper);
      }
    } else if (m.type == "bind" && !PathExists(scratch + kShiftedMark)) {
      // A private copy per instance: shifting it costs what the copy already cost.
      container::ShiftOwnership(m.source, range->uid, range->gid);
      WriteFileAtomic(scratch + kShiftedMark, "", 0600);
    }
  }
  store::PerformMounts(planned, rootfs);
}

}  // namespace berth::server
