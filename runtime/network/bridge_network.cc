#include "runtime/network/bridge_network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <sstream>
#include <utility>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/phase_timer.h"
#include "runtime/common/scope_guard.h"

namespace berth::net {
namespace {

constexpr const char* kHostIfPrefix = "bt-";
constexpr const char* kRecordSuffix = ".conf";

void CheckInstanceId(const std::string& id) {
  if (!IsValidInstanceId(id)) {
    throw Error(ErrorKind::kInvalidArgument, "instance id \"" + id + "\" is not valid");
  }
}

// One "key=value" per line; ports repeat.
std::string SerializeRecord(const Attachment& a) {
  std::ostringstream out;
  out << "instance_id=" << a.instance_id << "\nhost_ifname=" << a.host_ifname
      << "\nifname=" << a.ifname << "\naddress=" << a.address.ToString()
      << "\nprefix_len=" << a.prefix_len << "\nmac=" << a.mac.ToString()
      << "\ngateway=" << a.gateway.ToString() << "\nmtu=" << a.mtu << "\n";
  if (!a.address6.empty()) {
    out << "address6=" << a.address6 << "\nprefix_len6=" << a.prefix_len6
        << "\ngateway6=" << a.gateway6 << "\n";
  }
  for (const auto& p : a.ports) out << "port=" << ToString(p) << "\n";
  return out.str();
}

Attachment ParseRecord(const std::string& text, const std::string& path) {
  return WithContext("attachment record " + path, [&] {
    Attachment a;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "instance_id")
        a.instance_id = value;
      else if (key == "host_ifname")
        a.host_ifname = value;
      else if (key == "ifname")
        a.ifname = value;
      else if (key == "address")
        a.address = Ipv4Address::Parse(value);
      else if (key == "prefix_len")
        a.prefix_len = std::stoi(value);
      else if (key == "mac")
        a.mac = MacAddress::Parse(value);
      else if (key == "gateway")
        a.gateway = Ipv4Address::Parse(value);
      else if (key == "mtu")
        a.mtu = static_cast<unsigned>(std::stoul(value));
      else if (key == "port")
        a.ports.push_back(ParsePortMapping(value));
      else if (key == "address6")
        a.address6 = CanonicalIpv6(value);
      else if (key == "prefix_len6")
        a.prefix_len6 = std::stoi(value);
      else if (key == "gateway6")
        a.gateway6 = CanonicalIpv6(value);
    }
    if (a.instance_id.empty() || a.host_ifname.empty()) {
      throw Error(ErrorKind::kInternal, "record is incomplete");
    }
    return a;
  });
}

bool PortsClash(const PortMapping& a, const PortMapping& b) {
  return a.protocol == b.protocol && a.host_port == b.host_port &&
         (!a.host_ip || !b.host_ip || *a.host_ip == *b.host_ip);
}

// The transit's (host end, bridge end) IPv4 addresses.
std::pair<Ipv4Address, Ipv4Address> TransitAddresses(const Ipv4Subnet& transit) {
  if (transit.prefix_len == 31) return {transit.At(0), transit.At(1)};
  return {transit.At(1), transit.At(2)};
}

// Fixed link-local addresses of the transit's ends for IPv6 routes: the link joins two
// namespaces and nothing else, so they cannot clash, and they survive re-creation.
constexpr const char* kTransitHost6 = "fe80::1";
constexpr const char* kTransitPeer6 = "fe80::2";

// br_netfilter's switches, per namespace; present only where the module is loaded.
constexpr const char* kBridgeNetfilterSysctls[] = {
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
    "/proc/sys/net/bridge/bridge-nf-call-arptables",
};

// An address or route that is already there is done: after a restart, most are.
template <typename Fn>
void AddIfMissing(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kAlreadyExists) throw;
  }
}

}  // namespace

bool IsValidInstanceId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::string HostIfname(const std::string& instance_id) {
  return HashedIfname(kHostIfPrefix, instance_id);
}

