// config.json -> spec::Spec. The shape of every field is checked before its value is read
// (json_reader.h); values that need other fields to judge are left to ValidateSpec.
#include "runtime/spec/parser.h"

#include <limits.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/spec/json_reader.h"

namespace berth::spec {
namespace {

using internal::Fail;
using internal::JsonObject;
using internal::JsonPath;
using internal::JsonValue;
using internal::Quote;

template <size_t N>
bool OneOf(std::string_view value, const std::array<std::string_view, N>& allowed) {
  for (std::string_view a : allowed) {
    if (a == value) return true;
  }
  return false;
}

constexpr std::array<std::string_view, 16> kRlimitTypes = {
    "RLIMIT_AS",     "RLIMIT_CORE",   "RLIMIT_CPU",        "RLIMIT_DATA",
    "RLIMIT_FSIZE",  "RLIMIT_LOCKS",  "RLIMIT_MEMLOCK",    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",   "RLIMIT_NOFILE", "RLIMIT_NPROC",      "RLIMIT_RSS",
    "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
};

constexpr std::array<std::string_view, 9> kPropagations = {
    "", "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable", "runbindable",
};

// --- process ---------------------------------------------------------------------------

ConsoleSize ReadConsoleSize(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  ConsoleSize size;
  o.GetRequired("height", size.height);
  o.GetRequired("width", size.width);
  return size;
}

User ReadUser(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  User user;
  o.GetRequired("uid", user.uid);
  o.GetRequired("gid", user.gid);
  o.Get("umask", user.umask);
  o.Get("additionalGids", user.additional_gids);
  return user;
}

Capabilities ReadCapabilities(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Capabilities caps;
  o.Get("bounding", caps.bounding);
  o.Get("effective", caps.effective);
  o.Get("inheritable", caps.inheritable);
  o.Get("permitted", caps.permitted);
  o.Get("ambient", caps.ambient);
  return caps;
}

Rlimit ReadRlimit(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Rlimit rl;
  o.GetRequired("type", rl.type);
  if (!OneOf(rl.type, kRlimitTypes)) Fail(p.Key("type"), "unknown rlimit type " + Quote(rl.type));
  o.GetRequired("hard", rl.hard);
  o.GetRequired("soft", rl.soft);
  return rl;
}

Process ReadProcess(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Process proc;
  o.Get("terminal", proc.terminal);
  o.Get("consoleSize", proc.console_size, ReadConsoleSize);
  o.Get("user", proc.user, ReadUser);
  o.Get("args", proc.args);
  o.Get("env", proc.env);
  o.Get("cwd", proc.cwd);
  o.Get("capabilities", proc.capabilities, ReadCapabilities);
  o.GetArray("rlimits", proc.rlimits, ReadRlimit);
  o.Get("noNewPrivileges", proc.no_new_privileges);
  o.Get("oomScoreAdj", proc.oom_score_adj);
  return proc;
}

// --- root, mounts ----------------------------------------------------------------------

Root ReadRoot(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Root root;
  o.GetRequired("path", root.path);
  o.Get("readonly", root.readonly);
  return root;
}

Mount ReadMount(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Mount m;
  o.GetRequired("destination", m.destination);
  o.Get("type", m.type);
  o.Get("source", m.source);
  o.Get("options", m.options);
  return m;
}

// --- linux -----------------------------------------------------------------------------

Namespace ReadNamespace(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  std::string type;
  o.GetRequired("type", type);
  std::optional<NamespaceType> parsed = NamespaceTypeFromName(type);
  if (!parsed) Fail(p.Key("type"), "unknown namespace type " + Quote(type));
  Namespace ns{*parsed, {}};
  o.Get("path", ns.path);
  return ns;
}

IdMapping ReadIdMapping(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  IdMapping m;
  o.GetRequired("containerID", m.container_id);
  o.GetRequired("hostID", m.host_id);
  o.GetRequired("size", m.size);
  return m;
}

Device ReadDevice(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Device d;
  o.GetRequired("path", d.path);
  o.GetRequired("type", d.type);
  if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p") {
    Fail(p.Key("type"), "unknown device type " + Quote(d.type) + " (want c, b, u or p)");
  }
  // A FIFO has no device number; every other node needs both.
  if (d.type == "p") {
    o.Get("major", d.major);
    o.Get("minor", d.minor);
  } else {
    o.GetRequired("major", d.major);
    o.GetRequired("minor", d.minor);
  }
  o.Get("fileMode", d.file_mode);
  o.Get("uid", d.uid);
  o.Get("gid", d.gid);
  return d;
}

DeviceRule ReadDeviceRule(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  DeviceRule r;
  o.GetRequired("allow", r.allow);
  o.Get("type", r.type);
  if (r.type != "a" && r.type != "c" && r.type != "b") {
    Fail(p.Key("type"), "unknown device type " + Quote(r.type) + " (want a, c or b)");
  }
  o.Get("major", r.major);
  o.Get("minor", r.minor);
  o.Get("access", r.access);
  if (r.access.empty() || r.access.find_first_not_of("rwm") != std::string::npos) {
    Fail(p.Key("access"), "expected a combination of r, w and m, got " + Quote(r.access));
  }
  return r;
}

MemoryResources ReadMemory(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  MemoryResources m;
  o.Get("limit", m.limit);
  o.Get("reservation", m.reservation);
  o.Get("swap", m.swap);
  o.Get("swappiness", m.swappiness);
  o.Get("disableOOMKiller", m.disable_oom_killer);
  return m;
}

CpuResources ReadCpu(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  CpuResources c;
  o.Get("shares", c.shares);
  o.Get("quota", c.quota);
  o.Get("period", c.period);
  o.Get("realtimeRuntime", c.realtime_runtime);
  o.Get("realtimePeriod", c.realtime_period);
  o.Get("cpus", c.cpus);
  o.Get("mems", c.mems);
  return c;
}

PidsResources ReadPids(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  PidsResources pids;
  o.GetRequired("limit", pids.limit);
  return pids;
}

BlockIoDeviceWeight ReadWeightDevice(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  BlockIoDeviceWeight w;
  o.GetRequired("major", w.major);
  o.GetRequired("minor", w.minor);
  o.Get("weight", w.weight);
  o.Get("leafWeight", w.leaf_weight);
  return w;
}

BlockIoDeviceRate ReadRateDevice(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  BlockIoDeviceRate r;
  o.GetRequired("major", r.major);
  o.GetRequired("minor", r.minor);
  o.GetRequired("rate", r.rate);
  return r;
}

BlockIoResources ReadBlockIo(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  BlockIoResources b;
  o.Get("weight", b.weight);
  o.Get("leafWeight", b.leaf_weight);
  o.GetArray("weightDevice", b.weight_device, ReadWeightDevice);
  o.GetArray("throttleReadBpsDevice", b.throttle_read_bps_device, ReadRateDevice);
  o.GetArray("throttleWriteBpsDevice", b.throttle_write_bps_device, ReadRateDevice);
  o.GetArray("throttleReadIOPSDevice", b.throttle_read_iops_device, ReadRateDevice);
  o.GetArray("throttleWriteIOPSDevice", b.throttle_write_iops_device, ReadRateDevice);
  return b;
}

Resources ReadResources(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Resources r;
  o.GetArray("devices", r.devices, ReadDeviceRule);
  o.Get("memory", r.memory, ReadMemory);
  o.Get("cpu", r.cpu, ReadCpu);
  o.Get("pids", r.pids, ReadPids);
  o.Get("blockIO", r.block_io, ReadBlockIo);
  o.Get("unified", r.unified);
  return r;
}

SeccompArg ReadSeccompArg(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  SeccompArg a;
  o.GetRequired("index", a.index);
  o.GetRequired("value", a.value);
  o.Get("valueTwo", a.value_two);
  o.GetRequired("op", a.op);
  return a;
}

SeccompSyscall ReadSeccompSyscall(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  SeccompSyscall s;
  o.GetRequired("names", s.names);
  o.GetRequired("action", s.action);
  o.Get("errnoRet", s.errno_ret);
  o.GetArray("args", s.args, ReadSeccompArg);
  return s;
}

Seccomp ReadSeccomp(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Seccomp s;
  o.GetRequired("defaultAction", s.default_action);
  o.Get("defaultErrnoRet", s.default_errno_ret);
  o.Get("architectures", s.architectures);
  o.Get("flags", s.flags);
  o.GetArray("syscalls", s.syscalls, ReadSeccompSyscall);
  return s;
}

Linux ReadLinux(const JsonValue& v, const JsonPath& p) {
  JsonObject o(v, p);
  Linux l;
  o.GetArray("namespaces", l.namespaces, ReadNamespace);
  o.GetArray("uidMappings", l.uid_mappings, ReadIdMapping);
  o.GetArray("gidMappings", l.gid_mappings, ReadIdMapping);
  o.GetArray("devices", l.devices, ReadDevice);
  o.Get("cgroupsPath", l.cgroups_path);
  o.Get("resources", l.resources, ReadResources);
  o.Get("seccomp", l.seccomp, ReadSeccomp);
  o.Get("maskedPaths", l.masked_paths);
  o.Get("readonlyPaths", l.readonly_paths);
  o.Get("rootfsPropagation", l.rootfs_propagation);
  if (!OneOf(l.rootfs_propagation, kPropagations)) {
    Fail(p.Key("rootfsPropagation"),
         "unknown propagation " + Quote(l.rootfs_propagation) +
             " (want private, rprivate, slave, rslave, shared, rshared, unbindable or "
             "runbindable)");
  }
  o.Get("sysctl", l.sysctl);
  return l;
}

Spec ReadSpec(const JsonValue& v) {
  JsonPath root;
  if (!v.IsObject()) Fail(root, "expected a JSON object at the top level");
  JsonObject o(v, root);
  Spec spec;
  o.Get("ociVersion", spec.oci_version);
  o.Get("process", spec.process, ReadProcess);
  o.Get("root", spec.root, ReadRoot);
  o.Get("hostname", spec.hostname);
  o.GetArray("mounts", spec.mounts, ReadMount);
  o.Get("annotations", spec.annotations);
  o.Get("linux", spec.linux, ReadLinux);
  return spec;
}

// Every error from here names `source` first: "config.json: ..." or the file's full path.
Spec ParseNamed(std::string_view json, std::string_view source) {
  return WithContext(source, [&] {
    rapidjson::Document doc;
    // Iterative parsing: deeply nested input must not overflow the stack.
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError()) {
      throw Error(ErrorKind::kInvalidArgument,
                  "malformed JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(doc.GetParseError()));
    }
    Spec spec = ReadSpec(doc);
    ValidateSpec(spec);
    return spec;
  });
}

std::string AbsolutePath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof(cwd)) == nullptr) ThrowErrno("getcwd");
  return path.empty() ? std::string(cwd) : JoinPath(cwd, path);
}

