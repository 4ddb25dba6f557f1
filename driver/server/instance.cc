#include "driver/server/instance.h"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>

#include "driver/server/json_util.h"
#include "driver/server/names.h"
#include "runtime/common/error.h"
#include "runtime/common/signals.h"
#include "runtime/security/security.h"
#include "runtime/spec/parser.h"

namespace berth::server {
namespace {

constexpr uint64_t kCpuPeriod = 100000;
constexpr const char* kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

[[noreturn]] void Invalid(const std::string& msg) { throw Error(ErrorKind::kInvalidArgument, msg); }

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

int64_t SpecInt(const Flavor& f, const std::string& key, int64_t min, int64_t max) {
  const std::string& text = f.extra_specs.at(key);
  auto v = ParseInt(text);
  if (!v || *v < min || *v > max) {
    Invalid("flavor.extra_specs." + key + ": want an integer in " + std::to_string(min) + ".." +
            std::to_string(max) + ", got \"" + text + "\"");
  }
  return *v;
}

// Replaces or appends KEY=value in env.
void SetEnv(std::vector<std::string>& env, const std::string& kv) {
  std::string key = kv.substr(0, kv.find('='));
  for (auto& e : env) {
    if (e.compare(0, key.size() + 1, key + "=") == 0) {
      e = kv;
      return;
    }
  }
  env.push_back(kv);
}

// Finds field 2 (uid or gid) and 3 (gid) of the line whose first field is name.
std::optional<std::vector<std::string>> FindEntry(const std::string& db, const std::string& name) {
  std::istringstream in(db);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields;
    size_t start = 0;
    while (true) {
      size_t colon = line.find(':', start);
      fields.push_back(line.substr(start, colon - start));
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
    if (fields.size() >= 3 && fields[0] == name) return fields;
  }
  return std::nullopt;
}

uint32_t ToId(const std::string& text, const std::string& what) {
  auto v = ParseInt(text);
  if (!v || *v < 0 || *v > 0xfffffffeLL)
    Invalid("image config User: bad " + what + " \"" + text + "\"");
  return static_cast<uint32_t>(*v);
}

}  // namespace

const char* PowerStateName(PowerState s) {
  switch (s) {
    case PowerState::kNoState:
      return "NOSTATE";
    case PowerState::kRunning:
      return "RUNNING";
    case PowerState::kPaused:
      return "PAUSED";
    case PowerState::kShutdown:
      return "SHUTDOWN";
    case PowerState::kCrashed:
      return "CRASHED";
    case PowerState::kSuspended:
      return "SUSPENDED";
  }
  return "NOSTATE";
}

const char* DesiredStateName(DesiredState s) {
  switch (s) {
    case DesiredState::kRunning:
      return "running";
    case DesiredState::kStopped:
      return "stopped";
    case DesiredState::kPaused:
      return "paused";
    case DesiredState::kSuspended:
      return "suspended";
  }
  return "running";
}

DesiredState DesiredStateFromName(const std::string& name) {
  if (name == "running") return DesiredState::kRunning;
  if (name == "stopped") return DesiredState::kStopped;
  if (name == "paused") return DesiredState::kPaused;
  if (name == "suspended") return DesiredState::kSuspended;
  Invalid("unknown desired state \"" + name + "\"");
}

void WriteFlavor(JsonWriter& w, const char* key, const Flavor& flavor) {
  w.Key(key);
  w.StartObject();
  w.Key("vcpus");
  w.Int64(flavor.vcpus);
  w.Key("memory_mb");
  w.Int64(flavor.memory_mb);
  w.Key("root_gb");
  w.Int64(flavor.root_gb);
  WriteStringMap(w, "extra_specs", flavor.extra_specs);
  w.EndObject();
}

std::string InstanceToJson(const InstanceRecord& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "uuid", r.uuid);
  WriteString(w, "name", r.name);
  WriteString(w, "hostname", r.hostname);
  WriteString(w, "image_id", r.image_id);
  WriteString(w, "image_ref", r.image_ref);
  WriteFlavor(w, "flavor", r.flavor);
  WriteStringArray(w, "command", r.command);
  WriteStringArray(w, "env", r.env);
  WriteStringMap(w, "metadata", r.metadata);
  WriteString(w, "user_data", r.user_data);
  WriteString(w, "desired", DesiredStateName(r.desired));
  WriteString(w, "created_at", r.created_at);
  WriteString(w, "launched_at", r.launched_at);
  WriteString(w, "stop_signal", r.stop_signal);
  if (!r.disk.empty()) WriteString(w, "disk", r.disk);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

InstanceRecord InstanceFromJson(const std::string& json, const std::string& path) {
  try {
    rapidjson::Document doc = ParseJsonObject(json, path);
    InstanceRecord r;
    r.uuid = OptString(doc, "uuid", "uuid").value_or("");
    r.name = OptString(doc, "name", "name").value_or("");
    // Records written before hostname existed used the name.
    r.hostname = OptString(doc, "hostname", "hostname").value_or("");
    if (r.hostname.empty()) r.hostname = HostnameFromName(r.name);
    r.image_id = OptString(doc, "image_id", "image_id").value_or("");
    r.image_ref = OptString(doc, "image_ref", "image_ref").value_or("");
    if (const auto* f = OptObject(doc, "flavor", "flavor")) r.flavor = ParseFlavor(*f, "flavor");
    r.command = OptStringArray(doc, "command", "command").value_or(std::vector<std::string>{});
    r.env = OptStringArray(doc, "env", "env").value_or(std::vector<std::string>{});
    r.metadata =
        OptStringMap(doc, "metadata", "metadata").value_or(std::map<std::string, std::string>{});
    r.user_data = OptString(doc, "user_data", "user_data").value_or("");
    r.desired = DesiredStateFromName(OptString(doc, "desired", "desired").value_or("running"));
    r.created_at = OptString(doc, "created_at", "created_at").value_or("");
    r.launched_at = OptString(doc, "launched_at", "launched_at").value_or("");
    r.stop_signal = OptString(doc, "stop_signal", "stop_signal").value_or("");
    r.disk = OptString(doc, "disk", "disk").value_or("");
    if (r.uuid.empty()) Invalid("uuid: missing");
    return r;
  } catch (Error& e) {
    e.WithContext(path);
    throw;
  }
}

Flavor ParseFlavor(const rapidjson::Value& v, const std::string& path) {
  Flavor f;
  auto positive = [&](const char* field, int64_t def, int64_t min) {
    auto x = OptInt(v, field, path + "." + field);
    if (!x) return def;
    if (*x < min) Invalid(path + "." + field + ": want an integer >= " + std::to_string(min));
    return *x;
  };
  f.vcpus = positive("vcpus", 1, 1);
  f.memory_mb = positive("memory_mb", 512, 4);
  f.root_gb = positive("root_gb", 0, 0);
  f.extra_specs = OptStringMap(v, "extra_specs", path + ".extra_specs")
                      .value_or(std::map<std::string, std::string>{});
  if (f.vcpus > 4096) Invalid(path + ".vcpus: at most 4096");
  if (f.memory_mb > (int64_t{1} << 30)) Invalid(path + ".memory_mb: too large");
  return f;
}

spec::Resources FlavorToResources(const Flavor& flavor, bool swap_accounting) {
  spec::Resources r;
  spec::MemoryResources mem;
  mem.limit = flavor.memory_mb * 1024 * 1024;
  if (swap_accounting) mem.swap = *mem.limit;  // memory+swap == memory: no swap
  r.memory = mem;

  spec::CpuResources cpu;
  cpu.period = kCpuPeriod;
  cpu.quota = flavor.vcpus * static_cast<int64_t>(kCpuPeriod);
  cpu.shares = static_cast<uint64_t>(1024 * flavor.vcpus);
  const auto& es = flavor.extra_specs;
  if (es.count("quota:cpu_shares")) cpu.shares = SpecInt(flavor, "quota:cpu_shares", 2, 262144);
  if (es.count("quota:cpu_period")) {
    cpu.period = static_cast<uint64_t>(SpecInt(flavor, "quota:cpu_period", 1000, 1000000));
  }
  if (es.count("quota:cpu_quota")) {
    cpu.quota = SpecInt(flavor, "quota:cpu_quota", -1, int64_t{1} << 40);
    if (*cpu.quota == 0) Invalid("flavor.extra_specs.quota:cpu_quota: 0 is not a quota");
  }
  if (auto it = es.find("hw:cpuset"); it != es.end()) {
    for (char c : it->second) {
      if (!(isdigit(static_cast<unsigned char>(c)) || c == ',' || c == '-')) {
        Invalid("flavor.extra_specs.hw:cpuset: want a cpu list like \"0-1,3\"");
      }
    }
    cpu.cpus = it->second;
  }
  r.cpu = cpu;

  if (es.count("berth:pids_limit")) {
    r.pids = spec::PidsResources{SpecInt(flavor, "berth:pids_limit", 1, int64_t{1} << 22)};
  }
  if (es.count("quota:disk_io_weight")) {
    spec::BlockIoResources io;
    io.weight = static_cast<uint16_t>(SpecInt(flavor, "quota:disk_io_weight", 10, 1000));
    r.block_io = io;
  }
  return r;
}

int ParseSignal(const std::string& name) {
  return name.empty() ? SIGTERM : berth::ParseSignal(name);
}

UserIds ResolveUser(const std::string& user, const std::string& passwd, const std::string& group) {
  UserIds ids;
  if (user.empty()) return ids;
  std::string u = user, g;
  if (size_t colon = user.find(':'); colon != std::string::npos) {
    u = user.substr(0, colon);
    g = user.substr(colon + 1);
  }
  if (ParseInt(u)) {
    ids.uid = ToId(u, "uid");
    if (auto e = FindEntry(passwd, u); e && e->size() >= 4) ids.gid = ToId((*e)[3], "gid");
  } else {
    auto e = FindEntry(passwd, u);
    if (!e || e->size() < 4) Invalid("image config User: no user \"" + u + "\" in /etc/passwd");
    ids.uid = ToId((*e)[2], "uid");
    ids.gid = ToId((*e)[3], "gid");
  }
  if (!g.empty()) {
    if (ParseInt(g)) {
      ids.gid = ToId(g, "gid");
    } else {
      auto e = FindEntry(group, g);
      if (!e) Invalid("image config User: no group \"" + g + "\" in /etc/group");
      ids.gid = ToId((*e)[2], "gid");
    }
  }
  return ids;
}

bool IsEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

spec::Spec BuildInstanceSpec(const SpecInputs& in) {
  const InstanceRecord& inst = *in.instance;
  const store::ContainerConfig& img = *in.image;
  spec::Spec s = spec::DefaultSpec();
  s.root.path = in.rootfs;
  s.root.readonly = false;
  s.hostname = inst.hostname;

  spec::Process& p = s.process;
  p.terminal = false;
  p.args = img.entrypoint;
  const auto& tail = inst.command.empty() ? img.cmd : inst.command;
  p.args.insert(p.args.end(), tail.begin(), tail.end());
  if (p.args.empty()) {
    Invalid("command: the image has no Entrypoint or Cmd, so the request must give a command");
  }
  p.env = {kDefaultPath};
  for (const auto& e : img.env) SetEnv(p.env, e);
  // Nova's metadata and user data, the way Docker's links handed addresses to a process:
  // metadata keys that are valid variable names as they are (Heat templates wire tiers
  // together with them), the user data in BERTH_USER_DATA, base64 as Nova keeps it. The
  // request's env wins over both.
  for (const auto& [key, value] : inst.metadata) {
    if (IsEnvName(key)) SetEnv(p.env, key + "=" + value);
  }
  if (!inst.user_data.empty()) SetEnv(p.env, "BERTH_USER_DATA=" + inst.user_data);
  for (const auto& e : inst.env) {
    if (e.find('=') == std::string::npos || e[0] == '=')
      Invalid("env: want KEY=value, got \"" + e + "\"");
    SetEnv(p.env, e);
  }
  // Software inside recognises OpenStack this way, as under Nova's libvirt LXC driver.
  SetEnv(p.env, "product_name=OpenStack Nova");
  SetEnv(p.env, "container=berth");
  SetEnv(p.env, "HOSTNAME=" + inst.hostname);
  p.cwd = img.working_dir.empty() ? "/" : img.working_dir;
  if (p.cwd[0] != '/') p.cwd = "/" + p.cwd;
  UserIds ids = ResolveUser(img.user, in.etc_passwd, in.etc_group);
  p.user.uid = ids.uid;
  p.user.gid = ids.gid;
  p.capabilities = security::DefaultCapabilities();
  p.no_new_privileges = true;
  p.rlimits = {spec::Rlimit{.type = "RLIMIT_NOFILE", .hard = 4096, .soft = 4096}};

  // Network: a namespace of its own with only loopback until networking lands.
  s.linux.namespaces = {
      {spec::NamespaceType::kPid, ""},     {spec::NamespaceType::kMount, ""},
      {spec::NamespaceType::kIpc, ""},     {spec::NamespaceType::kUts, ""},
      {spec::NamespaceType::kNetwork, ""},
  };
  s.linux.seccomp = security::DefaultSeccompProfileFor(in.bounding_caps);
  spec::Resources res = FlavorToResources(inst.flavor, in.swap_accounting);
  if (s.linux.resources) res.devices = s.linux.resources->devices;
  s.linux.resources = res;
  s.annotations["org.openstack.nova.uuid"] = inst.uuid;
  s.annotations["org.openstack.nova.name"] = inst.name;
  spec::ValidateSpec(s);
  return s;
}

}  // namespace berth::server
