#include "runtime/network/vif_network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/network/bridge_network.h"

namespace berth::net {
namespace {

constexpr const char* kRecordSuffix = ".conf";
constexpr const char* kDefaultOvsBridge = "br-int";
// The bridge mode deletes every "bt-" veth it has no record of: never use its prefix.
constexpr const char* kBridgeModePrefix = "bt-";

[[noreturn]] void Invalid(const std::string& message) {
  throw Error(ErrorKind::kInvalidArgument, message);
}

// Port ids are uuids; network names are short words. Both end up in records and in
// ovs-vsctl arguments, so keep them to a plain alphabet.
bool IsPlainToken(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

// AF_INET / AF_INET6 for a literal address, 0 otherwise.
int AddressFamily(const std::string& text) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) return AF_INET;
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) return AF_INET6;
  return 0;
}

// "10.0.0.5/24" -> AF_INET; 0 when malformed.
int CidrFamily(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size()) return 0;
  int family = AddressFamily(cidr.substr(0, slash));
  std::string len = cidr.substr(slash + 1);
  if (len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) return 0;
  int prefix = std::stoi(len);
  if (family == AF_INET && prefix > 32) return 0;
  if (family == AF_INET6 && prefix > 128) return 0;
  return family;
}

// The reserved address of a libvirt attachment: its only fixed IP, without the prefix.
Ipv4Address LibvirtAddressOf(const VifAttachment& a) {
  const std::string& cidr = a.fixed_ips.front();
  return Ipv4Address::Parse(cidr.substr(0, cidr.find('/')));
}

void CheckInstanceId(const std::string& id) {
  if (!IsValidInstanceId(id)) Invalid("instance id \"" + id + "\" is not valid");
}

std::string SerializeRecord(const VifAttachment& a) {
  std::ostringstream out;
  out << "instance_id=" << a.instance_id << "\nport_id=" << a.port_id
      << "\nkind=" << ToString(a.kind) << "\nbridge=" << a.bridge << "\ndevname=" << a.devname
      << "\nifname=" << a.ifname << "\nmac=" << a.mac.ToString() << "\nmtu=" << a.mtu
      << "\nnetwork=" << a.network << "\n";
  for (const auto& ip : a.fixed_ips) out << "fixed_ip=" << ip << "\n";
  return out.str();
}

VifKind ParseKind(const std::string& text) {
  if (text == "linuxbridge") return VifKind::kLinuxBridge;
  if (text == "ovs") return VifKind::kOvs;
  if (text == "libvirt") return VifKind::kLibvirt;
  throw Error(ErrorKind::kInternal, "unknown vif kind \"" + text + "\"");
}

VifAttachment ParseRecord(const std::string& text, const std::string& path) {
  return WithContext("vif record " + path, [&] {
    VifAttachment a;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string key = line.substr(0, eq), value = line.substr(eq + 1);
      if (key == "instance_id")
        a.instance_id = value;
      else if (key == "port_id")
        a.port_id = value;
      else if (key == "kind")
        a.kind = ParseKind(value);
      else if (key == "bridge")
        a.bridge = value;
      else if (key == "devname")
        a.devname = value;
      else if (key == "ifname")
        a.ifname = value;
      else if (key == "mac")
        a.mac = MacAddress::Parse(value);
      else if (key == "mtu")
        a.mtu = static_cast<unsigned>(std::stoul(value));
      else if (key == "network")
        a.network = value;
      else if (key == "fixed_ip")
        a.fixed_ips.push_back(value);
    }
    if (a.instance_id.empty() || a.devname.empty() || a.bridge.empty()) {
      throw Error(ErrorKind::kInternal, "record is incomplete");
    }
    return a;
  });
}

}  // namespace

std::string ToString(VifKind kind) {
  switch (kind) {
    case VifKind::kLinuxBridge:
      return "linuxbridge";
    case VifKind::kOvs:
      return "ovs";
    case VifKind::kLibvirt:
      return "libvirt";
  }
  return "unknown";
}

std::string LibvirtHostIfname(const std::string& instance_id, const std::string& network) {
  return HashedIfname("bv-", instance_id + "/" + network);
}