// The rootfs as an absolute path with symlinks resolved, so later steps (pivot_root, mounts
// relative to it) see one stable name.
std::string ResolveRootfs(const std::string& bundle, const std::string& root_path) {
  std::string path = root_path[0] == '/' ? root_path : JoinPath(bundle, root_path);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT) {
      throw Error(ErrorKind::kNotFound, "root.path: " + path + ": no such directory", err);
    }
    throw Error::FromErrno("stat", path, err).WithContext("root.path");
  }
  if (!S_ISDIR(st.st_mode)) {
    throw Error(ErrorKind::kInvalidArgument, "root.path: " + path + ": not a directory");
  }
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) {
    throw Error::FromErrno("realpath", path, errno).WithContext("root.path");
  }
  return resolved;
}

}  // namespace

Spec ParseSpec(std::string_view json) { return ParseNamed(json, "config.json"); }

Spec LoadBundle(const std::string& bundle_dir) {
  const std::string bundle = AbsolutePath(bundle_dir);
  const std::string config_path = JoinPath(bundle, "config.json");
  std::optional<std::string> text = ReadFileIfExists(config_path);
  if (!text) {
    throw Error(ErrorKind::kNotFound,
                "load bundle: " + config_path + ": no such file (is " + bundle + " a bundle?)",
                ENOENT);
  }
  Spec spec = ParseNamed(*text, config_path);
  // ValidateSpec already refused an empty root.path.
  spec.root.path = WithContext(config_path, [&] { return ResolveRootfs(bundle, spec.root.path); });
  return spec;
}

}  // namespace berth::spec
