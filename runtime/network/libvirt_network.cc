#include "runtime/network/libvirt_network.h"

#include <cctype>
#include <map>
#include <memory>
#include <mutex>

#include "runtime/common/error.h"

#ifdef BERTH_HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif

namespace berth::net {
namespace {

[[noreturn]] void BadXml(const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, "libvirt network XML: " + what);
}

struct XmlTag {
  std::string name;
  bool closing = false;       // </name>
  bool self_closing = false;  // <name .../>
  std::map<std::string, std::string> attrs;
};

// Just enough XML for libvirt's own output: elements and quoted attributes; comments,
// processing instructions and text are skipped. Values are addresses and names, which
// libvirt never escapes.
std::vector<XmlTag> ReadTags(const std::string& xml) {
  std::vector<XmlTag> tags;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    if (xml.compare(i, 4, "<!--") == 0) {
      i = xml.find("-->", i);
      if (i == std::string::npos) BadXml("unterminated comment");
      i += 3;
      continue;
    }
    size_t end = xml.find('>', i);
    if (end == std::string::npos) BadXml("unterminated tag");
    std::string body = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (body.empty() || body[0] == '?' || body[0] == '!') continue;
    XmlTag t;
    if (body[0] == '/') {
      t.closing = true;
      body.erase(0, 1);
    }
    if (!body.empty() && body.back() == '/') {
      t.self_closing = true;
      body.pop_back();
    }
    size_t p = 0;
    while (p < body.size() && !std::isspace(static_cast<unsigned char>(body[p]))) ++p;
    t.name = body.substr(0, p);
    if (t.name.empty()) BadXml("a tag without a name");
    while (p < body.size()) {
      while (p < body.size() && std::isspace(static_cast<unsigned char>(body[p]))) ++p;
      if (p >= body.size()) break;
      size_t eq = body.find('=', p);
      if (eq == std::string::npos || eq + 1 >= body.size()) BadXml("bad attribute in <" + t.name);
      std::string key = body.substr(p, eq - p);
      while (!key.empty() && std::isspace(static_cast<unsigned char>(key.back()))) key.pop_back();
      size_t q = eq + 1;
      while (q < body.size() && std::isspace(static_cast<unsigned char>(body[q]))) ++q;
      if (q >= body.size() || (body[q] != '\'' && body[q] != '"')) {
        BadXml("unquoted attribute " + key + " in <" + t.name);
      }
      size_t close = body.find(body[q], q + 1);
      if (close == std::string::npos) BadXml("unterminated attribute " + key + " in <" + t.name);
      t.attrs[key] = body.substr(q + 1, close - q - 1);
      p = close + 1;
    }
    tags.push_back(std::move(t));
  }
  return tags;
}

std::string Attr(const XmlTag& t, const std::string& key) {
  auto it = t.attrs.find(key);
  return it == t.attrs.end() ? "" : it->second;
}

int PrefixOfNetmask(Ipv4Address mask) {
  int len = 0;
  while (len < 32 && (mask.value & (0x80000000u >> len))) ++len;
  return len < 32 && (mask.value << len) != 0 ? -1 : len;  // -1: not contiguous
}

}  // namespace

