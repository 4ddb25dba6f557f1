#include "runtime/network/netlink.h"

#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::net {
namespace {

// libnl folds the kernel's errno into its own NLE_* codes; turn them back so Error picks
// the right kind (EEXIST -> kAlreadyExists, ENODEV/ENOENT -> kNotFound, ...).
int ErrnoFromNle(int nle) {
  switch (nle < 0 ? -nle : nle) {
    case NLE_EXIST:
      return EEXIST;
    case NLE_OBJ_NOTFOUND:
      return ENOENT;
    case NLE_NODEV:
      return ENODEV;
    case NLE_PERM:
      return EPERM;
    case NLE_BUSY:
      return EBUSY;
    case NLE_INVAL:
      return EINVAL;
    case NLE_NOMEM:
      return ENOMEM;
    case NLE_RANGE:
      return ERANGE;
    case NLE_AGAIN:
      return EAGAIN;
    case NLE_AF_NOSUPPORT:
      return EAFNOSUPPORT;
    case NLE_OPNOTSUPP:
      return EOPNOTSUPP;
    case NLE_NOADDR:
      return EADDRNOTAVAIL;
    case NLE_NOACCESS:
      return EACCES;
    case NLE_MSGSIZE:
      return EMSGSIZE;
    case NLE_BAD_SOCK:
      return EBADF;
    case NLE_MSG_TOOSHORT:
    case NLE_MSG_TRUNC:
      return EBADMSG;
    default:
      return EIO;
  }
}

// Error::FromErrno, except that a missing device (ENODEV) is kNotFound like ENOENT: for
// a link, "no such device" is "no such thing".
Error NlError(std::string_view op, std::string_view link, int sys_errno) {
  Error e = Error::FromErrno("netlink " + std::string(op), link, sys_errno);
  if (sys_errno == ENODEV) return Error(ErrorKind::kNotFound, e.message(), sys_errno);
  return e;
}

[[noreturn]] void ThrowNl(std::string_view op, std::string_view link, int nle) {
  throw NlError(op, link, ErrnoFromNle(nle));
}

void Check(int rc, std::string_view op, std::string_view link) {
  if (rc < 0) ThrowNl(op, link, rc);
}

struct LinkPut {
  void operator()(rtnl_link* link) const { rtnl_link_put(link); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
struct AddrPut {
  void operator()(nl_addr* addr) const { nl_addr_put(addr); }
};
using NlAddrPtr = std::unique_ptr<nl_addr, AddrPut>;
struct RtAddrPut {
  void operator()(rtnl_addr* addr) const { rtnl_addr_put(addr); }
};
struct RoutePut {
  void operator()(rtnl_route* route) const { rtnl_route_put(route); }
};
struct NeighPut {
  void operator()(rtnl_neigh* neigh) const { rtnl_neigh_put(neigh); }
};
struct CacheFree {
  void operator()(nl_cache* cache) const { nl_cache_free(cache); }
};
using CachePtr = std::unique_ptr<nl_cache, CacheFree>;
struct VethRelease {
  void operator()(rtnl_link* link) const { rtnl_link_veth_release(link); }
};

LinkPtr NewLink(std::string_view op, std::string_view name) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) ThrowNl(op, name, -NLE_NOMEM);
  return link;
}

NlAddrPtr ParseAddr(const std::string& text, int family, std::string_view op,
                    std::string_view link) {
  nl_addr* addr = nullptr;
  int rc = nl_addr_parse(text.c_str(), family, &addr);
  if (rc < 0) {
    throw Error(ErrorKind::kInvalidArgument, "netlink " + std::string(op) + " " +
                                                 std::string(link) + ": address \"" + text +
                                                 "\" is not valid");
  }
  return NlAddrPtr(addr);
}

LinkInfo ToInfo(rtnl_link* link) {
  LinkInfo info;
  info.index = rtnl_link_get_ifindex(link);
  if (const char* name = rtnl_link_get_name(link)) info.name = name;
  if (const char* type = rtnl_link_get_type(link)) info.type = type;
  if (nl_addr* addr = rtnl_link_get_addr(link); addr && nl_addr_get_len(addr) == 6) {
    MacAddress mac;
    std::memcpy(mac.bytes.data(), nl_addr_get_binary_addr(addr), 6);
    info.mac = mac.ToString();
  }
  info.mtu = rtnl_link_get_mtu(link);
  info.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
  info.master_index = rtnl_link_get_master(link);
  return info;
}

}  // namespace