void ValidateVifSpec(const VifSpec& vif) {
  if (!IsPlainToken(vif.port_id)) Invalid("port id \"" + vif.port_id + "\" is not valid");
  if (!IsValidLinkName(vif.devname)) {
    Invalid("devname \"" + vif.devname + "\" is not a valid interface name (<= 15 bytes)");
  }
  if (vif.devname.rfind(kBridgeModePrefix, 0) == 0) {
    Invalid("devname \"" + vif.devname + "\": the prefix bt- belongs to the bridge mode");
  }
  if (!IsValidLinkName(vif.bridge)) Invalid("bridge \"" + vif.bridge + "\" is not valid");
  if (!IsValidLinkName(vif.ifname)) Invalid("ifname \"" + vif.ifname + "\" is not valid");
  if (vif.mtu != 0 && (vif.mtu < 68 || vif.mtu > 65535)) {
    Invalid("mtu " + std::to_string(vif.mtu) + " is out of range");
  }
  for (const auto& ip : vif.fixed_ips) {
    if (!CidrFamily(ip)) Invalid("fixed ip \"" + ip + "\" is not address/prefix");
  }
  bool have_v4 = false, have_v6 = false;
  for (const auto& gw : vif.gateways) {
    int family = AddressFamily(gw);
    if (!family) Invalid("gateway \"" + gw + "\" is not an address");
    bool& seen = family == AF_INET ? have_v4 : have_v6;
    if (seen) Invalid("more than one default gateway for one address family");
    seen = true;
  }
  for (const auto& route : vif.routes) {
    int family = CidrFamily(route.destination);
    if (!family) Invalid("route destination \"" + route.destination + "\" is not a prefix");
    if (!route.via.empty() && AddressFamily(route.via) != family) {
      Invalid("route " + route.destination + " via \"" + route.via + "\": bad next hop");
    }
  }
}

VifNetwork::VifNetwork(VifNetworkConfig config) : config_(std::move(config)), ovs_(config_.ovsdb) {
  if (config_.host_netns_fd >= 0) host_ns_ = OpenNetns(NetnsRef::Fd(config_.host_netns_fd));
  MakeDirs(config_.state_dir, 0700);
}

VifNetwork::~VifNetwork() = default;

Netlink& VifNetwork::HostNetlink() {
  if (!host_nl_) host_nl_.emplace(Netlink::OpenIn(NetnsRef::Fd(host_ns_.get())));
  return *host_nl_;
}

std::string VifNetwork::RecordPath(const std::string& devname) const {
  return JoinPath(config_.state_dir, devname + kRecordSuffix);
}

std::vector<VifAttachment> VifNetwork::LoadRecords() const {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(config_.state_dir.c_str()), ::closedir);
  if (!d) ThrowErrno("opendir", config_.state_dir);
  std::vector<VifAttachment> out;
  const std::string suffix = kRecordSuffix;
  while (dirent* entry = ::readdir(d.get())) {
    std::string name = entry->d_name;
    if (name.size() <= suffix.size() || name[0] == '.' ||
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    std::string path = JoinPath(config_.state_dir, name);
    if (auto text = ReadFileIfExists(path)) out.push_back(ParseRecord(*text, path));
  }
  return out;
}

void VifNetwork::SaveRecord(const VifAttachment& a) {
  WriteFileAtomic(RecordPath(a.devname), SerializeRecord(a), 0600, Durability::kDurable);
}

void VifNetwork::RemoveRecord(const std::string& devname) {
  std::string path = RecordPath(devname);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink", path);
}

VifAttachment VifNetwork::AttachToLinuxBridge(const std::string& instance_id, const NetnsRef& netns,
                                              const VifSpec& vif) {
  CheckInstanceId(instance_id);
  ValidateVifSpec(vif);
  std::lock_guard lock(mu_);
  return WithContext(
      "attach port " + vif.port_id + " of " + instance_id + " to bridge " + vif.bridge, [&] {
        auto bridge = HostNetlink().FindLink(vif.bridge);
        if (!bridge) {
          throw Error(ErrorKind::kNotFound, "bridge " + vif.bridge + " does not exist");
        }
        if (bridge->type != "bridge") {
          Invalid(vif.bridge + " is a " + (bridge->type.empty() ? "device" : bridge->type) +
                  ", not a Linux bridge");
        }
        VifAttachment a;
        a.instance_id = instance_id;
        a.kind = VifKind::kLinuxBridge;
        return AttachLocked(std::move(a), netns, vif);
      });
}

VifAttachment VifNetwork::AttachToOvs(const std::string& instance_id, const NetnsRef& netns,
                                      const VifSpec& spec) {
  CheckInstanceId(instance_id);
  VifSpec vif = spec;
  if (vif.bridge.empty()) vif.bridge = kDefaultOvsBridge;
  ValidateVifSpec(vif);
  std::lock_guard lock(mu_);
  return WithContext(
      "attach port " + vif.port_id + " of " + instance_id + " to OVS bridge " + vif.bridge, [&] {
        if (!ovs_.BridgeExists(vif.bridge)) {
          throw Error(ErrorKind::kNotFound, "OVS bridge " + vif.bridge + " does not exist");
        }
        // Packet sockets of the userspace datapath forward offloaded (partial) checksums
        // as they are: without this, ping works but TCP and UDP between ports do not.
        bool tx_csum_off = ovs_.BridgeDatapathType(vif.bridge) == "netdev";
        VifAttachment a;
        a.instance_id = instance_id;
        a.kind = VifKind::kOvs;
        return AttachLocked(std::move(a), netns, vif, tx_csum_off);
      });
}

