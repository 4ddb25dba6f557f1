// The "bridge" network mode: a bridge owned by berthd, one veth pair per instance,
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
// The bridge lives in a network namespace of its own (the "bridge namespace"), joined to
// the host's by a veth pair (the "transit"), and is a plain router there:
//
//   instance eth0 ─ bt-xxxxxxxx ─┐ bridge (gateway 10.88.0.1)    host ns
//   instance eth0 ─ bt-yyyyyyyy ─┘   ip_forward=1, bridge-nf-*=0 ─ "host" ══ <bridge>-h
//                                    default via the host's end     route subnet via transit
//
// Why: where br_netfilter is loaded with bridge-nf-call-iptables=1 (any host running
// Docker, Kubernetes or Neutron's Linux bridge agent), every frame crossing a bridge in the
// host's namespace also walks the IP-family netfilter hooks; those switches are per
// namespace, so in the bridge's own namespace berthd turns them off and frames between
// instances pay for the bridge alone, whatever the host's setting. What is about the host
// stays in the host's namespace: NAT (published ports, egress masquerade, hairpin) keyed on
// the transit's host end; the anti-spoofing table (bridge family) is in the bridge's.
//
// The bridge namespace is pinned on state_dir/netns (a bind mount of its nsfs file, as
// `ip netns add` does): found again after a berthd restart, and re-made (with the bridge
// and the transit) when the pin is gone, e.g. after a reboot. Cleanup removes it all.
//
// Attach (between the container's create and start, when its namespace exists):
//   1. the bridge namespace, bridge, transit and routes are ensured (created when missing);
//      net.ipv4.ip_forward=1 in the host namespace;
//   2. an address is leased for the instance id (Ipam), and a record of the attachment is
//      written (durably) under state_dir/attachments/ BEFORE any device exists, so a crash
//      at any later point leaves something Reconcile can find and undo;
//   3. a veth pair is created whose bridge-side end is "bt-<8 hex of a hash of the id>",
//      in the bridge namespace, and whose peer is created directly inside the instance's
//      namespace, already named `ifname` (eth0) and carrying its MAC (02:42:<IPv4 bytes>,
//      as Docker does) and MTU;
//   4. the bt- end is enslaved to the bridge and set up; inside: lo up, the address (and
//      the IPv6 one, when configured), the interface up, the default route(s) via the
//      gateway(s);
//   5. the nftables tables are brought to what all records say (one atomic transaction per
//      namespace): the instance's set elements added to a bridge table this process made,
//      or the tables rendered whole; the NAT table only when it changes;
//   6. the bt- end joins the fast path (bridge_fast_path.h): its map entry, its program.
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
#include "runtime/network/bridge_fast_path.h"
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
  // published ports over IPv6; the host's IPv6 forwarding is left as it is (the bridge
  // namespace forwards; the host gets a route to subnet6 over the transit).
  std::optional<Ipv6Subnet> subnet6;
  // The transit's IPv4 addresses: a /31 (its two addresses) or a /30../24 (its first two
  // hosts); the host's end takes the first, the bridge namespace's end the second. Only
  // those two namespaces ever see them: the host's connections to instances come from the
  // first. Link-local by default, as the link is; far from 169.254.169.254 (the metadata
  // address of Nova and clouds), which instances still reach through the host. Over IPv6
  // the transit routes via fixed link-local addresses, fe80::1 (host) and fe80::2, and the
  // host's end also has <subnet6>::2, its source toward instances.
  Ipv4Subnet transit = Ipv4Subnet{Ipv4Address{0xa9fe5800}, 31};  // 169.254.88.0/31
  unsigned mtu = 1500;
  std::string state_dir = "/var/lib/berth/network/bridge";
  std::string table = "berth";  // nftables table name, in the ip and bridge families
  bool enable_ip_forward = true;
  // The namespace that plays "the host" (the transit's host end, routes, NAT); -1: the
  // caller's (berthd's) own. The fd is duplicated. Tests pass a namespace they made so
  // nothing touches the real host; the bridge namespace is pinned under state_dir either
  // way.
  int host_netns_fd = -1;
  // Frames between instances skip the bridge when they pass its source checks
  // (bridge_fast_path.h); off, or where the kernel cannot, they all cross the bridge.
  bool fast_path = true;
};