std::string TransitIfname(const std::string& bridge) {
  if (bridge.size() + 2 <= 15) return bridge + "-h";
  return HashedIfname("bh-", bridge);
}

std::string BridgeNetnsPin(const std::string& state_dir) { return JoinPath(state_dir, "netns"); }

BridgeNetwork::BridgeNetwork(BridgeConfig config) : config_(std::move(config)) {
  gateway_ = config_.gateway.value_or(config_.subnet.At(1));
  if (!IsValidLinkName(config_.bridge)) {
    throw Error(ErrorKind::kInvalidArgument, "bridge name \"" + config_.bridge + "\" is not valid");
  }
  if (config_.transit.prefix_len < 24 || config_.transit.prefix_len > 31) {
    throw Error(ErrorKind::kInvalidArgument,
                "transit " + config_.transit.ToString() + " must be a /24 to /31");
  }
  if (config_.subnet.Contains(config_.transit.network) ||
      config_.transit.Contains(config_.subnet.network)) {
    throw Error(ErrorKind::kInvalidArgument, "transit " + config_.transit.ToString() +
                                                 " overlaps the subnet " +
                                                 config_.subnet.ToString());
  }
  transit_ifname_ = TransitIfname(config_.bridge);
  pin_ = BridgeNetnsPin(config_.state_dir);
  if (config_.host_netns_fd >= 0) host_ns_ = OpenNetns(NetnsRef::Fd(config_.host_netns_fd));
  ipam_ = std::make_unique<Ipam>(JoinPath(config_.state_dir, "leases"), config_.subnet, gateway_);
  MakeDirs(JoinPath(config_.state_dir, "attachments"), 0700);
}

BridgeNetwork::~BridgeNetwork() = default;

Netlink& BridgeNetwork::HostNetlink() {
  if (!host_nl_) host_nl_.emplace(Netlink::OpenIn(NetnsRef::Fd(host_ns_.get())));
  return *host_nl_;
}

Netlink* BridgeNetwork::BridgeNetlink(bool create) {
  if (bridge_nl_) return &*bridge_nl_;
  UniqueFd ns = OpenPinnedNetns(pin_);
  if (!ns) {
    if (!create) return nullptr;
    ns = CreateNetns();
    PinNetns(ns.get(), pin_);
  }
  bridge_nl_.emplace(Netlink::OpenIn(NetnsRef::Fd(ns.get())));
  bridge_ns_ = std::move(ns);
  return &*bridge_nl_;
}

void BridgeNetwork::ForgetBridgeNetns() {
  // The socket holds the namespace too: both go, or the namespace would outlive its pin.
  bridge_nl_.reset();
  bridge_ns_.reset();
  ready_ = false;
  bridge_table_current_ = false;
}

UniqueFd BridgeNetwork::OpenBridgeNetns() {
  std::lock_guard lock(mu_);
  if (!BridgeNetlink(/*create=*/false)) return UniqueFd();
  return OpenNetns(NetnsRef::Fd(bridge_ns_.get()));
}

bool BridgeNetwork::HostEndExists(const std::string& instance_id) {
  CheckInstanceId(instance_id);
  std::lock_guard lock(mu_);
  auto record = LoadRecord(instance_id);
  Netlink* br = BridgeNetlink(/*create=*/false);
  return br && br->FindLink(record ? record->host_ifname : HostIfname(instance_id)).has_value();
}

std::string BridgeNetwork::RecordPath(const std::string& id) const {
  return JoinPath(JoinPath(config_.state_dir, "attachments"), id + kRecordSuffix);
}

std::optional<Attachment> BridgeNetwork::LoadRecord(const std::string& id) const {
  std::string path = RecordPath(id);
  auto text = ReadFileIfExists(path);
  if (!text) return std::nullopt;
  return ParseRecord(*text, path);
}