bool IsValidLinkName(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  for (char c : name) {
    if (c == '/' || c == ':' || c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

void Netlink::SockDeleter::operator()(nl_sock* sock) const { nl_socket_free(sock); }

Netlink::Netlink(nl_sock* sock) : sock_(sock) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

Netlink Netlink::Open() {
  std::unique_ptr<nl_sock, SockDeleter> sock(nl_socket_alloc());
  if (!sock) ThrowNl("socket", "", -NLE_NOMEM);
  Check(nl_connect(sock.get(), NETLINK_ROUTE), "connect", "");
  return Netlink(sock.release());
}

Netlink Netlink::OpenIn(const NetnsRef& netns) {
  UniqueFd fd = OpenNetns(netns);
  return RunInNetns(fd.get(), [] { return Open(); });
}

LinkInfo Netlink::GetLink(const std::string& name) {
  auto info = FindLink(name);
  if (!info) throw NlError("get-link", name, ENODEV);
  return *info;
}

std::optional<LinkInfo> Netlink::FindLink(const std::string& name) {
  if (!IsValidLinkName(name)) {
    throw Error(ErrorKind::kInvalidArgument, "link name \"" + name + "\" is not valid");
  }
  rtnl_link* raw = nullptr;
  int rc = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV) return std::nullopt;
  Check(rc, "get-link", name);
  LinkPtr link(raw);
  return ToInfo(link.get());
}

std::vector<LinkInfo> Netlink::ListLinks() {
  nl_cache* raw = nullptr;
  Check(rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw), "list-links", "");
  CachePtr cache(raw);
  std::vector<LinkInfo> links;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
    links.push_back(ToInfo(reinterpret_cast<rtnl_link*>(obj)));
  }
  return links;
}

void Netlink::CreateVethPair(const VethSpec& spec) {
  const std::string& name = spec.name;
  if (!IsValidLinkName(spec.name) || !IsValidLinkName(spec.peer_name)) {
    throw Error(ErrorKind::kInvalidArgument,
                "veth names \"" + spec.name + "\", \"" + spec.peer_name + "\" are not valid");
  }
  std::unique_ptr<rtnl_link, VethRelease> link(rtnl_link_veth_alloc());
  if (!link) ThrowNl("create-veth", name, -NLE_NOMEM);
  rtnl_link_set_name(link.get(), spec.name.c_str());
  // get_peer takes a reference; veth_release drops the pair's own ones.
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));
  rtnl_link_set_name(peer.get(), spec.peer_name.c_str());
  if (spec.mtu) {
    rtnl_link_set_mtu(link.get(), spec.mtu);
    rtnl_link_set_mtu(peer.get(), spec.mtu);
  }
  NlAddrPtr mac;
  if (spec.peer_mac) {
    mac.reset(nl_addr_build(AF_LLC, spec.peer_mac->bytes.data(), 6));
    rtnl_link_set_addr(peer.get(), mac.get());
  }
  UniqueFd peer_ns = OpenNetns(spec.peer_netns);
  if (peer_ns) rtnl_link_set_ns_fd(peer.get(), peer_ns.get());
  Check(rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), "create-veth", name);
}

void Netlink::CreateBridge(const std::string& name, unsigned mtu) {
  if (!IsValidLinkName(name)) {
    throw Error(ErrorKind::kInvalidArgument, "bridge name \"" + name + "\" is not valid");
  }
  LinkPtr link(rtnl_link_bridge_alloc());
  if (!link) ThrowNl("create-bridge", name, -NLE_NOMEM);
  rtnl_link_set_name(link.get(), name.c_str());
  if (mtu) rtnl_link_set_mtu(link.get(), mtu);
  Check(rtnl_link_add(sock_.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), "create-bridge", name);
}

namespace {

// Applies the attributes set in `changes` to the existing link `name`.
template <typename Fill>
void ChangeLink(nl_sock* sock, const std::string& op, const std::string& name, Fill&& fill) {
  rtnl_link* raw = nullptr;
  Check(rtnl_link_get_kernel(sock, 0, name.c_str(), &raw), op, name);
  LinkPtr orig(raw);
  LinkPtr changes = NewLink(op, name);
  fill(changes.get());
  Check(rtnl_link_change(sock, orig.get(), changes.get(), 0), op, name);
}

}  // namespace

void Netlink::MoveToNetns(const std::string& link, const NetnsRef& netns) {
  UniqueFd fd = OpenNetns(netns);
  if (!fd) {
    throw Error(ErrorKind::kInvalidArgument, "netlink move-netns " + link + ": no namespace");
  }
  ChangeLink(sock_.get(), "move-netns", link,
             [&](rtnl_link* c) { rtnl_link_set_ns_fd(c, fd.get()); });
}

