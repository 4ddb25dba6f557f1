// berthd's [network] section: the default network mode of instances and the settings of
// the bridge, Neutron (OVS) and libvirt modes. Every option has a default; see
// etc/berthd.conf.example and docs/networking.md.
#pragma once

#include <string>
#include <vector>

namespace berth::server {

struct NetworkOptions {
  // Mode of an instance whose request names none: none | bridge | neutron | libvirt.
  // (Nova's network_info, when present, always means neutron.)
  std::string default_mode = "none";
  // bridge mode
  std::string bridge = "berth0";
  std::string subnet = "10.88.0.0/16";
  std::string gateway;  // empty: the subnet's first host
  // Optional IPv6 subnet (prefix 1..96), e.g. fd00:88::/64; empty: IPv4 only.
  std::string subnet6;
  // The veth between the host's namespace and the bridge's own: host end first address,
  // bridge end second (see BridgeConfig::transit). Must not overlap anything routed here.
  std::string transit = "169.254.88.0/31";
  unsigned mtu = 1500;
  std::string nft_table = "berth";
  bool enable_ip_forward = true;
  // Frames between instances on the bridge skip it when they pass its source checks
  // (runtime/network/bridge_fast_path.h); needs Linux 6.6 (tcx).
  bool bridge_fast_path = true;
  // /etc/resolv.conf of instances: the host's file with loopback servers dropped; these
  // when none is left (empty: the instance gets no nameserver).
  std::string host_resolv_conf = "/etc/resolv.conf";
  std::vector<std::string> fallback_dns;
  // A network namespace file (e.g. /run/netns/NAME) that plays "the host" for the bridge
  // mode's transit and NAT, Neutron's bridges and host veth ends; empty: berthd's own
  // namespace. (The bridge mode's bridge has a namespace of its own, pinned under the state
  // dir, either way.) For running berthd's
  // networking in a namespace of its own, and for the tests.
  std::string host_netns;
  // neutron mode, OVS ports
  std::string ovs_vsctl = "ovs-vsctl";
  std::string ovsdb;  // empty: ovs-vsctl's default socket
  int ovs_timeout = 10;
  // libvirt mode
  std::string libvirt_uri = "qemu:///system";
  std::string libvirt_network = "default";
};

// Sets `key` of the [network] section; kInvalidArgument naming `where` for a bad value,
// kNotFound for an unknown key.
void SetNetworkOption(NetworkOptions& options, const std::string& where, const std::string& key,
                      const std::string& value);

// Cross-checks (subnet parses, gateway inside it, mode known); kInvalidArgument.
void CheckNetworkOptions(const NetworkOptions& options);

bool IsNetworkMode(const std::string& mode);

}  // namespace berth::server