std::vector<Attachment> BridgeNetwork::LoadRecords() const {
  std::string dir = JoinPath(config_.state_dir, "attachments");
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) ThrowErrno("opendir", dir);
  std::vector<Attachment> out;
  const std::string suffix = kRecordSuffix;
  while (dirent* entry = ::readdir(d.get())) {
    std::string name = entry->d_name;
    if (name.size() <= suffix.size() || name[0] == '.' ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    if (auto record = LoadRecord(name.substr(0, name.size() - suffix.size()))) {
      out.push_back(std::move(*record));
    }
  }
  return out;
}

void BridgeNetwork::SaveRecord(const Attachment& a) {
  WriteFileAtomic(RecordPath(a.instance_id), SerializeRecord(a), 0600, Durability::kDurable);
}

void BridgeNetwork::RemoveRecord(const std::string& id) {
  std::string path = RecordPath(id);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink", path);
}

void BridgeNetwork::EnsureBridge() {
  std::lock_guard lock(mu_);
  EnsureBridgeLocked();
}

void BridgeNetwork::EnsureBridgeLocked() {
  WithContext("ensure bridge " + config_.bridge, [&] {
    Netlink& br = *BridgeNetlink(/*create=*/true);
    if (ready_ && br.FindLink(config_.bridge) && HostNetlink().FindLink(transit_ifname_)) {
      // br_netfilter may have been loaded since (Docker started): it turns its switches on
      // in every namespace, ours included.
      ApplyBridgeSysctlsLocked();
      return;
    }
    br.SetUp("lo");
    if (!br.FindLink(config_.bridge)) br.CreateBridge(config_.bridge, config_.mtu);
    br.SetUp(config_.bridge);
    AddIfMissing([&] {
      br.AddAddress(config_.bridge,
                    gateway_.ToString() + "/" + std::to_string(config_.subnet.prefix_len));
    });
    if (config_.subnet6) {
      // No duplicate address detection: ours by configuration, and usable at once.
      AddIfMissing([&] {
        br.AddAddress(config_.bridge,
                      config_.subnet6->At(1) + "/" + std::to_string(config_.subnet6->prefix_len),
                      /*skip_dad=*/true);
      });
    }
    ApplyBridgeSysctlsLocked();
    EnsureTransitLocked();
    if (config_.enable_ip_forward) {
      WriteNetSysctl(host_ns_.get(), "net/ipv4/ip_forward", "1");
    }
    // Lets a connection from the host to 127.0.0.1:<published port>, DNATed to an
    // instance, leave by the transit (the kernel refuses loopback sources on other devices
    // otherwise); the postrouting rule masquerades it to the transit's address.
    WriteNetSysctl(host_ns_.get(), "net/ipv4/conf/" + transit_ifname_ + "/route_localnet", "1");
    ready_ = true;
  });
}

void BridgeNetwork::ApplyBridgeSysctlsLocked() {
  const bool ipv6 = config_.subnet6.has_value();
  const std::string bridge = config_.bridge;
  RunInNetns(bridge_ns_.get(), [ipv6, &bridge] {
    WriteToFile("/proc/sys/net/ipv4/ip_forward", "1");
    if (ipv6) {
      WriteToFile("/proc/sys/net/ipv6/conf/all/forwarding", "1");
      WriteToFile("/proc/sys/net/ipv6/conf/" + bridge + "/proxy_ndp", "1");
      // Answer at once, not after up to 0.8 s (a proxy's default delay).
      WriteToFile("/proc/sys/net/ipv6/neigh/" + bridge + "/proxy_delay", "0");
    }
    for (const char* key : kBridgeNetfilterSysctls) {
      if (::access(key, F_OK) == 0) WriteToFile(key, "0");
    }
  });
}

