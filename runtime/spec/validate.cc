// Cross-field rules of a spec: what the shape checks in the parser cannot see, and what
// berthd's own specs must obey too. Each failure names the field by its JSON path.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/spec/json_reader.h"
#include "runtime/spec/parser.h"

namespace berth::spec {
namespace {

using internal::Fail;
using internal::JsonPath;
using internal::Quote;

bool IsAbsolute(std::string_view path) { return !path.empty() && path[0] == '/'; }

void RequireAbsolute(const JsonPath& p, std::string_view path) {
  if (!IsAbsolute(path)) Fail(p, "must be an absolute path, got " + Quote(path));
}

void RequireAbsoluteAll(const JsonPath& p, const std::vector<std::string>& paths) {
  for (size_t i = 0; i < paths.size(); ++i) RequireAbsolute(p.Index(i), paths[i]);
}

// A cpuset list as the kernel reads it: "0-3,8,10-11".
bool IsCpuList(std::string_view list) {
  if (list.empty()) return true;
  size_t i = 0;
  auto number = [&](uint64_t& out) {
    size_t start = i;
    out = 0;
    while (i < list.size() && list[i] >= '0' && list[i] <= '9' && i - start < 9) {
      out = out * 10 + static_cast<uint64_t>(list[i] - '0');
      ++i;
    }
    return i > start && (i == list.size() || list[i] < '0' || list[i] > '9');
  };
  while (true) {
    uint64_t first = 0;
    if (!number(first)) return false;
    if (i < list.size() && list[i] == '-') {
      ++i;
      uint64_t last = 0;
      if (!number(last) || last < first) return false;
    }
    if (i == list.size()) return true;
    if (list[i] != ',') return false;
    ++i;
  }
}

void ValidateProcess(const Process& proc, const JsonPath& p) {
  if (proc.args.empty()) Fail(p.Key("args"), "must not be empty");
  RequireAbsolute(p.Key("cwd"), proc.cwd);
  if (proc.user.umask && *proc.user.umask > 0777) {
    Fail(p.Key("user").Key("umask"), "must be at most 0777 (511)");
  }
  std::set<std::string_view> seen;
  const JsonPath rlimits = p.Key("rlimits");
  for (size_t i = 0; i < proc.rlimits.size(); ++i) {
    const Rlimit& rl = proc.rlimits[i];
    const JsonPath rp = rlimits.Index(i);
    if (!seen.insert(rl.type).second) Fail(rp.Key("type"), "duplicate rlimit " + Quote(rl.type));
    if (rl.soft > rl.hard) Fail(rp.Key("soft"), "must not exceed hard");
  }
  if (proc.oom_score_adj && (*proc.oom_score_adj < -1000 || *proc.oom_score_adj > 1000)) {
    Fail(p.Key("oomScoreAdj"), "must be in [-1000, 1000]");
  }
}

void ValidateMappings(const std::vector<IdMapping>& maps, const JsonPath& p) {
  for (size_t i = 0; i < maps.size(); ++i) {
    const IdMapping& m = maps[i];
    JsonPath mp = p.Index(i);
    if (m.size == 0) Fail(mp.Key("size"), "must be > 0");
    if (uint64_t{m.container_id} + m.size > (uint64_t{1} << 32) ||
        uint64_t{m.host_id} + m.size > (uint64_t{1} << 32)) {
      Fail(mp.Key("size"), "range goes past the last 32-bit id");
    }
  }
}

void ValidateNamespaces(const Spec& spec, const JsonPath& p) {
  const Linux& l = spec.linux;
  bool seen[7] = {};
  const JsonPath namespaces = p.Key("namespaces");
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    const Namespace& ns = l.namespaces[i];
    const JsonPath np = namespaces.Index(i);
    auto slot = static_cast<size_t>(ns.type);
    if (slot >= std::size(seen)) Fail(np.Key("type"), "unknown namespace type");
    if (seen[slot]) {
      Fail(np.Key("type"),
           std::string("duplicate namespace type ") + Quote(NamespaceTypeName(ns.type)));
    }
    seen[slot] = true;
    if (!ns.path.empty()) RequireAbsolute(np.Key("path"), ns.path);
  }

  const Namespace* user = spec.FindNamespace(NamespaceType::kUser);
  bool has_mappings = !l.uid_mappings.empty() || !l.gid_mappings.empty();
  if (has_mappings && user == nullptr) {
    Fail(p.Key(l.uid_mappings.empty() ? "gidMappings" : "uidMappings"),
         "id mappings need a user namespace in linux.namespaces");
  }
  if (user != nullptr && user->path.empty()) {
    if (l.uid_mappings.empty())
      Fail(p.Key("uidMappings"), "a new user namespace needs uid mappings");
    if (l.gid_mappings.empty())
      Fail(p.Key("gidMappings"), "a new user namespace needs gid mappings");
  }
  ValidateMappings(l.uid_mappings, p.Key("uidMappings"));
  ValidateMappings(l.gid_mappings, p.Key("gidMappings"));