VifAttachment VifNetwork::AttachToLibvirtNetwork(const std::string& instance_id,
                                                 const NetnsRef& netns, const std::string& network,
                                                 const LibvirtAttachOptions& options) {
  CheckInstanceId(instance_id);
  if (!IsPlainToken(network)) Invalid("libvirt network name \"" + network + "\" is not valid");
  return WithContext("attach " + instance_id + " to libvirt network " + network, [&] {
    // Asked before taking the lock: it may wait on libvirtd.
    std::string bridge = LookupLibvirtBridge(config_.libvirt_uri, network);
    VifSpec vif;
    vif.port_id = "libvirt:" + network;
    vif.devname = LibvirtHostIfname(instance_id, network);
    vif.bridge = bridge;
    vif.ifname = options.ifname;
    vif.mtu = options.mtu;
    if (options.mac) {
      vif.mac = *options.mac;
    } else {
      uint32_t hash = StableHash(instance_id + "/" + network);
      vif.mac.bytes = {0x52,
                       0x54,
                       0x00,
                       static_cast<uint8_t>(hash >> 16),
                       static_cast<uint8_t>(hash >> 8),
                       static_cast<uint8_t>(hash)};
    }
    // A static DHCP host entry for the MAC: the address is the network's to give, and
    // berthd configures it (the instance needs no DHCP client). Asked before the lock;
    // planned again should another host take the address before our entry lands.
    for (int attempt = 1;; ++attempt) {
      auto plan = PlanLibvirtReservation(config_.libvirt_uri, network, vif.mac);
      vif.fixed_ips.clear();
      vif.gateways.clear();
      std::vector<std::string> dns;
      if (plan) {
        vif.fixed_ips = {plan->address.ToString() + "/" + std::to_string(plan->prefix_len)};
        if (plan->gateway) vif.gateways = {plan->gateway->ToString()};
        if (plan->dns) dns = {plan->dns->ToString()};
      }
      ValidateVifSpec(vif);
      try {
        std::lock_guard lock(mu_);
        VifAttachment a;
        a.instance_id = instance_id;
        a.kind = VifKind::kLibvirt;
        a.network = network;
        a = AttachLocked(std::move(a), netns, vif);
        a.dns = dns;
        return a;
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kConflict || !plan || attempt == 3) throw;
      }
    }
  });
}