void BridgeNetwork::EnsureTransitLocked() {
  WithContext("transit " + transit_ifname_, [&] {
    Netlink& host = HostNetlink();
    Netlink& br = *BridgeNetlink(/*create=*/false);
    // A host end whose peer is not in this bridge namespace belongs to one that is gone
    // (its pin was removed): of no use.
    if (host.FindLink(transit_ifname_) && !br.FindLink(kTransitPeerIfname)) {
      host.DeleteLinkIfExists(transit_ifname_);
    }
    if (!host.FindLink(transit_ifname_)) {
      br.DeleteLinkIfExists(kTransitPeerIfname);
      host.CreateVethPair({.name = transit_ifname_,
                           .peer_name = kTransitPeerIfname,
                           .peer_netns = NetnsRef::Fd(bridge_ns_.get()),
                           .peer_mac = std::nullopt,
                           .mtu = config_.mtu});
    }
    host.SetUp(transit_ifname_);
    br.SetUp(kTransitPeerIfname);
    auto [host_addr, peer_addr] = TransitAddresses(config_.transit);
    const std::string len = "/" + std::to_string(config_.transit.prefix_len);
    AddIfMissing([&] { host.AddAddress(transit_ifname_, host_addr.ToString() + len); });
    AddIfMissing([&] { br.AddAddress(kTransitPeerIfname, peer_addr.ToString() + len); });
    // The bridge namespace routes everything that is not the instances' to the host; the
    // host routes the instances' subnet to the bridge namespace.
    AddIfMissing([&] { br.AddDefaultRoute(kTransitPeerIfname, host_addr.ToString()); });
    AddIfMissing(
        [&] { host.AddRoute(transit_ifname_, config_.subnet.ToString(), peer_addr.ToString()); });
    if (config_.subnet6) {
      // Routes over IPv6 go via fixed link-local addresses. The host also needs a global
      // one, as its source toward instances (a router does not forward link-local
      // sources): <subnet6>::2, never an instance's (theirs end in an IPv4 address of the
      // subnet). The instances take it for on-link, so the bridge namespace answers their
      // neighbour solicitations for it (proxy NDP) and routes it to the host.
      const std::string host6 = config_.subnet6->At(2);
      AddIfMissing([&] {
        host.AddAddress(transit_ifname_, std::string(kTransitHost6) + "/64", /*skip_dad=*/true);
      });
      AddIfMissing([&] { host.AddAddress(transit_ifname_, host6 + "/128", /*skip_dad=*/true); });
      AddIfMissing([&] {
        br.AddAddress(kTransitPeerIfname, std::string(kTransitPeer6) + "/64", /*skip_dad=*/true);
      });
      AddIfMissing([&] { br.AddDefaultRoute(kTransitPeerIfname, kTransitHost6); });
      AddIfMissing([&] { br.AddRoute(kTransitPeerIfname, host6 + "/128", kTransitHost6); });
      br.AddProxyNeighbour(config_.bridge, host6);
      AddIfMissing(
          [&] { host.AddRoute(transit_ifname_, config_.subnet6->ToString(), kTransitPeer6); });
    }
  });
}

void BridgeNetwork::SyncFirewallLocked(const Attachment* changed, ElementChange change) {
  FirewallState state;
  state.table = config_.table;
  state.transit = transit_ifname_;
  state.subnet = config_.subnet;
  state.gateway = gateway_;
  for (const auto& a : LoadRecords()) {
    state.endpoints.push_back(
        FirewallEndpoint{a.host_ifname, a.address, a.mac, a.ports, a.address6});
  }
  // Anti-spoofing first: no port is published before its instance's sources are checked.
  // No bridge namespace: no port to protect.
  if (BridgeNetlink(/*create=*/false)) {
    WithContext("apply nftables rules in the bridge namespace", [&] {
      if (changed && bridge_table_current_ && !state.endpoints.empty()) {
        try {
          FirewallEndpoint ep{
              changed->host_ifname, changed->address, changed->mac, {}, changed->address6};
          RunNft(bridge_ns_.get(), RenderBridgeElements(config_.table, ep, change));
          return;
        } catch (const Error&) {
          // The table is not what this process made (changed behind its back): make it
          // whole again below.
        }
      }
      bridge_table_current_ = false;
      RunNft(bridge_ns_.get(), RenderBridgeRuleset(state));
      bridge_table_current_ = !state.endpoints.empty();
    });
  }
  // The NAT table changes only with published ports (most instances have none): the same
  // text applied again would cost an nft transaction for nothing. Reconcile forgets it,
  // so a table changed behind berthd's back is put right at the next start.
  std::string nat = RenderNatRuleset(state);
  if (nat == applied_nat_ruleset_) return;
  applied_nat_ruleset_.clear();  // unknown if this fails half-way
  WithContext("apply nftables rules", [&] { RunNft(host_ns_.get(), nat); });
  applied_nat_ruleset_ = std::move(nat);
}

