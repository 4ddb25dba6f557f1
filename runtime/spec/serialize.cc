// spec::Spec -> config.json text. Optional fields are written only when set and empty lists
// are left out, so ParseSpec(SerializeSpec(s)) gives back s field for field.
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runtime/spec/parser.h"

namespace berth::spec {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void Field(Writer& w, const char* key, const std::string& value) {
  w.Key(key);
  Str(w, value);
}
void Field(Writer& w, const char* key, bool value) {
  w.Key(key);
  w.Bool(value);
}
void Field(Writer& w, const char* key, uint32_t value) {
  w.Key(key);
  w.Uint(value);
}
void Field(Writer& w, const char* key, uint16_t value) { Field(w, key, uint32_t{value}); }
void Field(Writer& w, const char* key, uint64_t value) {
  w.Key(key);
  w.Uint64(value);
}
void Field(Writer& w, const char* key, int32_t value) {
  w.Key(key);
  w.Int(value);
}
void Field(Writer& w, const char* key, int64_t value) {
  w.Key(key);
  w.Int64(value);
}

template <typename T>
void Field(Writer& w, const char* key, const std::optional<T>& value) {
  if (value) Field(w, key, *value);
}

void StringArray(Writer& w, const std::vector<std::string>& values) {
  w.StartArray();
  for (const auto& v : values) Str(w, v);
  w.EndArray();
}

// Left out when empty: absent and [] read back the same.
void Field(Writer& w, const char* key, const std::vector<std::string>& values) {
  if (values.empty()) return;
  w.Key(key);
  StringArray(w, values);
}

void Field(Writer& w, const char* key, const std::map<std::string, std::string>& values) {
  if (values.empty()) return;
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : values) {
    Str(w, k);
    Str(w, v);
  }
  w.EndObject();
}

// A list of structures, each written by `write(w, item)`; left out when empty.
template <typename T, typename Fn>
void ObjectArray(Writer& w, const char* key, const std::vector<T>& items, Fn&& write) {
  if (items.empty()) return;
  w.Key(key);
  w.StartArray();
  for (const T& item : items) {
    w.StartObject();
    write(w, item);
    w.EndObject();
  }
  w.EndArray();
}

void WriteCapabilities(Writer& w, const Capabilities& caps) {
  w.Key("capabilities");
  w.StartObject();
  // Every set is written, even empty ones, so a reader sees the intent to drop them all.
  w.Key("bounding");
  StringArray(w, caps.bounding);
  w.Key("effective");
  StringArray(w, caps.effective);
  w.Key("inheritable");
  StringArray(w, caps.inheritable);
  w.Key("permitted");
  StringArray(w, caps.permitted);
  w.Key("ambient");
  StringArray(w, caps.ambient);
  w.EndObject();
}

void WriteProcess(Writer& w, const Process& p) {
  w.Key("process");
  w.StartObject();
  Field(w, "terminal", p.terminal);
  if (p.console_size) {
    w.Key("consoleSize");
    w.StartObject();
    Field(w, "height", p.console_size->height);
    Field(w, "width", p.console_size->width);
    w.EndObject();
  }
  w.Key("user");
  w.StartObject();
  Field(w, "uid", p.user.uid);
  Field(w, "gid", p.user.gid);
  Field(w, "umask", p.user.umask);
  if (!p.user.additional_gids.empty()) {
    w.Key("additionalGids");
    w.StartArray();
    for (uint32_t gid : p.user.additional_gids) w.Uint(gid);
    w.EndArray();
  }
  w.EndObject();
  Field(w, "args", p.args);
  Field(w, "env", p.env);
  Field(w, "cwd", p.cwd);
  if (p.capabilities) WriteCapabilities(w, *p.capabilities);
  ObjectArray(w, "rlimits", p.rlimits, [](Writer& w, const Rlimit& rl) {
    Field(w, "type", rl.type);
    Field(w, "hard", rl.hard);
    Field(w, "soft", rl.soft);
  });
  Field(w, "noNewPrivileges", p.no_new_privileges);
  Field(w, "oomScoreAdj", p.oom_score_adj);
  w.EndObject();
}

void WriteMounts(Writer& w, const std::vector<Mount>& mounts) {
  ObjectArray(w, "mounts", mounts, [](Writer& w, const Mount& m) {
    Field(w, "destination", m.destination);
    Field(w, "type", m.type);
    Field(w, "source", m.source);
    Field(w, "options", m.options);
  });
}

void WriteIdMappings(Writer& w, const char* key, const std::vector<IdMapping>& maps) {
  ObjectArray(w, key, maps, [](Writer& w, const IdMapping& m) {
    Field(w, "containerID", m.container_id);
    Field(w, "hostID", m.host_id);
    Field(w, "size", m.size);
  });
}

void WriteRateDevices(Writer& w, const char* key, const std::vector<BlockIoDeviceRate>& devs) {
  ObjectArray(w, key, devs, [](Writer& w, const BlockIoDeviceRate& d) {
    Field(w, "major", d.major);
    Field(w, "minor", d.minor);
    Field(w, "rate", d.rate);
  });
}

