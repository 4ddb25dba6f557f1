// The "bridge" network mode: a host bridge owned by berthd, one veth pair per instance,
// addresses from a persistent IPAM, NAT for egress, published ports and anti-spoofing
// rules (firewall.h). berthd makes one BridgeNetwork at start-up and calls:
//
//   BridgeNetwork net(config);
//   net.Reconcile(live_instance_ids);          // crash recovery, re-applies the rules
//   Attachment a = net.Attach(id, NetnsRef::Pid(init_pid), {.ports = {...}});
//   ... write RenderResolvConf/RenderHosts (dns_files.h) into the instance's rootfs ...
//   net.Detach(id);                            // on delete
//   net.Cleanup();                             // uninstall: nothing of ours remains
//
// Attach (between the container's create and start, when its namespace exists):
//   1. the bridge is ensured: created with the gateway address and up when missing;
//      net.ipv4.ip_forward=1 in the host namespace;
//   2. an address is leased for the instance id (Ipam), and a record of the attachment is
//      written (durably) under state_dir/attachments/ BEFORE any device exists, so a crash
//      at any later point leaves something Reconcile can find and undo;
//   3. a veth pair is created whose host end is "bt-<8 hex of a hash of the id>" and whose
//      peer is created directly inside the instance's namespace, already named `ifname`
//      (eth0) and carrying its MAC (02:42:<IPv4 bytes>, as Docker does) and MTU;
//   4. the host end is enslaved to the bridge and set up; inside: lo up, the address (and
//      the IPv6 one, when configured), the interface up, the default route(s) via the
//      gateway(s);
//   5. the nftables tables are re-rendered from all records (one atomic transaction).
// Any failure undoes the steps already made and rethrows: no lease, record, device or rule
// is left by a failed Attach.
//
// Thread-safe: one mutex serialises Attach/Detach/Reconcile/Cleanup. State on disk is
// shared with nobody else: one BridgeNetwork per state_dir.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/network/address.h"
#include "runtime/network/firewall.h"
#include "runtime/network/ipam.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"

namespace berth::net {

struct BridgeConfig {
  std::string bridge = "berth0";
  Ipv4Subnet subnet = Ipv4Subnet{Ipv4Address{0x0a580000}, 16};  // 10.88.0.0/16
  std::optional<Ipv4Address> gateway;  // default: the subnet's first host (10.88.0.1)
  // Optional IPv6: the bridge gets <subnet6>::1, each instance the subnet with its IPv4
  // address in the low 32 bits (Ipv6Subnet) and a default route via ::1. No NAT66 and no
  // published ports over IPv6; the host's IPv6 forwarding is left as it is.
  std::optional<Ipv6Subnet> subnet6;
  unsigned mtu = 1500;
  std::string state_dir = "/var/lib/berth/network/bridge";
  std::string table = "berth";  // nftables table name, in the ip and bridge families
  bool enable_ip_forward = true;
  // The namespace that plays "the host"; -1: the caller's (berthd's) own. The fd is
  // duplicated. Tests pass a namespace they made so nothing touches the real host.
  int host_netns_fd = -1;
};

struct AttachOptions {
  std::string ifname = "eth0";  // the interface's name inside the instance
  unsigned mtu = 0;             // 0: the config's
  std::vector<PortMapping> ports;
};

struct Attachment {
  std::string instance_id;
  std::string host_ifname;  // "bt-xxxxxxxx"
  std::string ifname;       // inside the instance
  Ipv4Address address;
  int prefix_len = 0;
  MacAddress mac;
  Ipv4Address gateway;
  unsigned mtu = 0;
  std::vector<PortMapping> ports;
  // With BridgeConfig::subnet6 (empty otherwise): canonical text, without the prefix.
  std::string address6;
  int prefix_len6 = 0;
  std::string gateway6;
};

// "bt-" + 8 hex digits of FNV-1a(instance_id): at most 15 bytes, stable across restarts.
std::string HostIfname(const std::string& instance_id);

class BridgeNetwork {
 public:
  // Opens the IPAM and the attachment records; touches no device or rule yet.
  explicit BridgeNetwork(BridgeConfig config);
  ~BridgeNetwork();

  // The bridge with its gateway address, up; created when missing. Idempotent.
  void EnsureBridge();

  // kAlreadyExists when the instance is already attached (Detach first) or its host
  // interface name collides with another attachment's; kResourceExhausted when the subnet
  // is full; kInvalidArgument for a bad id, interface name or port; kConflict when a host
  // port is already published by another instance.
  Attachment Attach(const std::string& instance_id, const NetnsRef& netns,
                    const AttachOptions& options = {});

  // Removes the veth (its peer dies with it), the lease, the record and the instance's
  // rules; when it was the last one, our nftables tables go too. Idempotent: false when
  // nothing was attached.
  bool Detach(const std::string& instance_id);

  std::vector<Attachment> List() const;
  std::optional<Attachment> Find(const std::string& instance_id) const;

  // Crash recovery at start-up: detaches every attachment whose instance is not in
  // `live`, frees leases without a record, deletes "bt-" veths without one, and
  // re-applies the rules for the rest. Returns the ids it detached.
  std::vector<std::string> Reconcile(const std::set<std::string>& live);

  // Removes everything of ours: all attachments, leases, rules and the bridge itself.
  void Cleanup();

  const BridgeConfig& config() const { return config_; }
  Ipv4Address gateway() const { return gateway_; }

 private:
  std::string RecordPath(const std::string& instance_id) const;
  std::optional<Attachment> LoadRecord(const std::string& instance_id) const;
  std::vector<Attachment> LoadRecords() const;
  void SaveRecord(const Attachment& attachment);
  void RemoveRecord(const std::string& instance_id);
  void EnsureBridgeLocked();
  void SyncFirewallLocked();
  bool DetachLocked(const std::string& instance_id);
  void DeleteOrphanVethsLocked();
  Netlink& HostNetlink();

  BridgeConfig config_;
  Ipv4Address gateway_;
  UniqueFd host_ns_;
  std::unique_ptr<Ipam> ipam_;
  std::optional<Netlink> host_nl_;
  mutable std::mutex mu_;
};

// Instance ids become file names and interface hashes: 1-128 of [A-Za-z0-9_.-], not
// starting with '.'.
bool IsValidInstanceId(const std::string& instance_id);

}  // namespace berth::net