void Netlink::SetName(const std::string& link, const std::string& new_name) {
  if (!IsValidLinkName(new_name)) {
    throw Error(ErrorKind::kInvalidArgument, "link name \"" + new_name + "\" is not valid");
  }
  ChangeLink(sock_.get(), "set-name", link,
             [&](rtnl_link* c) { rtnl_link_set_name(c, new_name.c_str()); });
}

void Netlink::SetMac(const std::string& link, const MacAddress& mac) {
  NlAddrPtr addr(nl_addr_build(AF_LLC, mac.bytes.data(), 6));
  ChangeLink(sock_.get(), "set-mac", link,
             [&](rtnl_link* c) { rtnl_link_set_addr(c, addr.get()); });
}

void Netlink::SetMtu(const std::string& link, unsigned mtu) {
  ChangeLink(sock_.get(), "set-mtu", link, [&](rtnl_link* c) { rtnl_link_set_mtu(c, mtu); });
}

void Netlink::SetUp(const std::string& link, bool up) {
  ChangeLink(sock_.get(), up ? "set-up" : "set-down", link, [&](rtnl_link* c) {
    if (up) {
      rtnl_link_set_flags(c, IFF_UP);
    } else {
      rtnl_link_unset_flags(c, IFF_UP);
    }
  });
}

void Netlink::SetMaster(const std::string& link, const std::string& bridge) {
  int master = GetLink(bridge).index;
  int slave = GetLink(link).index;
  Check(rtnl_link_enslave_ifindex(sock_.get(), master, slave), "set-master", link);
}

void Netlink::AddAddress(const std::string& link, const std::string& cidr, bool skip_dad) {
  int index = GetLink(link).index;
  NlAddrPtr local = ParseAddr(cidr, AF_UNSPEC, "add-address", link);
  std::unique_ptr<rtnl_addr, RtAddrPut> addr(rtnl_addr_alloc());
  if (!addr) ThrowNl("add-address", link, -NLE_NOMEM);
  rtnl_addr_set_ifindex(addr.get(), index);
  rtnl_addr_set_family(addr.get(), nl_addr_get_family(local.get()));
  Check(rtnl_addr_set_local(addr.get(), local.get()), "add-address", link);
  rtnl_addr_set_prefixlen(addr.get(), nl_addr_get_prefixlen(local.get()));
  if (skip_dad && nl_addr_get_family(local.get()) == AF_INET6) {
    rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  }
  WithContext("address " + cidr, [&] {
    Check(rtnl_addr_add(sock_.get(), addr.get(), NLM_F_EXCL), "add-address", link);
  });
}

std::vector<std::string> Netlink::ListAddresses(const std::string& link) {
  int index = GetLink(link).index;
  nl_cache* raw = nullptr;
  Check(rtnl_addr_alloc_cache(sock_.get(), &raw), "list-addresses", link);
  CachePtr cache(raw);
  std::vector<std::string> out;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(obj);
    if (rtnl_addr_get_ifindex(addr) != index) continue;
    char buf[INET6_ADDRSTRLEN + 8];
    nl_addr* local = rtnl_addr_get_local(addr);
    if (!local) continue;
    std::string text = nl_addr2str(local, buf, sizeof buf);
    if (text.find('/') == std::string::npos) {
      text += "/" + std::to_string(rtnl_addr_get_prefixlen(addr));
    }
    out.push_back(text);
  }
  return out;
}

void Netlink::AddDefaultRoute(const std::string& link, const std::string& gateway) {
  AddRoute(link, "default", gateway);
}

void Netlink::AddRoute(const std::string& link, const std::string& destination,
                       const std::string& gateway) {
  const std::string op = destination == "default" ? "add-default-route" : "add-route";
  int index = GetLink(link).index;
  NlAddrPtr gw;
  int family = AF_UNSPEC;
  if (!gateway.empty()) {
    gw = ParseAddr(gateway, AF_UNSPEC, op, link);
    family = nl_addr_get_family(gw.get());
  }
  // "default" needs a family; without a gateway there is nothing to take it from.
  if (destination == "default" && family == AF_UNSPEC) {
    throw Error(ErrorKind::kInvalidArgument, "netlink " + op + " " + link + ": needs a gateway");
  }
  NlAddrPtr dst = ParseAddr(destination, family, op, link);
  if (family == AF_UNSPEC) family = nl_addr_get_family(dst.get());
  if (nl_addr_get_family(dst.get()) != family) {
    throw Error(ErrorKind::kInvalidArgument, "netlink " + op + " " + link + ": " + destination +
                                                 " via " + gateway + " mixes address families");
  }
  std::unique_ptr<rtnl_route, RoutePut> route(rtnl_route_alloc());
  if (!route) ThrowNl(op, link, -NLE_NOMEM);
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  Check(rtnl_route_set_dst(route.get(), dst.get()), op, link);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_scope(route.get(), gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!nh) ThrowNl(op, link, -NLE_NOMEM);
  rtnl_route_nh_set_ifindex(nh, index);
  if (gw) rtnl_route_nh_set_gateway(nh, gw.get());
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
  WithContext(gateway.empty() ? destination : destination + " via " + gateway, [&] {
    Check(rtnl_route_add(sock_.get(), route.get(), NLM_F_CREATE | NLM_F_EXCL), op, link);
  });
}

