// berthd's use of runtime/network: an instance's network request (the "network" object of
// POST /v1/instances, or Nova's network_info), kept with the instance
// (<instance dir>/network.json), attached between the container's create and start (its
// namespace exists, its process has not run yet), shown by GET, detached on delete and
// reconciled at start-up. InstanceManager calls the hooks; everything else is here.
//
// Modes: none (loopback only), bridge (berth0, IPAM, NAT, published ports), neutron (one
// veth per Nova VIF: type "bridge" joins the VIF's Linux bridge, type "ovs" becomes a
// br-int port with os-vif's external-ids), libvirt (a network libvirtd manages).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "driver/server/json_util.h"
#include "driver/server/network_config.h"
#include "runtime/network/firewall.h"
#include "runtime/network/vif_network.h"

namespace berth::net {
class BridgeNetwork;
}

namespace berth::server {

struct NeutronVif {
  net::VifKind kind = net::VifKind::kLinuxBridge;
  net::VifSpec spec;
  std::vector<std::string> dns;  // the subnets' dns_nameservers
};

// What an instance asked for; persisted as network.json.
struct NetworkRequest {
  std::string mode = "none";
  std::vector<net::PortMapping> ports;  // bridge
  std::vector<NeutronVif> vifs;         // neutron
  std::string libvirt_network;          // libvirt; empty: the config's
};

// From the body of POST /v1/instances: "network": {"mode", "ports": [{"host_port",
// "container_port", "protocol", "host_ip"}], "libvirt_network"}, or Nova's "network_info"
// (a list of VIFs: neutron mode; an empty list: none). Neither: the config's default
// mode. kInvalidArgument naming the field.
NetworkRequest ParseNetworkRequest(const rapidjson::Value& body, const NetworkOptions& options);
// One Nova VIF (network_info element, or the body of POST .../interfaces).
NeutronVif ParseNovaVif(const rapidjson::Value& vif, const std::string& path,
                        const std::string& ifname);

std::string NetworkRequestToJson(const NetworkRequest& request);
NetworkRequest NetworkRequestFromJson(const std::string& json, const std::string& path);

// One interface as GET /v1/instances/{uuid} shows it.
struct InterfaceView {
  std::string ifname;
  std::string kind;  // "bridge", "linuxbridge", "ovs", "libvirt"
  std::string port_id;
  std::string mac;
  std::vector<std::string> addresses;  // CIDR
  std::string gateway;
  std::string host_ifname;
  std::string bridge;
  // Where host_ifname and the bridge are when not in the host's namespace: the bridge
  // mode's bridge namespace (its pin, for nsenter --net=...).
  std::string host_netns;
  unsigned mtu = 0;
};
struct NetworkView {
  std::string mode = "none";
  std::vector<InterfaceView> interfaces;
  std::vector<net::PortMapping> ports;
};
void WriteNetworkJson(JsonWriter& w, const NetworkView& view);
void WriteInterfaceJson(JsonWriter& w, const InterfaceView& i);

class InstanceNetwork {
 public:
  // Opens the IPAM and records under <state_dir>/network; touches no device yet.
  InstanceNetwork(const NetworkOptions& options, const std::string& state_dir);
  ~InstanceNetwork();

  // Checks that the request can be served by this host's configuration (e.g. the
  // libvirt mode without libvirt) before anything is made.
  void Check(const NetworkRequest& request) const;

  void Save(const std::string& instance_dir, const NetworkRequest& request);
  // Absent file: mode none (instances made before networking).
  NetworkRequest Load(const std::string& instance_dir) const;

  // Between the container's create and start: attaches the instance's namespace (the
  // init's pid) as the request says and writes /etc/resolv.conf, /etc/hosts and
  // /etc/hostname into its root. A stale attachment (namespace died on stop, rebuild)
  // is replaced, keeping addresses and MACs. Throws with nothing left on failure.
  void Attach(const std::string& uuid, pid_t init_pid, const std::string& rootfs,
              const std::string& hostname, const NetworkRequest& request);
  // Every attachment, lease and rule of the instance; idempotent.
  void Detach(const std::string& uuid);

  // Start-up: releases what belongs to no instance in `live`; then, for each running
  // instance (uuid -> init pid) re-creates attachments whose host end vanished.
  void Reconcile(const std::map<std::string, NetworkRequest>& live,
                 const std::map<std::string, pid_t>& running);

  // attach_interface on a running instance (pid > 0) or a stopped one (pid 0: attached
  // at the next start). Returns the interface; the request is updated and saved.
  InterfaceView AttachInterface(const std::string& uuid, pid_t pid, const std::string& instance_dir,
                                const rapidjson::Value& vif);
  // kNotFound when the instance has no such port.
  void DetachInterface(const std::string& uuid, const std::string& instance_dir,
                       const std::string& port_id);

  NetworkView View(const std::string& uuid) const;

 private:
  void Refresh(const std::string& uuid, const std::string& mode);
  void AttachVif(const std::string& uuid, pid_t pid, const NeutronVif& vif);
  bool HostLinkExists(const std::string& name);

  NetworkOptions options_;
  std::string state_dir_;
  UniqueFd host_ns_;
  std::unique_ptr<net::BridgeNetwork> bridge_;
  std::unique_ptr<net::VifNetwork> vifs_;
  mutable std::mutex mu_;  // views_
  std::map<std::string, NetworkView> views_;
};

}  // namespace berth::server
