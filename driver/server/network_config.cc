#include "driver/server/network_config.h"

#include <charconv>
#include <sstream>

#include "runtime/common/error.h"
#include "runtime/network/address.h"

namespace berth::server {
namespace {

[[noreturn]] void Bad(const std::string& where, const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, where + ": " + what);
}

unsigned ToUnsigned(const std::string& where, const std::string& v, unsigned lo, unsigned hi) {
  unsigned out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || out < lo || out > hi) {
    Bad(where, "want an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got \"" +
                   v + "\"");
  }
  return out;
}

bool ToBool(const std::string& where, const std::string& v) {
  if (v == "true" || v == "yes" || v == "1" || v == "on") return true;
  if (v == "false" || v == "no" || v == "0" || v == "off") return false;
  Bad(where, "want true or false, got \"" + v + "\"");
}

}  // namespace

bool IsNetworkMode(const std::string& mode) {
  return mode == "none" || mode == "bridge" || mode == "neutron" || mode == "libvirt";
}

void SetNetworkOption(NetworkOptions& o, const std::string& where, const std::string& key,
                      const std::string& v) {
  if (key == "default_mode") {
    if (!IsNetworkMode(v)) Bad(where, "want none, bridge, neutron or libvirt, got \"" + v + "\"");
    o.default_mode = v;
  } else if (key == "bridge") {
    if (v.empty() || v.size() > 15 || v.find_first_of("/ \t\"") != std::string::npos) {
      Bad(where, "want an interface name of 1..15 characters");
    }
    o.bridge = v;
  } else if (key == "subnet") {
    try {
      net::Ipv4Subnet::Parse(v);
    } catch (const Error& e) {
      Bad(where, e.message());
    }
    o.subnet = v;
  } else if (key == "subnet6") {
    if (!v.empty()) {
      try {
        net::Ipv6Subnet::Parse(v);
      } catch (const Error& e) {
        Bad(where, e.message());
      }
    }
    o.subnet6 = v;
  } else if (key == "transit") {
    try {
      auto t = net::Ipv4Subnet::Parse(v);
      if (t.prefix_len < 24 || t.prefix_len > 31) Bad(where, "want a /24 to /31");
    } catch (const Error& e) {
      Bad(where, e.message());
    }
    o.transit = v;
  } else if (key == "gateway") {
    if (!v.empty()) {
      try {
        net::Ipv4Address::Parse(v);
      } catch (const Error& e) {
        Bad(where, e.message());
      }
    }
    o.gateway = v;
  } else if (key == "mtu") {
    o.mtu = ToUnsigned(where, v, 68, 65535);
  } else if (key == "nft_table") {
    for (char c : v) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
        Bad(where, "want letters, digits, '_' and '-'");
      }
    }
    if (v.empty()) Bad(where, "must not be empty");
    o.nft_table = v;
  } else if (key == "enable_ip_forward") {
    o.enable_ip_forward = ToBool(where, v);
  } else if (key == "bridge_fast_path") {
    o.bridge_fast_path = ToBool(where, v);
  } else if (key == "host_resolv_conf") {
    o.host_resolv_conf = v;
  } else if (key == "fallback_dns") {
    o.fallback_dns.clear();
    std::stringstream in(v);
    for (std::string item; std::getline(in, item, ',');) {
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      if (item.empty()) continue;
      try {
        net::Ipv4Address::Parse(item);
      } catch (const Error& e) {
        Bad(where, "\"" + item + "\" is not an IPv4 address");
      }
      o.fallback_dns.push_back(item);
    }
  } else if (key == "host_netns") {
    if (!v.empty() && v[0] != '/') Bad(where, "want an absolute path");
    o.host_netns = v;
  } else if (key == "ovs_vsctl") {
    o.ovs_vsctl = v;
  } else if (key == "ovsdb") {
    o.ovsdb = v;
  } else if (key == "ovs_timeout") {
    o.ovs_timeout = static_cast<int>(ToUnsigned(where, v, 1, 600));
  } else if (key == "libvirt_uri") {
    o.libvirt_uri = v;
  } else if (key == "libvirt_network") {
    o.libvirt_network = v;
  } else {
    throw Error(ErrorKind::kNotFound, "unknown option " + where);
  }
}

void CheckNetworkOptions(const NetworkOptions& o) {
  auto subnet = net::Ipv4Subnet::Parse(o.subnet);
  if (subnet.prefix_len > 30) {
    Bad("[network] subnet", "want a prefix of at most /30 (room for a gateway and instances)");
  }
  if (!o.gateway.empty() && !subnet.Contains(net::Ipv4Address::Parse(o.gateway))) {
    Bad("[network] gateway", o.gateway + " is not inside " + o.subnet);
  }
  auto transit = net::Ipv4Subnet::Parse(o.transit);
  if (subnet.Contains(transit.network) || transit.Contains(subnet.network)) {
    Bad("[network] transit", o.transit + " overlaps the subnet " + o.subnet);
  }
}

}  // namespace berth::server