VifAttachment VifNetwork::AttachLocked(VifAttachment a, const NetnsRef& netns, const VifSpec& vif,
                                       bool tx_checksum_off) {
  a.port_id = vif.port_id;
  a.bridge = vif.bridge;
  a.devname = vif.devname;
  a.ifname = vif.ifname;
  a.mac = vif.mac;
  a.mtu = vif.mtu;
  a.fixed_ips = vif.fixed_ips;

  Netlink& host = HostNetlink();
  for (const auto& other : LoadRecords()) {
    bool same_port = other.instance_id == a.instance_id && other.port_id == a.port_id;
    if (!same_port && other.devname != a.devname) continue;
    // A record whose host end is gone is stale: the instance's namespace died (it was
    // stopped, or crashed) and took the veth with it. Clear it (and its OVS port), so
    // starting the instance again re-attaches.
    if (!host.FindLink(other.devname)) {
      DetachLocked(other);
      continue;
    }
    if (same_port) {
      throw Error(ErrorKind::kAlreadyExists, "already attached (as " + other.devname + ")");
    }
    throw Error(ErrorKind::kAlreadyExists, "host interface " + a.devname + " is taken by port " +
                                               other.port_id + " of " + other.instance_id);
  }
  // No record names it, so it is not ours (a crash leaves the record until the device is
  // gone): never take over someone else's device.
  if (host.FindLink(a.devname)) {
    throw Error(ErrorKind::kAlreadyExists, "host interface " + a.devname + " already exists");
  }

  Rollback undo;
  SaveRecord(a);
  undo.Add([&] { RemoveRecord(a.devname); });
  // After the record, so a crash leaves something that Detach/Reconcile release.
  if (a.kind == VifKind::kLibvirt && !a.fixed_ips.empty()) {
    AddLibvirtReservation(config_.libvirt_uri, a.network, a.mac, LibvirtAddressOf(a));
    undo.Add([&] {
      RemoveLibvirtReservation(config_.libvirt_uri, a.network, a.mac, LibvirtAddressOf(a));
    });
  }
  host.CreateVethPair({.name = a.devname,
                       .peer_name = a.ifname,
                       .peer_netns = netns,
                       .peer_mac = a.mac,
                       .mtu = a.mtu});
  undo.Add([&] { HostNetlink().DeleteLinkIfExists(a.devname); });

  // The instance side is complete before the port reaches the switch: once the agent or
  // ovn-controller sees the port, Neutron reports it up and Nova may start the instance.
  WithContext("configure " + a.ifname + " inside the instance", [&] {
    Netlink inside = Netlink::OpenIn(netns);
    if (tx_checksum_off) {
      UniqueFd ns = OpenNetns(netns);
      SetTxChecksumOffload(ns.get(), a.ifname, false);
    }
    inside.SetUp("lo");
    for (const auto& ip : vif.fixed_ips) inside.AddAddress(a.ifname, ip, /*skip_dad=*/true);
    inside.SetUp(a.ifname);
    // A second port on a subnet with a gateway or host routes (two NICs, attach_interface)
    // meets the first port's routes: the first keeps them, as a guest's DHCP client would;
    // this port's own subnet is still reached on-link.
    auto add_unless_there = [](const std::function<void()>& add) {
      try {
        add();
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kAlreadyExists) throw;
      }
    };
    for (const auto& gw : vif.gateways) {
      add_unless_there([&] { inside.AddDefaultRoute(a.ifname, gw); });
    }
    for (const auto& route : vif.routes) {
      add_unless_there([&] { inside.AddRoute(a.ifname, route.destination, route.via); });
    }
  });

  if (a.kind == VifKind::kOvs) {
    host.SetUp(a.devname);
    ovs_.AddPort(a.bridge, a.devname,
                 NeutronExternalIds(a.port_id, a.mac.ToString(), a.instance_id), a.mtu);
    undo.Add([&] { ovs_.DeletePort(a.bridge, a.devname); });
  } else {
    host.SetMaster(a.devname, a.bridge);
    host.SetUp(a.devname);
  }
  undo.Commit();
  return a;
}

void VifNetwork::DetachLocked(const VifAttachment& a) {
  WithContext("detach port " + a.port_id + " of " + a.instance_id + " (" + a.devname + ")", [&] {
    // The OVS port first: if OVSDB fails, everything stays as it was and a retry (or
    // Reconcile) finds the record.
    if (a.kind == VifKind::kOvs) ovs_.DeletePort(a.bridge, a.devname);
    // Likewise the libvirt reservation: kept, with the record, while libvirtd is away.
    if (a.kind == VifKind::kLibvirt && !a.fixed_ips.empty()) {
      RemoveLibvirtReservation(config_.libvirt_uri, a.network, a.mac, LibvirtAddressOf(a));
    }
    HostNetlink().DeleteLinkIfExists(a.devname);
    RemoveRecord(a.devname);
  });
}

bool VifNetwork::Detach(const std::string& instance_id, const std::string& port_id) {
  CheckInstanceId(instance_id);
  std::lock_guard lock(mu_);
  for (const auto& a : LoadRecords()) {
    if (a.instance_id == instance_id && a.port_id == port_id) {
      DetachLocked(a);
      return true;
    }
  }
  return false;
}

size_t VifNetwork::DetachInstance(const std::string& instance_id) {
  CheckInstanceId(instance_id);
  std::lock_guard lock(mu_);
  size_t count = 0;
  for (const auto& a : LoadRecords()) {
    if (a.instance_id != instance_id) continue;
    DetachLocked(a);
    ++count;
  }
  return count;
}

std::vector<VifAttachment> VifNetwork::List() const {
  std::lock_guard lock(mu_);
  return LoadRecords();
}

std::vector<VifAttachment> VifNetwork::ListInstance(const std::string& instance_id) const {
  std::lock_guard lock(mu_);
  std::vector<VifAttachment> out;
  for (auto& a : LoadRecords()) {
    if (a.instance_id == instance_id) out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::string> VifNetwork::Reconcile(const std::set<std::string>& live) {
  std::lock_guard lock(mu_);
  std::vector<std::string> detached;
  std::optional<Error> first_failure;
  for (const auto& a : LoadRecords()) {
    if (live.count(a.instance_id)) continue;
    // One unreachable OVSDB must not keep the Linux bridge ports of dead instances.
    try {
      DetachLocked(a);
      detached.push_back(a.instance_id + "/" + a.port_id);
    } catch (const Error& e) {
      if (!first_failure) first_failure = e;
    }
  }
  if (first_failure) {
    first_failure->WithContext("reconcile vifs");
    throw *first_failure;
  }
  return detached;
}

}  // namespace berth::net
