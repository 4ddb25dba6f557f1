#include "runtime/network/ovsdb.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/network/command.h"

namespace berth::net {
namespace {

// ovs-vsctl exits 2 for "br-exists" of a missing bridge.
constexpr int kVsctlNoBridge = 2;

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Reads one atom at text[pos]: a quoted string (C escapes) or a bare run up to one of
// `stops`.
std::string ReadAtom(const std::string& text, size_t& pos, const char* stops) {
  std::string out;
  if (pos < text.size() && text[pos] == '"') {
    ++pos;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
      out += text[pos++];
    }
    if (pos >= text.size()) throw Error(ErrorKind::kInvalidArgument, "unterminated string");
    ++pos;
    return out;
  }
  while (pos < text.size() && !std::strchr(stops, text[pos])) out += text[pos++];
  return Trim(out);
}

}  // namespace

ExternalIds NeutronExternalIds(const std::string& port_id, const std::string& mac,
                               const std::string& vm_uuid) {
  return {{"iface-id", port_id},
          {"iface-status", "active"},
          {"attached-mac", mac},
          {"vm-uuid", vm_uuid}};
}

std::string QuoteOvsString(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

ExternalIds ParseOvsMap(const std::string& raw) {
  std::string text = Trim(raw);
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    throw Error(ErrorKind::kInvalidArgument, "not an OVSDB map: \"" + text + "\"");
  }
  ExternalIds ids;
  size_t pos = 1;
  const size_t end = text.size() - 1;
  auto skip_space = [&] {
    while (pos < end && text[pos] == ' ') ++pos;
  };
  skip_space();
  while (pos < end) {
    std::string key = ReadAtom(text, pos, "=,}");
    if (pos >= end || text[pos] != '=') {
      throw Error(ErrorKind::kInvalidArgument, "OVSDB map entry without '=': \"" + text + "\"");
    }
    ++pos;
    std::string value = ReadAtom(text, pos, ",}");
    ids[key] = value;
    skip_space();
    if (pos < end && text[pos] == ',') ++pos;
    skip_space();
  }
  return ids;
}

std::vector<std::string> VsctlBase(const OvsdbConfig& config) {
  std::vector<std::string> argv = {config.vsctl,
                                   "--timeout=" + std::to_string(config.timeout_seconds)};
  if (!config.db.empty()) argv.push_back("--db=" + config.db);
  return argv;
}

std::vector<std::string> VsctlAddPortArgs(const OvsdbConfig& config, const std::string& bridge,
                                          const std::string& port, const ExternalIds& ids,
                                          unsigned mtu) {
  std::vector<std::string> argv = VsctlBase(config);
  // As os-vif: a port left by a crash (on any bridge) is replaced, not an error.
  for (const char* arg : {"--", "--if-exists", "del-port"}) argv.push_back(arg);
  argv.push_back(port);
  for (const char* arg : {"--", "add-port"}) argv.push_back(arg);
  argv.push_back(bridge);
  argv.push_back(port);
  for (const char* arg : {"--", "set", "Interface"}) argv.push_back(arg);
  argv.push_back(port);
  for (const auto& [key, value] : ids) {
    argv.push_back("external_ids:" + QuoteOvsString(key) + "=" + QuoteOvsString(value));
  }
  if (mtu > 0) argv.push_back("mtu_request=" + std::to_string(mtu));
  return argv;
}

std::vector<std::string> VsctlDelPortArgs(const OvsdbConfig& config, const std::string& bridge,
                                          const std::string& port) {
  std::vector<std::string> argv = VsctlBase(config);
  for (const char* arg : {"--if-exists", "del-port"}) argv.push_back(arg);
  argv.push_back(bridge);
  argv.push_back(port);
  return argv;
}

OvsVsctl::OvsVsctl(OvsdbConfig config) : config_(std::move(config)) {}

std::string OvsVsctl::RunArgv(const std::vector<std::string>& argv, int* exit_code) const {
  CommandResult result;
  try {
    result = RunCommand(argv, config_.timeout_seconds * 1000 + 2000);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::kNotFound) {
      throw Error(ErrorKind::kUnsupported,
                  e.message() + " (install Open vSwitch: Debian's openvswitch-switch)");
    }
    throw;
  }
  if (exit_code) {
    *exit_code = result.exit_code;
  } else if (result.exit_code != 0) {
    throw Error(ErrorKind::kSystem, FormatArgv(argv) + ": exit " +
                                        std::to_string(result.exit_code) + ": " + Trim(result.err));
  }
  return result.out;
}

std::string OvsVsctl::Run(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = VsctlBase(config_);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunArgv(argv, nullptr);
}

bool OvsVsctl::BridgeExists(const std::string& bridge) const {
  std::vector<std::string> argv = VsctlBase(config_);
  argv.push_back("br-exists");
  argv.push_back(bridge);
  int code = 0;
  RunArgv(argv, &code);
  if (code == 0) return true;
  if (code == kVsctlNoBridge) return false;
  // Anything else (the db unreachable...) is reported by a run that throws.
  Run({"br-exists", bridge});
  return false;
}

void OvsVsctl::AddPort(const std::string& bridge, const std::string& port, const ExternalIds& ids,
                       unsigned mtu) const {
  RunArgv(VsctlAddPortArgs(config_, bridge, port, ids, mtu), nullptr);
}

bool OvsVsctl::DeletePort(const std::string& bridge, const std::string& port) const {
  auto ports = ListPorts(bridge);
  bool present = std::find(ports.begin(), ports.end(), port) != ports.end();
  RunArgv(VsctlDelPortArgs(config_, bridge, port), nullptr);
  return present;
}

std::vector<std::string> OvsVsctl::ListPorts(const std::string& bridge) const {
  std::istringstream in(Run({"list-ports", bridge}));
  std::vector<std::string> ports;
  for (std::string line; std::getline(in, line);) {
    if (!Trim(line).empty()) ports.push_back(Trim(line));
  }
  return ports;
}

std::string OvsVsctl::BridgeDatapathType(const std::string& bridge) const {
  std::string type = Trim(Run({"get", "Bridge", bridge, "datapath_type"}));
  if (type.size() >= 2 && type.front() == '"') type = type.substr(1, type.size() - 2);
  return type.empty() ? "system" : type;
}

std::optional<ExternalIds> OvsVsctl::InterfaceExternalIds(const std::string& iface) const {
  std::string out = Run({"--if-exists", "get", "Interface", iface, "external_ids"});
  if (Trim(out).empty()) return std::nullopt;
  return ParseOvsMap(out);
}

}  // namespace berth::net