void Netlink::AddProxyNeighbour(const std::string& link, const std::string& address) {
  int index = GetLink(link).index;
  NlAddrPtr dst = ParseAddr(address, AF_INET6, "add-proxy-neighbour", link);
  std::unique_ptr<rtnl_neigh, NeighPut> neigh(rtnl_neigh_alloc());
  if (!neigh) ThrowNl("add-proxy-neighbour", link, -NLE_NOMEM);
  rtnl_neigh_set_ifindex(neigh.get(), index);
  rtnl_neigh_set_family(neigh.get(), AF_INET6);
  Check(rtnl_neigh_set_dst(neigh.get(), dst.get()), "add-proxy-neighbour", link);
  rtnl_neigh_set_flags(neigh.get(), NTF_PROXY);
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  WithContext("proxy " + address, [&] {
    Check(rtnl_neigh_add(sock_.get(), neigh.get(), NLM_F_CREATE | NLM_F_REPLACE),
          "add-proxy-neighbour", link);
  });
}

std::vector<std::string> Netlink::ListRoutes(const std::string& link) {
  int index = GetLink(link).index;
  nl_cache* raw = nullptr;
  Check(rtnl_route_alloc_cache(sock_.get(), AF_UNSPEC, 0, &raw), "list-routes", link);
  CachePtr cache(raw);
  std::vector<std::string> out;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj; obj = nl_cache_get_next(obj)) {
    auto* route = reinterpret_cast<rtnl_route*>(obj);
    if (rtnl_route_get_table(route) != RT_TABLE_MAIN || rtnl_route_get_nnexthops(route) != 1) {
      continue;
    }
    rtnl_nexthop* nh = rtnl_route_nexthop_n(route, 0);
    if (rtnl_route_nh_get_ifindex(nh) != index) continue;
    char buf[INET6_ADDRSTRLEN + 8];
    nl_addr* dst = rtnl_route_get_dst(route);
    std::string text = (!dst || nl_addr_get_prefixlen(dst) == 0)
                           ? std::string("default")
                           : std::string(nl_addr2str(dst, buf, sizeof buf));
    if (text != "default" && text.find('/') == std::string::npos) {
      text += "/" + std::to_string(nl_addr_get_prefixlen(dst));
    }
    if (nl_addr* gw = rtnl_route_nh_get_gateway(nh)) {
      text += std::string(" via ") + nl_addr2str(gw, buf, sizeof buf);
    }
    out.push_back(text);
  }
  return out;
}

void Netlink::DeleteLink(const std::string& link) {
  if (!DeleteLinkIfExists(link)) throw NlError("delete-link", link, ENODEV);
}

bool Netlink::DeleteLinkIfExists(const std::string& link) {
  LinkPtr target = NewLink("delete-link", link);
  rtnl_link_set_name(target.get(), link.c_str());
  int rc = rtnl_link_delete(sock_.get(), target.get());
  if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND) return false;
  Check(rc, "delete-link", link);
  return true;
}

void SetTxChecksumOffload(int netns_fd, const std::string& link, bool on) {
  if (!IsValidLinkName(link)) {
    throw Error(ErrorKind::kInvalidArgument, "link name \"" + link + "\" is not valid");
  }
  RunInNetns(netns_fd, [&] {
    UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) ThrowErrno("socket", "ethtool " + link);
    ethtool_value value{};
    value.cmd = ETHTOOL_STXCSUM;
    value.data = on ? 1 : 0;
    ifreq req{};
    std::memcpy(req.ifr_name, link.c_str(), link.size());
    req.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(fd.get(), SIOCETHTOOL, &req) != 0) {
      int saved = errno;
      throw NlError(on ? "ethtool tx-on" : "ethtool tx-off", link, saved);
    }
  });
}

}  // namespace berth::net