Attachment BridgeNetwork::Attach(const std::string& instance_id, const NetnsRef& netns,
                                 const AttachOptions& options) {
  CheckInstanceId(instance_id);
  if (!IsValidLinkName(options.ifname)) {
    throw Error(ErrorKind::kInvalidArgument,
                "interface name \"" + options.ifname + "\" is not valid");
  }
  std::lock_guard lock(mu_);
  return WithContext("attach " + instance_id + " to bridge " + config_.bridge, [&] {
    PhaseTimer timer("attach");
    Attachment a;
    a.instance_id = instance_id;
    a.host_ifname = HostIfname(instance_id);
    a.ifname = options.ifname;
    a.prefix_len = config_.subnet.prefix_len;
    a.gateway = gateway_;
    a.mtu = options.mtu ? options.mtu : config_.mtu;
    a.ports = options.ports;

    // A record whose host end is gone is stale: the instance's namespace died (stop,
    // crash, rebuild) and took the veth with it. Its lease is kept, so the instance
    // attaches again with the same address and MAC.
    std::optional<Attachment> stale;
    for (const auto& other : LoadRecords()) {
      if (other.instance_id == instance_id) {
        Netlink* br = BridgeNetlink(/*create=*/false);
        if (br && br->FindLink(other.host_ifname)) {
          throw Error(ErrorKind::kAlreadyExists, "already attached");
        }
        stale = other;
        continue;
      }
      if (other.host_ifname == a.host_ifname) {
        throw Error(ErrorKind::kAlreadyExists,
                    "host interface " + a.host_ifname + " is taken by " + other.instance_id);
      }
      for (const auto& mine : a.ports) {
        for (const auto& theirs : other.ports) {
          if (PortsClash(mine, theirs)) {
            throw Error(ErrorKind::kConflict,
                        "port " + ToString(mine) + " is already published by " + other.instance_id);
          }
        }
      }
    }
    // Render once up front so a bad port fails before anything is made.
    for (const auto& p : a.ports) ParsePortMapping(ToString(p));
    timer.Mark("records");

    EnsureBridgeLocked();
    timer.Mark("bridge");
    Rollback undo;
    a.address = ipam_->Allocate(instance_id);  // the owner's lease when it has one
    undo.Add([&] {
      if (!stale) ipam_->Release(a.address);
    });
    a.mac = MacAddress::FromIpv4(a.address);
    if (config_.subnet6) {
      a.address6 = config_.subnet6->At(a.address.value);
      a.prefix_len6 = config_.subnet6->prefix_len;
      a.gateway6 = config_.subnet6->At(1);
    }
    SaveRecord(a);
    timer.Mark("lease+record");
    undo.Add([&] {
      if (stale) {
        SaveRecord(*stale);
      } else {
        RemoveRecord(instance_id);
      }
    });

    Netlink& br = *BridgeNetlink(/*create=*/false);
    // A veth of this name without a record is debris of a crash: ours to remove.
    br.DeleteLinkIfExists(a.host_ifname);
    br.CreateVethPair({.name = a.host_ifname,
                       .peer_name = a.ifname,
                       .peer_netns = netns,
                       .peer_mac = a.mac,
                       .mtu = a.mtu});
    undo.Add([&] { br.DeleteLinkIfExists(a.host_ifname); });
    br.SetMaster(a.host_ifname, config_.bridge);
    br.SetUp(a.host_ifname);
    timer.Mark("veth");

    WithContext("configure " + a.ifname + " inside the instance", [&] {
      Netlink inside = Netlink::OpenIn(netns);
      inside.SetUp("lo");
      inside.AddAddress(a.ifname, a.address.ToString() + "/" + std::to_string(a.prefix_len));
      if (!a.address6.empty()) {
        inside.AddAddress(a.ifname, a.address6 + "/" + std::to_string(a.prefix_len6),
                          /*skip_dad=*/true);
      }
      inside.SetUp(a.ifname);
      inside.AddDefaultRoute(a.ifname, a.gateway.ToString());
      if (!a.gateway6.empty()) inside.AddDefaultRoute(a.ifname, a.gateway6);
    });
    timer.Mark("inside");
    // Failing after this, the bridge table may hold this port's elements: the next sync
    // renders it whole.
    undo.Add([&] { bridge_table_current_ = false; });
    SyncFirewallLocked(&a, ElementChange::kAdd);
    timer.Mark("nftables");
    AddToFastPathLocked(a, br);
    timer.Mark("fast path");
    undo.Commit();
    return a;
  });
}

