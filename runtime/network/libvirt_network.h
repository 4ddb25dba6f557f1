// libvirt-managed networks (the "libvirt" mode): the Linux bridge of a network that
// libvirtd runs (with its own dnsmasq for DHCP/DNS), looked up through libvirt's C API
// (libvirt-dev): virConnectOpen(uri) -> virNetworkLookupByName -> virNetworkIsActive ->
// virNetworkGetBridgeName. VifNetwork::AttachToLibvirtNetwork then enslaves a veth there.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runtime/network/address.h"

namespace berth::net {

inline constexpr const char* kDefaultLibvirtUri = "qemu:///system";

// Whether this build has libvirt (libvirt-dev was found at configure time).
bool HaveLibvirt();

// The bridge of the active network `network` at `uri`. Errors:
//   kUnsupported - built without libvirt, or libvirtd not reachable at uri (the message
//                  names the URI and libvirt's own reason);
//   kNotFound    - no such network;
//   kConflict    - the network exists but is not active (virsh net-start it);
//   kSystem      - any other libvirt failure.
std::string LookupLibvirtBridge(const std::string& uri, const std::string& network);

// What berthd needs of a network's XML (virsh net-dumpxml): its forward mode ("" when the
// network is isolated) and its first IPv4 <ip> with the <dhcp> ranges and static hosts.
struct LibvirtIpv4 {
  Ipv4Address address;  // the bridge's address: the instances' gateway and DNS server
  int prefix_len = 0;
  std::vector<std::pair<Ipv4Address, Ipv4Address>> ranges;  // <dhcp><range start end>
  std::vector<std::pair<std::string, Ipv4Address>> hosts;   // <dhcp><host mac ip>
  bool has_dhcp = false;
};
struct LibvirtNetworkXml {
  std::string forward_mode;  // <forward mode=...>; "nat" when no mode; "" isolated
  bool dns_enabled = true;   // <dns enable='no'/> turns libvirt's DNS off
  std::optional<LibvirtIpv4> ipv4;
};
// Pure; kInvalidArgument for XML it cannot read (unbalanced tags, bad addresses).
LibvirtNetworkXml ParseLibvirtNetworkXml(const std::string& xml);

// The first address of the network's DHCP ranges that no static host holds and that is
// not in `taken` (current leases); nullopt when all are used.
std::optional<Ipv4Address> PickLibvirtAddress(const LibvirtIpv4& ip,
                                              const std::set<Ipv4Address>& taken);

// A static address for `mac` on a libvirt network: a <host mac ip> entry added to its
// DHCP section (virNetworkUpdate, live and, for a persistent network, in its config), so
// libvirt's dnsmasq never hands the address to anyone else and answers the instance's
// own DHCP client with it. berthd then configures the address itself, so the instance
// needs no DHCP client nor CAP_NET_ADMIN.
struct LibvirtReservation {
  Ipv4Address address;
  int prefix_len = 0;
  std::optional<Ipv4Address> gateway;  // the network's address unless it is isolated
  std::optional<Ipv4Address> dns;      // the network's address unless DNS is off
};
// Reads the network (as LookupLibvirtBridge, same errors) and picks an address: the one a
// static host of `mac` already has, else PickLibvirtAddress avoiding current leases.
// nullopt when the network has no IPv4 DHCP (the instance configures itself);
// kResourceExhausted when every address is taken. Changes nothing.
std::optional<LibvirtReservation> PlanLibvirtReservation(const std::string& uri,
                                                         const std::string& network,
                                                         const MacAddress& mac);
// Adds the host entry (nothing when `mac` already holds `address`); kConflict when
// another host took the address meanwhile.
void AddLibvirtReservation(const std::string& uri, const std::string& network,
                           const MacAddress& mac, Ipv4Address address);
// Removes it; nothing when it is gone (or the network is). kUnsupported when libvirtd is
// not reachable.
void RemoveLibvirtReservation(const std::string& uri, const std::string& network,
                              const MacAddress& mac, Ipv4Address address);

}  // namespace berth::net
