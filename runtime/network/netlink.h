// A thin RAII wrapper over libnl-3 route: one netlink socket bound to one network
// namespace, and the link operations instance networking needs. Every failure is a
// berth::Error carrying the operation, the link name and the errno
// ("netlink set-master bt-0a580005: ENODEV (No such device)").
//
// Namespaces: Netlink::Open() binds to the calling thread's namespace; OpenIn(ref) opens
// the socket on a helper thread inside ref's namespace (see netns.h), and the socket then
// stays bound there whichever thread uses it. One Netlink object is not thread-safe: use
// it from one thread at a time (it may move between threads).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/network/address.h"
#include "runtime/network/netns.h"

struct nl_sock;

namespace berth::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string type;  // "veth", "bridge", ... ; empty for plain devices such as lo
  std::string mac;   // "aa:bb:..", empty when the link has none
  unsigned mtu = 0;
  bool up = false;       // IFF_UP (administratively up)
  int master_index = 0;  // the bridge it is enslaved to, 0 when none
};

struct VethSpec {
  std::string name;       // this end, created in the socket's namespace
  std::string peer_name;  // the other end
  // Where the peer is created; current (default) = the socket's namespace. Creating the
  // peer directly in the instance's namespace means a crash can never leave it on the
  // host, and its name (eth0) cannot collide with a host device.
  NetnsRef peer_netns;
  std::optional<MacAddress> peer_mac;
  unsigned mtu = 0;  // 0: kernel default, both ends
};

class Netlink {
 public:
  static Netlink Open();
  static Netlink OpenIn(const NetnsRef& netns);

  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  void CreateVethPair(const VethSpec& spec);
  void CreateBridge(const std::string& name, unsigned mtu = 0);
  // Moves the link into another namespace (it disappears from this one).
  void MoveToNetns(const std::string& link, const NetnsRef& netns);
  void SetName(const std::string& link, const std::string& new_name);
  void SetMac(const std::string& link, const MacAddress& mac);
  void SetMtu(const std::string& link, unsigned mtu);
  void SetUp(const std::string& link, bool up = true);
  // Enslaves link to bridge (a bridge port).
  void SetMaster(const std::string& link, const std::string& bridge);
  // "10.88.0.5/16" or "fd00::5/64"; the family follows the text. skip_dad: an IPv6
  // address usable at once (IFA_F_NODAD), for addresses a controller (Neutron) assigned.
  void AddAddress(const std::string& link, const std::string& cidr, bool skip_dad = false);
  // Addresses on the link, as "10.88.0.5/16".
  std::vector<std::string> ListAddresses(const std::string& link);
  // Default route via gateway ("10.88.0.1" or an IPv6 address) out of link.
  void AddDefaultRoute(const std::string& link, const std::string& gateway);
  // A route to destination ("192.168.5.0/24", "fd00:1::/64", "default") out of link, via
  // gateway; an empty gateway makes it on-link (scope link). The families must agree.
  void AddRoute(const std::string& link, const std::string& destination,
                const std::string& gateway);
  // Answers neighbour solicitations for `address` (IPv6) arriving on link, as a router
  // that reaches it elsewhere does (`ip -6 neigh add proxy ADDRESS dev LINK`); needs
  // forwarding and proxy_ndp on the link. Idempotent.
  void AddProxyNeighbour(const std::string& link, const std::string& address);
  // Routes of the main table out of link, as "default via 10.0.0.1",
  // "192.168.5.0/24 via 10.0.0.254" or "10.0.0.0/24" (on-link, e.g. the kernel's prefix
  // route).
  std::vector<std::string> ListRoutes(const std::string& link);
  // Deletes the link (a veth takes its peer with it). kNotFound when it does not exist.
  void DeleteLink(const std::string& link);
  // DeleteLink that treats "not found" as done; returns whether something was deleted.
  bool DeleteLinkIfExists(const std::string& link);

  std::vector<LinkInfo> ListLinks();
  std::optional<LinkInfo> FindLink(const std::string& name);
  LinkInfo GetLink(const std::string& name);  // kNotFound when missing

 private:
  explicit Netlink(nl_sock* sock);
  struct SockDeleter {
    void operator()(nl_sock* sock) const;
  };
  std::unique_ptr<nl_sock, SockDeleter> sock_;
};

// Turns the link's transmit checksum offload on or off (ethtool's "tx", SIOCETHTOOL
// ETHTOOL_STXCSUM) in the namespace (netns_fd < 0: the current one). Needed on the instance
// end of a veth on a userspace (netdev) OVS datapath: its packet sockets forward the
// partial checksums of offloaded TCP/UDP unchanged, and the receiver drops them.
void SetTxChecksumOffload(int netns_fd, const std::string& link, bool on);

// Linux interface names are at most 15 bytes, no '/', no whitespace, not "." or "..".
bool IsValidLinkName(const std::string& name);

}  // namespace berth::net