bool BridgeNetwork::Detach(const std::string& instance_id) {
  CheckInstanceId(instance_id);
  std::lock_guard lock(mu_);
  return WithContext("detach " + instance_id + " from bridge " + config_.bridge, [&] {
    auto record = LoadRecord(instance_id);
    bool detached = DetachLocked(instance_id, record);
    SyncFirewallLocked(record ? &*record : nullptr, ElementChange::kDelete);
    return detached;
  });
}

bool BridgeNetwork::DetachLocked(const std::string& instance_id,
                                 const std::optional<Attachment>& record) {
  bool any = false;
  if (record) {
    // No bridge namespace: the veth went with it.
    if (Netlink* br = BridgeNetlink(/*create=*/false)) {
      any |= br->DeleteLinkIfExists(record->host_ifname);
    }
    any |= ipam_->Release(record->address);
    if (fast_path_) fast_path_->RemovePort(record->mac);
  }
  // A lease without a record: Attach crashed between the two steps.
  any |= ipam_->ReleaseOwner(instance_id) > 0;
  if (record) {
    RemoveRecord(instance_id);
    any = true;
  }
  return any;
}

std::vector<Attachment> BridgeNetwork::List() const {
  std::lock_guard lock(mu_);
  return LoadRecords();
}

std::optional<Attachment> BridgeNetwork::Find(const std::string& instance_id) const {
  CheckInstanceId(instance_id);
  std::lock_guard lock(mu_);
  return LoadRecord(instance_id);
}

void BridgeNetwork::DeleteOrphanVethsLocked() {
  std::set<std::string> known;
  for (const auto& a : LoadRecords()) known.insert(a.host_ifname);
  Netlink* nl = BridgeNetlink(/*create=*/false);
  if (!nl) return;
  for (const auto& link : nl->ListLinks()) {
    if (link.type == "veth" && link.name.rfind(kHostIfPrefix, 0) == 0 && !known.count(link.name)) {
      nl->DeleteLinkIfExists(link.name);
    }
  }
}

std::vector<std::string> BridgeNetwork::Reconcile(const std::set<std::string>& live) {
  std::lock_guard lock(mu_);
  return WithContext("reconcile bridge " + config_.bridge, [&] {
    std::vector<std::string> detached;
    std::set<std::string> kept;
    for (const auto& a : LoadRecords()) {
      if (live.count(a.instance_id)) {
        kept.insert(a.instance_id);
      } else if (DetachLocked(a.instance_id, a)) {
        detached.push_back(a.instance_id);
      }
    }
    for (const auto& lease : ipam_->Reconcile(kept)) {
      if (!lease.owner.empty()) detached.push_back(lease.owner);
    }
    DeleteOrphanVethsLocked();
    if (!kept.empty()) EnsureBridgeLocked();
    applied_nat_ruleset_.clear();
    bridge_table_current_ = false;
    SyncFirewallLocked();
    SyncFastPathLocked();
    return detached;
  });
}