void WriteBlockIo(Writer& w, const BlockIoResources& b) {
  w.Key("blockIO");
  w.StartObject();
  Field(w, "weight", b.weight);
  Field(w, "leafWeight", b.leaf_weight);
  ObjectArray(w, "weightDevice", b.weight_device, [](Writer& w, const BlockIoDeviceWeight& d) {
    Field(w, "major", d.major);
    Field(w, "minor", d.minor);
    Field(w, "weight", d.weight);
    Field(w, "leafWeight", d.leaf_weight);
  });
  WriteRateDevices(w, "throttleReadBpsDevice", b.throttle_read_bps_device);
  WriteRateDevices(w, "throttleWriteBpsDevice", b.throttle_write_bps_device);
  WriteRateDevices(w, "throttleReadIOPSDevice", b.throttle_read_iops_device);
  WriteRateDevices(w, "throttleWriteIOPSDevice", b.throttle_write_iops_device);
  w.EndObject();
}

void WriteResources(Writer& w, const Resources& r) {
  w.Key("resources");
  w.StartObject();
  ObjectArray(w, "devices", r.devices, [](Writer& w, const DeviceRule& d) {
    Field(w, "allow", d.allow);
    Field(w, "type", d.type);
    Field(w, "major", d.major);
    Field(w, "minor", d.minor);
    Field(w, "access", d.access);
  });
  if (r.memory) {
    w.Key("memory");
    w.StartObject();
    Field(w, "limit", r.memory->limit);
    Field(w, "reservation", r.memory->reservation);
    Field(w, "swap", r.memory->swap);
    Field(w, "swappiness", r.memory->swappiness);
    Field(w, "disableOOMKiller", r.memory->disable_oom_killer);
    w.EndObject();
  }
  if (r.cpu) {
    w.Key("cpu");
    w.StartObject();
    Field(w, "shares", r.cpu->shares);
    Field(w, "quota", r.cpu->quota);
    Field(w, "period", r.cpu->period);
    Field(w, "realtimeRuntime", r.cpu->realtime_runtime);
    Field(w, "realtimePeriod", r.cpu->realtime_period);
    if (!r.cpu->cpus.empty()) Field(w, "cpus", r.cpu->cpus);
    if (!r.cpu->mems.empty()) Field(w, "mems", r.cpu->mems);
    w.EndObject();
  }
  if (r.pids) {
    w.Key("pids");
    w.StartObject();
    Field(w, "limit", r.pids->limit);
    w.EndObject();
  }
  if (r.block_io) WriteBlockIo(w, *r.block_io);
  Field(w, "unified", r.unified);
  w.EndObject();
}

void WriteSeccomp(Writer& w, const Seccomp& s) {
  w.Key("seccomp");
  w.StartObject();
  Field(w, "defaultAction", s.default_action);
  Field(w, "defaultErrnoRet", s.default_errno_ret);
  Field(w, "architectures", s.architectures);
  Field(w, "flags", s.flags);
  ObjectArray(w, "syscalls", s.syscalls, [](Writer& w, const SeccompSyscall& sc) {
    w.Key("names");
    StringArray(w, sc.names);
    Field(w, "action", sc.action);
    Field(w, "errnoRet", sc.errno_ret);
    ObjectArray(w, "args", sc.args, [](Writer& w, const SeccompArg& a) {
      Field(w, "index", a.index);
      Field(w, "value", a.value);
      Field(w, "valueTwo", a.value_two);
      Field(w, "op", a.op);
    });
  });
  w.EndObject();
}

void WriteLinux(Writer& w, const Linux& l) {
  w.Key("linux");
  w.StartObject();
  ObjectArray(w, "namespaces", l.namespaces, [](Writer& w, const Namespace& ns) {
    w.Key("type");
    w.String(NamespaceTypeName(ns.type));
    if (!ns.path.empty()) Field(w, "path", ns.path);
  });
  WriteIdMappings(w, "uidMappings", l.uid_mappings);
  WriteIdMappings(w, "gidMappings", l.gid_mappings);
  ObjectArray(w, "devices", l.devices, [](Writer& w, const Device& d) {
    Field(w, "path", d.path);
    Field(w, "type", d.type);
    Field(w, "major", d.major);
    Field(w, "minor", d.minor);
    Field(w, "fileMode", d.file_mode);
    Field(w, "uid", d.uid);
    Field(w, "gid", d.gid);
  });
  if (!l.cgroups_path.empty()) Field(w, "cgroupsPath", l.cgroups_path);
  if (l.resources) WriteResources(w, *l.resources);
  if (l.seccomp) WriteSeccomp(w, *l.seccomp);
  Field(w, "maskedPaths", l.masked_paths);
  Field(w, "readonlyPaths", l.readonly_paths);
  if (!l.rootfs_propagation.empty()) Field(w, "rootfsPropagation", l.rootfs_propagation);
  Field(w, "sysctl", l.sysctl);
  w.EndObject();
}

}  // namespace

std::string SerializeSpec(const Spec& spec) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  Field(w, "ociVersion", spec.oci_version);
  WriteProcess(w, spec.process);
  w.Key("root");
  w.StartObject();
  Field(w, "path", spec.root.path);
  Field(w, "readonly", spec.root.readonly);
  w.EndObject();
  if (!spec.hostname.empty()) Field(w, "hostname", spec.hostname);
  WriteMounts(w, spec.mounts);
  Field(w, "annotations", spec.annotations);
  WriteLinux(w, spec.linux);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string SerializeSpecIndented(const Spec& spec) {
  const std::string compact = SerializeSpec(spec);
  rapidjson::Document doc;
  doc.Parse(compact.data(), compact.size());
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  doc.Accept(w);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace berth::spec
