// Open vSwitch's database (OVSDB) through `ovs-vsctl`, for the neutron-ovs mode: a port
// on br-int whose Interface carries the external-ids that OVN's ovn-controller and
// Neutron's OVS agent bind a Neutron port by.
//
// Why ovs-vsctl and not our own JSON-RPC client over db.sock: it is what os-vif's "vsctl"
// backend and every OVS runbook use, so the ports we make are the ones those tools expect;
// each call is ONE OVSDB transaction (del-port + add-port + set external_ids either all
// happen or none does); and, unless --no-wait, it waits until ovs-vswitchd has applied
// the change (next_cfg/cur_cfg), so when AddPort returns the port really is on the bridge
// — a JSON-RPC client would have to reimplement that handshake and the schema's
// port/interface/bridge references. The cost is a fork/exec per call (posix_spawn, from
// the multi-threaded daemon) and a dependency on the binary (Debian: openvswitch-switch),
// which any host running OVS has. Arguments are passed as argv (no shell) and every value
// is validated and quoted as an OVSDB string, so no input can become a command.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace berth::net {

struct OvsdbConfig {
  std::string vsctl = "ovs-vsctl";  // looked up in PATH
  std::string db;                   // "unix:/run/openvswitch/db.sock"; empty: ovs-vsctl's own
  int timeout_seconds = 10;         // ovs-vsctl --timeout; we kill it 2 s later
};

using ExternalIds = std::map<std::string, std::string>;

// The external-ids of a Neutron port's Interface, exactly as os-vif writes them:
// iface-id=<port id>, iface-status=active, attached-mac=<instance MAC>, vm-uuid=<instance>.
ExternalIds NeutronExternalIds(const std::string& port_id, const std::string& mac,
                               const std::string& vm_uuid);

// "\"fa:16:3e:00:00:01\"": an OVSDB string atom (backslash and quote escaped).
std::string QuoteOvsString(const std::string& value);

// Parses `ovs-vsctl get ... external_ids` output: {a=b, "c d"="e"} (values quoted or bare).
// kInvalidArgument when it is not such a map.
ExternalIds ParseOvsMap(const std::string& text);

// The argv for each operation (pure, so unit tests see exactly what is run).
std::vector<std::string> VsctlBase(const OvsdbConfig& config);
// One transaction: remove a stale port of that name anywhere, add it to bridge, set the
// Interface's external_ids (and mtu_request when mtu > 0).
std::vector<std::string> VsctlAddPortArgs(const OvsdbConfig& config, const std::string& bridge,
                                          const std::string& port, const ExternalIds& ids,
                                          unsigned mtu);
std::vector<std::string> VsctlDelPortArgs(const OvsdbConfig& config, const std::string& bridge,
                                          const std::string& port);

class OvsVsctl {
 public:
  explicit OvsVsctl(OvsdbConfig config);

  // Runs ovs-vsctl with these arguments after the base ones; stdout. A non-zero exit is a
  // kSystem error carrying ovs-vsctl's stderr ("ovs-vsctl: no bridge named br-int");
  // ovs-vsctl missing is kUnsupported.
  std::string Run(const std::vector<std::string>& args) const;

  bool BridgeExists(const std::string& bridge) const;
  void AddPort(const std::string& bridge, const std::string& port, const ExternalIds& ids,
               unsigned mtu = 0) const;
  // Idempotent: false when the bridge had no such port.
  bool DeletePort(const std::string& bridge, const std::string& port) const;
  std::vector<std::string> ListPorts(const std::string& bridge) const;
  // "system" (the kernel datapath; also when the column is empty) or "netdev" (userspace).
  std::string BridgeDatapathType(const std::string& bridge) const;
  // nullopt when there is no Interface of that name.
  std::optional<ExternalIds> InterfaceExternalIds(const std::string& iface) const;

  const OvsdbConfig& config() const { return config_; }

 private:
  std::string RunArgv(const std::vector<std::string>& argv, int* exit_code) const;
  OvsdbConfig config_;
};

}  // namespace berth::net