LibvirtNetworkXml ParseLibvirtNetworkXml(const std::string& xml) {
  LibvirtNetworkXml out;
  bool in_ipv4 = false;  // inside the first IPv4 <ip> element
  for (const XmlTag& t : ReadTags(xml)) {
    if (t.name == "ip") {
      if (t.closing) {
        in_ipv4 = false;
        continue;
      }
      std::string family = Attr(t, "family");
      if ((family.empty() || family == "ipv4") && !out.ipv4) {
        LibvirtIpv4 ip;
        try {
          ip.address = Ipv4Address::Parse(Attr(t, "address"));
          if (!Attr(t, "netmask").empty()) {
            ip.prefix_len = PrefixOfNetmask(Ipv4Address::Parse(Attr(t, "netmask")));
          } else if (!Attr(t, "prefix").empty()) {
            ip.prefix_len = std::stoi(Attr(t, "prefix"));
          } else {
            ip.prefix_len = 24;  // libvirt's default for an IPv4 <ip> without either
          }
        } catch (const Error& e) {
          BadXml("<ip>: " + e.message());
        } catch (const std::exception&) {
          BadXml("<ip>: bad prefix \"" + Attr(t, "prefix") + "\"");
        }
        if (ip.prefix_len < 0 || ip.prefix_len > 32) {
          BadXml("<ip>: bad netmask or prefix (" + Attr(t, "netmask") + Attr(t, "prefix") + ")");
        }
        out.ipv4 = ip;
        in_ipv4 = !t.self_closing;
      }
    } else if (t.closing) {
      continue;
    } else if (t.name == "forward") {
      out.forward_mode = Attr(t, "mode").empty() ? "nat" : Attr(t, "mode");
    } else if (t.name == "dns") {
      if (Attr(t, "enable") == "no") out.dns_enabled = false;
    } else if (in_ipv4 && t.name == "dhcp") {
      out.ipv4->has_dhcp = true;
    } else if (in_ipv4 && t.name == "range") {
      try {
        out.ipv4->ranges.emplace_back(Ipv4Address::Parse(Attr(t, "start")),
                                      Ipv4Address::Parse(Attr(t, "end")));
      } catch (const Error& e) {
        BadXml("<range>: " + e.message());
      }
    } else if (in_ipv4 && t.name == "host" && !Attr(t, "ip").empty()) {
      try {
        out.ipv4->hosts.emplace_back(Attr(t, "mac"), Ipv4Address::Parse(Attr(t, "ip")));
      } catch (const Error& e) {
        BadXml("<host>: " + e.message());
      }
    }
  }
  return out;
}

std::optional<Ipv4Address> PickLibvirtAddress(const LibvirtIpv4& ip,
                                              const std::set<Ipv4Address>& taken) {
  std::set<Ipv4Address> used = taken;
  used.insert(ip.address);
  for (const auto& [mac, address] : ip.hosts) used.insert(address);
  for (const auto& [start, end] : ip.ranges) {
    for (uint64_t a = start.value; a <= end.value; ++a) {
      Ipv4Address candidate{static_cast<uint32_t>(a)};
      if (!used.count(candidate)) return candidate;
    }
  }
  return std::nullopt;
}

#ifdef BERTH_HAVE_LIBVIRT
namespace {

// libvirt's default error handler prints every error to stderr; ours come back as
// exceptions, so silence it (once, for the process) and initialise the library.
void InitLibvirt() {
  static std::once_flag once;
  std::call_once(once, [] {
    virInitialize();
    virSetErrorFunc(nullptr, [](void*, virErrorPtr) {});
  });
}

std::string LastLibvirtError() {
  const char* message = virGetLastErrorMessage();
  return message ? message : "unknown libvirt error";
}

int LastLibvirtCode() {
  virErrorPtr err = virGetLastError();
  return err ? err->code : VIR_ERR_OK;
}

struct ConnectClose {
  void operator()(virConnectPtr conn) const { virConnectClose(conn); }
};
struct NetworkFree {
  void operator()(virNetworkPtr net) const { virNetworkFree(net); }
};

}  // namespace

bool HaveLibvirt() { return true; }