struct AttachOptions {
  std::string ifname = "eth0";  // the interface's name inside the instance
  unsigned mtu = 0;             // 0: the config's
  std::vector<PortMapping> ports;
};

struct Attachment {
  std::string instance_id;
  std::string host_ifname;  // "bt-xxxxxxxx", in the bridge namespace
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
// The transit's host end: "<bridge>-h", or "bh-" + 8 hex digits of FNV-1a(bridge) when
// that would exceed 15 bytes. Its peer, in the bridge namespace, is kTransitPeerIfname.
std::string TransitIfname(const std::string& bridge);
inline constexpr const char* kTransitPeerIfname = "host";
// Where the bridge namespace is pinned: state_dir/netns.
std::string BridgeNetnsPin(const std::string& state_dir);

class BridgeNetwork {
 public:
  // Opens the IPAM and the attachment records; touches no device or rule yet.
  explicit BridgeNetwork(BridgeConfig config);
  ~BridgeNetwork();

  // The bridge namespace, the bridge with its gateway address, the transit and its
  // routes, the sysctls; made when missing. Idempotent.
  void EnsureBridge();

  // The bridge namespace (an fd; invalid when it does not exist now). For a look inside:
  // the bt- ends, the bridge, the anti-spoofing table.
  UniqueFd OpenBridgeNetns();
  // Whether the instance's bt- end exists in the bridge namespace.
  bool HostEndExists(const std::string& instance_id);

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

  // Removes everything of ours: all attachments, leases, rules, the transit, the bridge,
  // and the bridge namespace's pin (with no other holder, the namespace ends).
  void Cleanup();

  // "on", or "off: " and why (the configuration, or what the kernel refused).
  std::string FastPathStatus() const;

  const BridgeConfig& config() const { return config_; }
  Ipv4Address gateway() const { return gateway_; }

 private:
  std::string RecordPath(const std::string& instance_id) const;
  std::optional<Attachment> LoadRecord(const std::string& instance_id) const;
  std::vector<Attachment> LoadRecords() const;
  void SaveRecord(const Attachment& attachment);
  void RemoveRecord(const std::string& instance_id);
  void EnsureBridgeLocked();
  // Renders both nftables tables from the records. With `changed`, the one attachment
  // added or removed since the last sync: the bridge table then gets just its elements
  // when this process made that table (firewall.h, RenderBridgeElements).
  void SyncFirewallLocked(const Attachment* changed = nullptr,
                          ElementChange change = ElementChange::kAdd);
  // `record`: the instance's attachment record as the caller read it (none: there is none).
  bool DetachLocked(const std::string& instance_id, const std::optional<Attachment>& record);
  void DeleteOrphanVethsLocked();
  void EnsureTransitLocked();
  void ApplyBridgeSysctlsLocked();
  Netlink& HostNetlink();
  // The bridge namespace's socket; nullptr when the namespace does not exist (and
  // `create` is false).
  Netlink* BridgeNetlink(bool create);
  void ForgetBridgeNetns();
  // The fast path, loaded on first use; nullptr when off.
  BridgeFastPath* FastPathLocked();
  void DisableFastPathLocked(const std::string& why);
  void AddToFastPathLocked(const Attachment& attachment, Netlink& bridge_netlink);
  void SyncFastPathLocked();

  BridgeConfig config_;
  Ipv4Address gateway_;
  std::string transit_ifname_;
  std::string pin_;
  UniqueFd host_ns_;
  UniqueFd bridge_ns_;
  std::unique_ptr<Ipam> ipam_;
  std::optional<Netlink> host_nl_;
  std::optional<Netlink> bridge_nl_;
  bool ready_ = false;                 // EnsureBridge completed in this process
  std::string applied_nat_ruleset_;    // what the host's NAT table was last set to
  bool bridge_table_current_ = false;  // the bridge table is the one this process rendered
  std::unique_ptr<BridgeFastPath> fast_path_;
  std::string fast_path_off_;  // why it is off; empty: on, or not loaded yet
  mutable std::mutex mu_;
};

// Instance ids become file names and interface hashes: 1-128 of [A-Za-z0-9_.-], not
// starting with '.'.
bool IsValidInstanceId(const std::string& instance_id);

}  // namespace berth::net