void BridgeNetwork::Cleanup() {
  std::lock_guard lock(mu_);
  WithContext("clean up bridge " + config_.bridge, [&] {
    for (const auto& a : LoadRecords()) DetachLocked(a.instance_id, a);
    ipam_->Reconcile({});
    DeleteOrphanVethsLocked();
    RunNft(host_ns_.get(), RenderRemoval(config_.table));
    applied_nat_ruleset_.clear();
    HostNetlink().DeleteLinkIfExists(transit_ifname_);  // its peer goes with it
    // A bridge of ours in the host's namespace, left by a berthd from before the bridge had
    // a namespace of its own.
    HostNetlink().DeleteLinkIfExists(config_.bridge);
    if (Netlink* br = BridgeNetlink(/*create=*/false)) br->DeleteLinkIfExists(config_.bridge);
    ForgetBridgeNetns();
    UnpinNetns(pin_);
    fast_path_.reset();
  });
}

std::string BridgeNetwork::FastPathStatus() const {
  std::lock_guard lock(mu_);
  if (!config_.fast_path) return "off: disabled in the configuration";
  if (!fast_path_off_.empty()) return "off: " + fast_path_off_;
  return "on";
}

BridgeFastPath* BridgeNetwork::FastPathLocked() {
  if (fast_path_ || !config_.fast_path || !fast_path_off_.empty()) return fast_path_.get();
  try {
    fast_path_ = std::make_unique<BridgeFastPath>();
  } catch (const Error& e) {
    // Whatever the reason (no bpf(2), a verifier older than the program): the bridge
    // carries everything, and berthd says why at start.
    DisableFastPathLocked(e.message());
  }
  return fast_path_.get();
}

void BridgeNetwork::DisableFastPathLocked(const std::string& why) {
  fast_path_.reset();
  fast_path_off_ = why;
}

namespace {

FastPathPort PortOf(const Attachment& a, int ifindex) {
  FastPathPort port{.ifindex = ifindex, .mac = a.mac, .address = a.address, .address6 = {}};
  if (!a.address6.empty()) {
    std::array<uint8_t, 16> bytes{};
    if (::inet_pton(AF_INET6, a.address6.c_str(), bytes.data()) == 1) port.address6 = bytes;
  }
  return port;
}

}  // namespace

void BridgeNetwork::AddToFastPathLocked(const Attachment& a, Netlink& br) {
  BridgeFastPath* fast = FastPathLocked();
  if (!fast) return;
  try {
    fast->AddPort(bridge_ns_.get(), PortOf(a, br.GetLink(a.host_ifname).index));
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    DisableFastPathLocked(e.message());  // the bridge carries everything, as before
  }
}

void BridgeNetwork::SyncFastPathLocked() {
  // Loaded even with no bridge yet, so that berthd's start-up says whether it can be.
  BridgeFastPath* fast = FastPathLocked();
  Netlink* br = BridgeNetlink(/*create=*/false);
  if (!fast || !br) return;
  std::map<std::string, int> ifindex;
  for (const auto& link : br->ListLinks()) ifindex[link.name] = link.index;
  std::vector<FastPathPort> ports;
  for (const auto& a : LoadRecords()) {
    auto it = ifindex.find(a.host_ifname);
    if (it != ifindex.end()) ports.push_back(PortOf(a, it->second));
  }
  try {
    fast->Sync(bridge_ns_.get(), ports);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kUnsupported) throw;
    DisableFastPathLocked(e.message());
  }
}

}  // namespace berth::net
