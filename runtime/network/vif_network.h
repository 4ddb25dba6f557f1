// Instances plugged into a switch that someone else manages — the "neutron-linuxbridge",
// "neutron-ovs" and "libvirt" modes:
//
//   neutron-linuxbridge  the host end joins the Linux bridge named by Nova's VIF
//                        ("brq<net id>", made by os-vif's linux_bridge plug or the agent);
//   neutron-ovs          the host end becomes a port on br-int whose Interface carries
//                        iface-id / iface-status / attached-mac / vm-uuid (ovsdb.h), which
//                        ovn-controller or neutron-openvswitch-agent bind;
//   libvirt              the host end joins the bridge of a network libvirtd runs
//                        (libvirt_network.h); addresses come from libvirt's DHCP.
//
// In every mode one veth pair per VIF: the host end is named as Nova/Neutron expect
// (VIF["devname"], "tap" + the first 11 characters of the port id), the peer is created
// directly inside the instance's namespace as `ifname` (eth0) with the port's MAC and
// MTU, and gets the port's fixed IPs, default route(s) and host routes. Neutron owns the
// addresses and the filtering (security groups, port security): no IPAM and no nftables
// of ours here.
//
//   VifNetwork vifs(config);
//   vifs.Reconcile(live_instance_ids);                  // berthd start-up
//   vifs.AttachToOvs(uuid, NetnsRef::Pid(init), vif);   // before Nova waits for
//                                                       // network-vif-plugged
//   vifs.Detach(uuid, port_id);                         // detach_interface
//   vifs.DetachInstance(uuid);                          // delete
//
// Like the bridge mode, a record (<state_dir>/<devname>.conf) is written durably BEFORE
// any device or OVS port exists, so a crash at any point leaves something Reconcile
// finds; a failed attach undoes what it made. Thread-safe (one mutex).
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/network/address.h"
#include "runtime/network/libvirt_network.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"
#include "runtime/network/ovsdb.h"

namespace berth::net {

enum class VifKind { kLinuxBridge, kOvs, kLibvirt };
std::string ToString(VifKind kind);  // "linuxbridge", "ovs", "libvirt"

struct VifRoute {
  std::string destination;  // "192.168.5.0/24", "fd00:5::/64"
  std::string via;          // next hop; empty: on-link
  bool operator==(const VifRoute&) const = default;
};

// One Neutron port as Nova's network_info VIF describes it.
struct VifSpec {
  std::string port_id;  // VIF["id"]: the Neutron port's uuid
  std::string devname;  // VIF["devname"]: the host end, <= 15 bytes ("tapXXXXXXXX-XX")
  std::string bridge;   // VIF["network"]["bridge"]: "brq…" or "br-int"
  MacAddress mac;       // VIF["address"]
  // The fixed IPs with their subnet's prefix ("10.0.0.5/24", "fd00::5/64").
  std::vector<std::string> fixed_ips;
  // Each subnet's gateway: a default route via it (at most one per family).
  std::vector<std::string> gateways;
  std::vector<VifRoute> routes;  // the subnets' host_routes
  unsigned mtu = 0;              // VIF["network"]["meta"]["mtu"]; 0: kernel default
  std::string ifname = "eth0";   // inside the instance
};

struct LibvirtAttachOptions {
  std::string ifname = "eth0";
  // Default: 52:54:00 (libvirt's prefix) + 3 bytes of a hash of the instance id and network.
  std::optional<MacAddress> mac;
  unsigned mtu = 0;
};

struct VifAttachment {
  std::string instance_id;
  std::string port_id;  // for libvirt: "libvirt:<network>"
  VifKind kind = VifKind::kLinuxBridge;
  std::string bridge;
  std::string devname;
  std::string ifname;
  MacAddress mac;
  unsigned mtu = 0;
  std::vector<std::string> fixed_ips;
  std::string network;  // libvirt only: the network's name
  // libvirt only, not kept in the record: the network's DNS server (its address).
  std::vector<std::string> dns;
};

struct VifNetworkConfig {
  std::string state_dir = "/var/lib/berth/network/vifs";
  // The namespace that holds the bridges / where ovs-vswitchd runs; -1: berthd's own.
  int host_netns_fd = -1;
  OvsdbConfig ovsdb;
  std::string libvirt_uri = kDefaultLibvirtUri;
};

// The host end name for a libvirt attachment: "bv-" + 8 hex of FNV-1a(id/network).
std::string LibvirtHostIfname(const std::string& instance_id, const std::string& network);

class VifNetwork {
 public:
  explicit VifNetwork(VifNetworkConfig config);
  ~VifNetwork();

  // kNotFound when the bridge does not exist (os-vif's plug or the agent makes it);
  // kAlreadyExists when the port is already attached or devname is taken by another
  // record or an existing device; kInvalidArgument for a malformed spec. A record whose
  // host end is gone (the instance's namespace died on stop) is stale: it is cleared,
  // OVS port included, and the attach proceeds — so a restarted instance re-attaches.
  VifAttachment AttachToLinuxBridge(const std::string& instance_id, const NetnsRef& netns,
                                    const VifSpec& vif);
  // vif.bridge defaults to "br-int". vm-uuid is the instance id (Nova's instance uuid).
  // kNotFound when the OVS bridge does not exist; kUnsupported when ovs-vsctl is missing;
  // kSystem when OVSDB does not answer.
  VifAttachment AttachToOvs(const std::string& instance_id, const NetnsRef& netns,
                            const VifSpec& vif);
  // Errors of LookupLibvirtBridge (kUnsupported when libvirtd is not reachable), then as
  // AttachToLinuxBridge. When the network has IPv4 DHCP, an address of its ranges is
  // reserved for the MAC (a static <host> entry, libvirt_network.h) and configured inside
  // with a default route via the network's address (unless it is isolated); otherwise no
  // address is set and the instance must ask libvirt's DHCP itself. Detach removes the
  // entry (kept with the record while libvirtd is unreachable, as an OVS port is).
  VifAttachment AttachToLibvirtNetwork(const std::string& instance_id, const NetnsRef& netns,
                                       const std::string& network,
                                       const LibvirtAttachOptions& options = {});

  // Removes the OVS port (ovs kind), the veth and the record. false when nothing was
  // attached. When OVSDB fails the record stays (retry, or Reconcile) and it throws.
  bool Detach(const std::string& instance_id, const std::string& port_id);
  // Every VIF of the instance; returns how many.
  size_t DetachInstance(const std::string& instance_id);

  std::vector<VifAttachment> List() const;
  std::vector<VifAttachment> ListInstance(const std::string& instance_id) const;

  // Start-up: detaches every attachment whose instance is not in `live`; returns
  // "<instance>/<port>" for each.
  std::vector<std::string> Reconcile(const std::set<std::string>& live);

  const VifNetworkConfig& config() const { return config_; }

 private:
  VifAttachment AttachLocked(VifAttachment a, const NetnsRef& netns, const VifSpec& vif,
                             bool tx_checksum_off = false);
  void DetachLocked(const VifAttachment& a);
  std::vector<VifAttachment> LoadRecords() const;
  void SaveRecord(const VifAttachment& a);
  void RemoveRecord(const std::string& devname);
  std::string RecordPath(const std::string& devname) const;
  Netlink& HostNetlink();

  VifNetworkConfig config_;
  UniqueFd host_ns_;
  OvsVsctl ovs_;
  std::optional<Netlink> host_nl_;
  mutable std::mutex mu_;
};

// Checks a VifSpec (names, addresses, routes); kInvalidArgument with the field.
void ValidateVifSpec(const VifSpec& vif);

}  // namespace berth::net