  if (!spec.hostname.empty()) {
    const Namespace* uts = spec.FindNamespace(NamespaceType::kUts);
    // Setting the hostname of a namespace the container only joined would rename someone
    // else's host (runc: "unable to set hostname without a private UTS namespace").
    if (uts == nullptr || !uts->path.empty()) {
      Fail(JsonPath().Key("hostname"), "setting a hostname needs a new uts namespace");
    }
  }
}

void ValidateMemory(const MemoryResources& m, const JsonPath& p) {
  if (m.limit && *m.limit <= 0 && *m.limit != -1) Fail(p.Key("limit"), "must be > 0 or -1");
  if (m.reservation && *m.reservation < 0 && *m.reservation != -1) {
    Fail(p.Key("reservation"), "must be >= 0 or -1");
  }
  if (m.swap) {
    if (*m.swap < 0 && *m.swap != -1) Fail(p.Key("swap"), "must be >= 0 or -1");
    // swap is memory+swap, so it cannot be below the memory limit.
    if (*m.swap != -1 && m.limit && *m.limit != -1 && *m.swap < *m.limit) {
      Fail(p.Key("swap"), "must be >= limit (it counts memory plus swap) or -1");
    }
  }
  if (m.swappiness && *m.swappiness > 100) Fail(p.Key("swappiness"), "must be in [0, 100]");
}

void ValidateCpu(const CpuResources& c, const JsonPath& p) {
  if (c.period && (*c.period < 1000 || *c.period > 1000000)) {
    Fail(p.Key("period"), "must be in [1000, 1000000] microseconds");
  }
  if (c.quota && *c.quota <= 0 && *c.quota != -1) Fail(p.Key("quota"), "must be > 0 or -1");
  if (c.realtime_runtime && *c.realtime_runtime < -1) {
    Fail(p.Key("realtimeRuntime"), "must be >= 0 or -1");
  }
  if (!IsCpuList(c.cpus)) Fail(p.Key("cpus"), "not a cpu list like \"0-3,5\": " + Quote(c.cpus));
  if (!IsCpuList(c.mems)) Fail(p.Key("mems"), "not a node list like \"0-1\": " + Quote(c.mems));
}

void ValidateBlkioWeight(const std::optional<uint16_t>& w, const JsonPath& p) {
  if (w && (*w < 10 || *w > 1000)) Fail(p, "must be in [10, 1000]");
}

void ValidateBlockIo(const BlockIoResources& b, const JsonPath& p) {
  ValidateBlkioWeight(b.weight, p.Key("weight"));
  ValidateBlkioWeight(b.leaf_weight, p.Key("leafWeight"));
  const JsonPath weight_device = p.Key("weightDevice");
  for (size_t i = 0; i < b.weight_device.size(); ++i) {
    const JsonPath dp = weight_device.Index(i);
    ValidateBlkioWeight(b.weight_device[i].weight, dp.Key("weight"));
    ValidateBlkioWeight(b.weight_device[i].leaf_weight, dp.Key("leafWeight"));
  }
}

void ValidateResources(const Resources& r, const JsonPath& p) {
  if (r.memory) ValidateMemory(*r.memory, p.Key("memory"));
  if (r.cpu) ValidateCpu(*r.cpu, p.Key("cpu"));
  if (r.pids && r.pids->limit < -1) {
    Fail(p.Key("pids").Key("limit"), "must be > 0, or 0 or -1 for no limit");
  }
  if (r.block_io) ValidateBlockIo(*r.block_io, p.Key("blockIO"));
}

void ValidateSeccomp(const Seccomp& s, const JsonPath& p) {
  if (s.default_action.empty()) Fail(p.Key("defaultAction"), "must not be empty");
  const JsonPath syscalls = p.Key("syscalls");
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const SeccompSyscall& sc = s.syscalls[i];
    const JsonPath sp = syscalls.Index(i);
    if (sc.names.empty()) Fail(sp.Key("names"), "must not be empty");
    for (size_t j = 0; j < sc.args.size(); ++j) {
      // The kernel passes six syscall arguments.
      if (sc.args[j].index > 5) Fail(sp.Key("args").Index(j).Key("index"), "must be in [0, 5]");
    }
  }
}

void ValidateLinux(const Spec& spec, const JsonPath& p) {
  const Linux& l = spec.linux;
  ValidateNamespaces(spec, p);
  for (size_t i = 0; i < l.devices.size(); ++i) {
    RequireAbsolute(p.Key("devices").Index(i).Key("path"), l.devices[i].path);
  }
  if (l.resources) ValidateResources(*l.resources, p.Key("resources"));
  if (l.seccomp) ValidateSeccomp(*l.seccomp, p.Key("seccomp"));
  RequireAbsoluteAll(p.Key("maskedPaths"), l.masked_paths);
  RequireAbsoluteAll(p.Key("readonlyPaths"), l.readonly_paths);
}

}  // namespace

void ValidateSpec(const Spec& spec) {
  JsonPath root;
  if (spec.root.path.empty()) Fail(root.Key("root").Key("path"), "must not be empty");
  ValidateProcess(spec.process, root.Key("process"));
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    RequireAbsolute(root.Key("mounts").Index(i).Key("destination"), spec.mounts[i].destination);
  }
  ValidateLinux(spec, root.Key("linux"));
}

}  // namespace berth::spec
