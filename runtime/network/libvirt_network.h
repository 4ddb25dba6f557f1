// libvirt-managed networks (the "libvirt" mode): the Linux bridge of a network that
// libvirtd runs (with its own dnsmasq for DHCP/DNS), looked up through libvirt's C API
// (libvirt-dev): virConnectOpen(uri) -> virNetworkLookupByName -> virNetworkIsActive ->
// virNetworkGetBridgeName. VifNetwork::AttachToLibvirtNetwork then enslaves a veth there.
#pragma once

#include <string>

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

}  // namespace berth::net