namespace {

using ConnectPtr = std::unique_ptr<virConnect, ConnectClose>;
using NetworkPtr = std::unique_ptr<virNetwork, NetworkFree>;

std::string What(const std::string& uri, const std::string& network) {
  return "libvirt network \"" + network + "\" at " + uri;
}

ConnectPtr Connect(const std::string& uri) {
  InitLibvirt();
  ConnectPtr conn(virConnectOpen(uri.c_str()));
  if (!conn) {
    throw Error(ErrorKind::kUnsupported, "libvirtd is not reachable at " + uri + ": " +
                                             LastLibvirtError() +
                                             " (is libvirtd, or virtnetworkd, running?)");
  }
  return conn;
}

// nullptr (when !must_exist) or kNotFound when there is no such network.
NetworkPtr Lookup(virConnectPtr conn, const std::string& uri, const std::string& network,
                  bool must_exist = true) {
  NetworkPtr net(virNetworkLookupByName(conn, network.c_str()));
  if (!net) {
    if (LastLibvirtCode() == VIR_ERR_NO_NETWORK) {
      if (!must_exist) return nullptr;
      throw Error(ErrorKind::kNotFound, What(uri, network) + " does not exist");
    }
    throw Error(ErrorKind::kSystem, What(uri, network) + ": lookup: " + LastLibvirtError());
  }
  return net;
}

void CheckActive(virNetworkPtr net, const std::string& uri, const std::string& network) {
  int active = virNetworkIsActive(net);
  if (active < 0) {
    throw Error(ErrorKind::kSystem, What(uri, network) + ": is-active: " + LastLibvirtError());
  }
  if (active == 0) {
    throw Error(ErrorKind::kConflict,
                What(uri, network) + " is not active (virsh net-start " + network + ")");
  }
}

// flags: 0 for the running network, VIR_NETWORK_XML_INACTIVE for its persistent config.
LibvirtNetworkXml ReadXml(virNetworkPtr net, const std::string& uri, const std::string& network,
                          unsigned flags) {
  std::unique_ptr<char, decltype(&free)> xml(virNetworkGetXMLDesc(net, flags), &free);
  if (!xml) {
    throw Error(ErrorKind::kSystem, What(uri, network) + ": dumpxml: " + LastLibvirtError());
  }
  return WithContext(What(uri, network), [&] { return ParseLibvirtNetworkXml(xml.get()); });
}

bool SameMac(const std::string& text, const MacAddress& mac) {
  try {
    return MacAddress::Parse(text) == mac;
  } catch (const Error&) {
    return false;
  }
}

// The address a static host of `mac` holds in this XML, if any.
std::optional<Ipv4Address> HostOf(const LibvirtNetworkXml& x, const MacAddress& mac) {
  if (!x.ipv4) return std::nullopt;
  for (const auto& [m, ip] : x.ipv4->hosts) {
    if (SameMac(m, mac)) return ip;
  }
  return std::nullopt;
}

std::string HostXml(const MacAddress& mac, Ipv4Address address) {
  return "<host mac='" + mac.ToString() + "' ip='" + address.ToString() + "'/>";
}

// The live network and, when it is persistent, its config: both get the same change so a
// restart of the network keeps the reservation.
std::vector<unsigned> Scopes(virNetworkPtr net) {
  std::vector<unsigned> scopes;
  if (virNetworkIsActive(net) == 1) scopes.push_back(VIR_NETWORK_UPDATE_AFFECT_LIVE);
  if (virNetworkIsPersistent(net) == 1) scopes.push_back(VIR_NETWORK_UPDATE_AFFECT_CONFIG);
  return scopes;
}

unsigned XmlFlagsFor(unsigned scope) {
  return scope == VIR_NETWORK_UPDATE_AFFECT_CONFIG ? VIR_NETWORK_XML_INACTIVE : 0;
}

}  // namespace

std::string LookupLibvirtBridge(const std::string& uri, const std::string& network) {
  ConnectPtr conn = Connect(uri);
  NetworkPtr net = Lookup(conn.get(), uri, network);
  CheckActive(net.get(), uri, network);
  std::unique_ptr<char, decltype(&free)> bridge(virNetworkGetBridgeName(net.get()), &free);
  if (!bridge) {
    throw Error(ErrorKind::kUnsupported,
                What(uri, network) + " has no bridge (" + LastLibvirtError() +
                    "); only bridge-backed networks (NAT, route, isolated, bridge) can be joined");
  }
  return bridge.get();
}

