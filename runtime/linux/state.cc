#include "runtime/linux/state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"

namespace berth::container {

std::string SerializeStateRecord(const StateRecord& r) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("ociVersion");
  w.String(r.oci_version.c_str());
  w.Key("id");
  w.String(r.id.c_str());
  w.Key("bundle");
  w.String(r.bundle.c_str());
  w.Key("rootfs");
  w.String(r.rootfs.c_str());
  w.Key("cgroupPath");
  w.String(r.cgroup_path.c_str());
  w.Key("created");
  w.String(r.created.c_str());
  w.Key("initPid");
  w.Int(r.init_pid);
  w.Key("monitorPid");
  w.Int(r.monitor_pid);
  w.Key("initStartTime");
  w.Uint64(r.init_start_time);
  w.Key("userNamespace");
  w.Bool(r.user_namespace);
  w.Key("annotations");
  w.StartObject();
  for (const auto& [k, v] : r.annotations) {
    w.Key(k.c_str());
    w.String(v.c_str());
  }
  w.EndObject();
  w.EndObject();
  return buf.GetString();
}

StateRecord ParseStateRecord(const std::string& json, const std::string& path) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  auto bad = [&](const std::string& why) {
    return Error(ErrorKind::kInvalidArgument, path + ": " + why);
  };
  if (doc.HasParseError() || !doc.IsObject()) throw bad("malformed state record");
  StateRecord r;
  auto str = [&](const char* key, std::string& out) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) return;
    if (!it->value.IsString()) throw bad(std::string(key) + ": expected a string");
    out = it->value.GetString();
  };
  auto pid = [&](const char* key, pid_t& out) {
    auto it = doc.FindMember(key);
    if (it == doc.MemberEnd()) return;
    if (!it->value.IsInt()) throw bad(std::string(key) + ": expected an integer");
    out = it->value.GetInt();
  };
  str("ociVersion", r.oci_version);
  str("id", r.id);
  str("bundle", r.bundle);
  str("rootfs", r.rootfs);
  str("cgroupPath", r.cgroup_path);
  str("created", r.created);
  pid("initPid", r.init_pid);
  pid("monitorPid", r.monitor_pid);
  if (auto it = doc.FindMember("initStartTime"); it != doc.MemberEnd() && it->value.IsUint64()) {
    r.init_start_time = it->value.GetUint64();
  }
  if (auto it = doc.FindMember("userNamespace"); it != doc.MemberEnd() && it->value.IsBool()) {
    r.user_namespace = it->value.GetBool();
  }
  if (auto it = doc.FindMember("annotations"); it != doc.MemberEnd() && it->value.IsObject()) {
    for (const auto& m : it->value.GetObject()) {
      if (m.value.IsString()) r.annotations[m.name.GetString()] = m.value.GetString();
    }
  }
  return r;
}

std::string StateDir(const std::string& state_root, const std::string& id) {
  return JoinPath(state_root, id);
}

void WriteStateRecord(const std::string& state_dir, const StateRecord& record) {
  // Runtime state lives as long as the processes it describes: atomic, not durable.
  WriteFileAtomic(JoinPath(state_dir, "state.json"), SerializeStateRecord(record), 0600,
                  Durability::kAtomicOnly);
}

StateRecord ReadStateRecord(const std::string& state_root, const std::string& id) {
  ValidateContainerId(id);
  std::string path = JoinPath(StateDir(state_root, id), "state.json");
  auto content = ReadFileIfExists(path);
  if (!content) {
    throw Error(ErrorKind::kNotFound, "container \"" + id + "\" does not exist");
  }
  return ParseStateRecord(*content, path);
}

void ValidateContainerId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 64 && id[0] != '.';
  for (char c : id) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) ok = false;
  }
  if (!ok) {
    throw Error(
        ErrorKind::kInvalidArgument,
        "invalid container id \"" + id + "\": use 1-64 of [A-Za-z0-9_.-], not starting with '.'");
  }
}

unsigned long long ProcessStartTime(pid_t pid) {
  auto stat = ReadFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  // The command name may hold spaces and parentheses: count fields after the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  std::string_view rest = std::string_view(*stat).substr(close + 2);
  int field = 3;  // rest starts at field 3 (state)
  size_t pos = 0;
  while (field < 22 && pos != std::string_view::npos) {
    if (field == 3 && rest.substr(0, 1) == "Z") return 0;
    pos = rest.find(' ', pos);
    if (pos != std::string_view::npos) ++pos;
    ++field;
  }
  if (pos == std::string_view::npos) return 0;
  return std::strtoull(rest.data() + pos, nullptr, 10);
}

std::string NowRfc3339() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace berth::container