std::optional<LibvirtReservation> PlanLibvirtReservation(const std::string& uri,
                                                         const std::string& network,
                                                         const MacAddress& mac) {
  ConnectPtr conn = Connect(uri);
  NetworkPtr net = Lookup(conn.get(), uri, network);
  CheckActive(net.get(), uri, network);
  LibvirtNetworkXml x = ReadXml(net.get(), uri, network, 0);
  if (!x.ipv4 || !x.ipv4->has_dhcp) return std::nullopt;
  LibvirtReservation r;
  r.prefix_len = x.ipv4->prefix_len;
  if (!x.forward_mode.empty()) r.gateway = x.ipv4->address;
  if (x.dns_enabled) r.dns = x.ipv4->address;
  if (auto held = HostOf(x, mac)) {
    r.address = *held;
    return r;
  }
  // Addresses dnsmasq has leased to others: not in its static hosts, but in use.
  std::set<Ipv4Address> taken;
  virNetworkDHCPLeasePtr* leases = nullptr;
  int n = virNetworkGetDHCPLeases(net.get(), nullptr, &leases, 0);
  if (n < 0) {
    throw Error(ErrorKind::kSystem, What(uri, network) + ": dhcp-leases: " + LastLibvirtError());
  }
  for (int i = 0; i < n; ++i) {
    if (leases[i]->type == VIR_IP_ADDR_TYPE_IPV4 && leases[i]->ipaddr &&
        !(leases[i]->mac && SameMac(leases[i]->mac, mac))) {
      try {
        taken.insert(Ipv4Address::Parse(leases[i]->ipaddr));
      } catch (const Error&) {
      }
    }
    virNetworkDHCPLeaseFree(leases[i]);
  }
  free(leases);
  auto pick = PickLibvirtAddress(*x.ipv4, taken);
  if (!pick) {
    throw Error(ErrorKind::kResourceExhausted,
                What(uri, network) + ": every address of its DHCP ranges is taken");
  }
  r.address = *pick;
  return r;
}

void AddLibvirtReservation(const std::string& uri, const std::string& network,
                           const MacAddress& mac, Ipv4Address address) {
  ConnectPtr conn = Connect(uri);
  NetworkPtr net = Lookup(conn.get(), uri, network);
  for (unsigned scope : Scopes(net.get())) {
    LibvirtNetworkXml x = ReadXml(net.get(), uri, network, XmlFlagsFor(scope));
    if (auto held = HostOf(x, mac)) {
      if (*held == address) continue;
      throw Error(ErrorKind::kConflict, What(uri, network) + ": MAC " + mac.ToString() +
                                            " already holds " + held->ToString());
    }
    if (x.ipv4) {
      for (const auto& [m, ip] : x.ipv4->hosts) {
        if (ip == address) {
          throw Error(ErrorKind::kConflict,
                      What(uri, network) + ": " + address.ToString() + " is reserved for " + m);
        }
      }
    }
    std::string xml = HostXml(mac, address);
    if (virNetworkUpdate(net.get(), VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
                         VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml.c_str(), scope) != 0) {
      throw Error(ErrorKind::kSystem,
                  What(uri, network) + ": add " + xml + ": " + LastLibvirtError());
    }
  }
}

void RemoveLibvirtReservation(const std::string& uri, const std::string& network,
                              const MacAddress& mac, Ipv4Address address) {
  ConnectPtr conn = Connect(uri);
  NetworkPtr net = Lookup(conn.get(), uri, network, /*must_exist=*/false);
  if (!net) return;
  for (unsigned scope : Scopes(net.get())) {
    auto held = HostOf(ReadXml(net.get(), uri, network, XmlFlagsFor(scope)), mac);
    if (!held || *held != address) continue;
    std::string xml = HostXml(mac, address);
    if (virNetworkUpdate(net.get(), VIR_NETWORK_UPDATE_COMMAND_DELETE,
                         VIR_NETWORK_SECTION_IP_DHCP_HOST, -1, xml.c_str(), scope) != 0) {
      throw Error(ErrorKind::kSystem,
                  What(uri, network) + ": delete " + xml + ": " + LastLibvirtError());
    }
  }
}

#else

bool HaveLibvirt() { return false; }

std::string LookupLibvirtBridge(const std::string& uri, const std::string& network) {
  throw Error(ErrorKind::kUnsupported, "libvirt network \"" + network + "\" at " + uri +
                                           ": berth was built without libvirt (libvirt-dev)");
}

std::optional<LibvirtReservation> PlanLibvirtReservation(const std::string& uri,
                                                         const std::string& network,
                                                         const MacAddress&) {
  LookupLibvirtBridge(uri, network);  // throws: built without libvirt
  return std::nullopt;
}
void AddLibvirtReservation(const std::string& uri, const std::string& network, const MacAddress&,
                           Ipv4Address) {
  LookupLibvirtBridge(uri, network);
}
void RemoveLibvirtReservation(const std::string&, const std::string&, const MacAddress&,
                              Ipv4Address) {}

#endif

}  // namespace berth::net
