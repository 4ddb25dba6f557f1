#include "driver/server/instance_network.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/common/unique_fd.h"
#include "runtime/network/bridge_network.h"
#include "runtime/network/dns_files.h"
#include "runtime/network/netlink.h"
#include "runtime/network/netns.h"

namespace berth::server {
namespace {

[[noreturn]] void Invalid(const std::string& msg) { throw Error(ErrorKind::kInvalidArgument, msg); }

const rapidjson::Value* Member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::string StrOr(const rapidjson::Value* v, const char* name, const std::string& def = "") {
  if (!v) return def;
  const rapidjson::Value* m = Member(*v, name);
  return m && m->IsString() ? std::string(m->GetString()) : def;
}

uint16_t Port(const rapidjson::Value& p, const char* field, const std::string& path) {
  auto v = OptInt(p, field, path + "." + field);
  if (!v) Invalid(path + "." + field + ": missing");
  if (*v < 1 || *v > 65535) Invalid(path + "." + field + ": want 1..65535");
  return static_cast<uint16_t>(*v);
}

std::string PrefixOf(const std::string& cidr) {
  auto slash = cidr.find('/');
  return slash == std::string::npos ? "" : cidr.substr(slash + 1);
}

// Writes a file of the instance's root without following links out of it (the root is the
// tenant's: /etc/resolv.conf may be a link to anywhere).
void WriteInRoot(const std::string& root, const char* rel, const std::string& content) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) ThrowErrno("open", root);
  ::mkdirat(dir.get(), "etc", 0755);  // EEXIST is fine; a missing /etc is made
  struct open_how how = {};
  how.flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  how.mode = 0644;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, dir.get(), rel, &how, sizeof how)));
  if (!fd) ThrowErrno("openat2", root + "/" + rel);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd.get(), content.data() + off, content.size() - off);
    if (n < 0) ThrowErrno("write", root + "/" + rel);
    off += static_cast<size_t>(n);
  }
}

void WriteVifJson(JsonWriter& w, const NeutronVif& v) {
  w.StartObject();
  WriteString(w, "kind", net::ToString(v.kind));
  WriteString(w, "port_id", v.spec.port_id);
  WriteString(w, "devname", v.spec.devname);
  WriteString(w, "bridge", v.spec.bridge);
  WriteString(w, "mac", v.spec.mac.ToString());
  WriteStringArray(w, "fixed_ips", v.spec.fixed_ips);
  WriteStringArray(w, "gateways", v.spec.gateways);
  w.Key("routes");
  w.StartArray();
  for (const auto& r : v.spec.routes) {
    w.StartObject();
    WriteString(w, "destination", r.destination);
    WriteString(w, "via", r.via);
    w.EndObject();
  }
  w.EndArray();
  w.Key("mtu");
  w.Uint(v.spec.mtu);
  WriteString(w, "ifname", v.spec.ifname);
  WriteStringArray(w, "dns", v.dns);
  w.EndObject();
}

net::VifKind KindFromName(const std::string& s, const std::string& path) {
  if (s == "linuxbridge") return net::VifKind::kLinuxBridge;
  if (s == "ovs") return net::VifKind::kOvs;
  Invalid(path + ": unknown VIF kind \"" + s + "\"");
}

std::vector<std::string> ReadStrings(const rapidjson::Value& obj, const char* field,
                                     const std::string& path) {
  return OptStringArray(obj, field, path + "." + field).value_or(std::vector<std::string>{});
}

std::string NextIfname(const NetworkRequest& req) {
  for (int i = 0;; ++i) {
    std::string name = "eth" + std::to_string(i);
    bool used = std::any_of(req.vifs.begin(), req.vifs.end(),
                            [&](const NeutronVif& v) { return v.spec.ifname == name; });
    if (!used) return name;
  }
}

// One default route per address family, through the first interface that has a gateway
// of that family (as a VM's DHCP client would end up): a second one would clash (EEXIST).
void KeepOneDefaultRoute(const std::vector<NeutronVif>& earlier, NeutronVif& vif) {
  auto is_v6 = [](const std::string& a) { return a.find(':') != std::string::npos; };
  std::vector<std::string> kept;
  for (const auto& gw : vif.spec.gateways) {
    bool taken = std::any_of(earlier.begin(), earlier.end(), [&](const NeutronVif& e) {
      return std::any_of(e.spec.gateways.begin(), e.spec.gateways.end(),
                         [&](const std::string& g) { return is_v6(g) == is_v6(gw); });
    });
    if (!taken) kept.push_back(gw);
  }
  vif.spec.gateways = kept;
}

}  // namespace

NeutronVif ParseNovaVif(const rapidjson::Value& vif, const std::string& path,
                        const std::string& ifname) {
  if (!vif.IsObject()) Invalid(path + ": want an object (a Nova VIF)");
  NeutronVif out;
  std::string type = StrOr(&vif, "type");
  if (type == "bridge") {
    out.kind = net::VifKind::kLinuxBridge;
  } else if (type == "ovs") {
    out.kind = net::VifKind::kOvs;
  } else {
    Invalid(path + ".type: VIF type \"" + type +
            "\" is not supported (bridge: Linux bridge, ovs: Open vSwitch)");
  }
  net::VifSpec& s = out.spec;
  s.port_id = StrOr(&vif, "id");
  if (s.port_id.empty()) Invalid(path + ".id: missing");
  s.devname = StrOr(&vif, "devname", "tap" + s.port_id.substr(0, 11));
  const rapidjson::Value* network = Member(vif, "network");
  s.bridge = StrOr(network, "bridge");
  if (s.bridge.empty() && out.kind == net::VifKind::kLinuxBridge) {
    Invalid(path + ".network.bridge: missing (the Linux bridge to join)");
  }
  try {
    s.mac = net::MacAddress::Parse(StrOr(&vif, "address"));
  } catch (const Error&) {
    Invalid(path + ".address: want the port's MAC address");
  }
  const rapidjson::Value* meta = network ? Member(*network, "meta") : nullptr;
  if (const rapidjson::Value* mtu = meta ? Member(*meta, "mtu") : nullptr) {
    if (!mtu->IsUint() || mtu->GetUint() > 65535)
      Invalid(path + ".network.meta.mtu: want 0..65535");
    s.mtu = mtu->GetUint();
  }
  const rapidjson::Value* subnets = network ? Member(*network, "subnets") : nullptr;
  if (subnets) {
    if (!subnets->IsArray()) Invalid(path + ".network.subnets: want an array");
    for (const auto& sub : subnets->GetArray()) {
      std::string cidr = StrOr(&sub, "cidr");
      std::string prefix = PrefixOf(cidr);
      if (prefix.empty())
        Invalid(path + ".network.subnets[].cidr: want a CIDR, got \"" + cidr + "\"");
      if (const rapidjson::Value* ips = Member(sub, "ips"); ips && ips->IsArray()) {
        for (const auto& ip : ips->GetArray()) {
          std::string a = StrOr(&ip, "address");
          if (!a.empty()) s.fixed_ips.push_back(a + "/" + prefix);
        }
      }
      std::string gw = StrOr(Member(sub, "gateway"), "address");
      bool v6 = cidr.find(':') != std::string::npos;
      bool have_family = std::any_of(
          s.gateways.begin(), s.gateways.end(),
          [&](const std::string& g) { return (g.find(':') != std::string::npos) == v6; });
      if (!gw.empty() && !have_family) s.gateways.push_back(gw);
      if (const rapidjson::Value* routes = Member(sub, "routes"); routes && routes->IsArray()) {
        for (const auto& r : routes->GetArray()) {
          s.routes.push_back({StrOr(&r, "cidr"), StrOr(Member(r, "gateway"), "address")});
        }
      }
      if (const rapidjson::Value* dns = Member(sub, "dns"); dns && dns->IsArray()) {
        for (const auto& d : dns->GetArray()) {
          std::string a = StrOr(&d, "address");
          if (!a.empty() && std::find(out.dns.begin(), out.dns.end(), a) == out.dns.end())
            out.dns.push_back(a);
        }
      }
    }
  }
  s.ifname = ifname;
  try {
    net::ValidateVifSpec(s);
  } catch (const Error& e) {
    Invalid(path + ": " + e.message());
  }
  return out;
}

NetworkRequest ParseNetworkRequest(const rapidjson::Value& body, const NetworkOptions& options) {
  NetworkRequest req;
  const rapidjson::Value* network = OptObject(body, "network", "network");
  const rapidjson::Value* info = Member(body, "network_info");
  if (info && !info->IsArray()) Invalid("network_info: want Nova's network_info (a list of VIFs)");
  if (network) {
    req.mode = OptString(*network, "mode", "network.mode").value_or(options.default_mode);
    if (!IsNetworkMode(req.mode)) {
      Invalid("network.mode: want none, bridge, neutron or libvirt, got \"" + req.mode + "\"");
    }
    if (const rapidjson::Value* ports = Member(*network, "ports")) {
      if (!ports->IsArray()) Invalid("network.ports: want an array");
      if (req.mode != "bridge") Invalid("network.ports: published ports need mode bridge");
      size_t i = 0;
      for (const auto& p : ports->GetArray()) {
        std::string path = "network.ports[" + std::to_string(i++) + "]";
        if (!p.IsObject()) Invalid(path + ": want {host_port, container_port, protocol}");
        net::PortMapping m;
        m.host_port = Port(p, "host_port", path);
        m.container_port = Port(p, "container_port", path);
        m.protocol = OptString(p, "protocol", path + ".protocol").value_or("tcp");
        if (m.protocol != "tcp" && m.protocol != "udp")
          Invalid(path + ".protocol: want tcp or udp");
        if (auto hip = OptString(p, "host_ip", path + ".host_ip"); hip && !hip->empty()) {
          try {
            m.host_ip = net::Ipv4Address::Parse(*hip);
          } catch (const Error&) {
            Invalid(path + ".host_ip: want an IPv4 address");
          }
        }
        for (const auto& other : req.ports) {
          if (other.host_port == m.host_port && other.protocol == m.protocol &&
              (!other.host_ip || !m.host_ip || *other.host_ip == *m.host_ip)) {
            Invalid(path + ": host port " + std::to_string(m.host_port) + "/" + m.protocol +
                    " given twice");
          }
        }
        req.ports.push_back(m);
      }
    }
    req.libvirt_network = OptString(*network, "libvirt_network", "network.libvirt_network")
                              .value_or(req.mode == "libvirt" ? options.libvirt_network : "");
    if (req.mode == "neutron" && !info) {
      Invalid("network.mode: neutron needs network_info (Nova's VIFs)");
    }
  } else if (info) {
    req.mode = info->Empty() ? "none" : "neutron";
  } else {
    req.mode = options.default_mode;
    if (req.mode == "neutron") req.mode = "none";  // nothing to plug without network_info
    if (req.mode == "libvirt") req.libvirt_network = options.libvirt_network;
  }
  if (info && req.mode == "neutron") {
    size_t i = 0;
    for (const auto& vif : info->GetArray()) {
      std::string path = "network_info[" + std::to_string(i) + "]";
      NeutronVif v = ParseNovaVif(vif, path, "eth" + std::to_string(i));
      KeepOneDefaultRoute(req.vifs, v);
      for (const auto& other : req.vifs) {
        if (other.spec.port_id == v.spec.port_id || other.spec.devname == v.spec.devname) {
          Invalid(path + ": port " + v.spec.port_id + " given twice");
        }
      }
      req.vifs.push_back(std::move(v));
      ++i;
    }
  }
  return req;
}

std::string NetworkRequestToJson(const NetworkRequest& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteString(w, "mode", r.mode);
  std::vector<std::string> ports;
  for (const auto& p : r.ports) ports.push_back(net::ToString(p));
  WriteStringArray(w, "ports", ports);
  w.Key("vifs");
  w.StartArray();
  for (const auto& v : r.vifs) WriteVifJson(w, v);
  w.EndArray();
  WriteString(w, "libvirt_network", r.libvirt_network);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

NetworkRequest NetworkRequestFromJson(const std::string& json, const std::string& path) {
  return WithContext(path, [&] {
    rapidjson::Document d = ParseJsonObject(json, path);
    NetworkRequest r;
    r.mode = OptString(d, "mode", "mode").value_or("none");
    if (!IsNetworkMode(r.mode)) Invalid("mode: unknown \"" + r.mode + "\"");
    for (const auto& p : ReadStrings(d, "ports", "")) r.ports.push_back(net::ParsePortMapping(p));
    r.libvirt_network = OptString(d, "libvirt_network", "libvirt_network").value_or("");
    if (const rapidjson::Value* vifs = Member(d, "vifs"); vifs && vifs->IsArray()) {
      for (const auto& v : vifs->GetArray()) {
        NeutronVif n;
        n.kind = KindFromName(OptString(v, "kind", "kind").value_or(""), "vifs[].kind");
        n.spec.port_id = OptString(v, "port_id", "port_id").value_or("");
        n.spec.devname = OptString(v, "devname", "devname").value_or("");
        n.spec.bridge = OptString(v, "bridge", "bridge").value_or("");
        n.spec.mac = net::MacAddress::Parse(OptString(v, "mac", "mac").value_or(""));
        n.spec.fixed_ips = ReadStrings(v, "fixed_ips", "vifs[]");
        n.spec.gateways = ReadStrings(v, "gateways", "vifs[]");
        if (const rapidjson::Value* routes = Member(v, "routes"); routes && routes->IsArray()) {
          for (const auto& rt : routes->GetArray()) {
            n.spec.routes.push_back({StrOr(&rt, "destination"), StrOr(&rt, "via")});
          }
        }
        n.spec.mtu = static_cast<unsigned>(OptInt(v, "mtu", "mtu").value_or(0));
        n.spec.ifname = OptString(v, "ifname", "ifname").value_or("eth0");
        n.dns = ReadStrings(v, "dns", "vifs[]");
        r.vifs.push_back(std::move(n));
      }
    }
    return r;
  });
}

void WriteInterfaceJson(JsonWriter& w, const InterfaceView& i) {
  w.StartObject();
  WriteString(w, "ifname", i.ifname);
  WriteString(w, "kind", i.kind);
  if (!i.port_id.empty()) WriteString(w, "port_id", i.port_id);
  WriteString(w, "mac", i.mac);
  WriteStringArray(w, "addresses", i.addresses);
  if (!i.gateway.empty()) WriteString(w, "gateway", i.gateway);
  WriteString(w, "host_ifname", i.host_ifname);
  WriteString(w, "bridge", i.bridge);
  if (!i.host_netns.empty()) WriteString(w, "host_netns", i.host_netns);
  w.Key("mtu");
  w.Uint(i.mtu);
  w.EndObject();
}

void WriteNetworkJson(JsonWriter& w, const NetworkView& v) {
  w.Key("network");
  w.StartObject();
  WriteString(w, "mode", v.mode);
  w.Key("interfaces");
  w.StartArray();
  for (const auto& i : v.interfaces) WriteInterfaceJson(w, i);
  w.EndArray();
  w.Key("ports");
  w.StartArray();
  for (const auto& p : v.ports) {
    w.StartObject();
    w.Key("host_port");
    w.Uint(p.host_port);
    w.Key("container_port");
    w.Uint(p.container_port);
    WriteString(w, "protocol", p.protocol);
    if (p.host_ip) WriteString(w, "host_ip", p.host_ip->ToString());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

InstanceNetwork::InstanceNetwork(const NetworkOptions& options, const std::string& state_dir)
    : options_(options), state_dir_(JoinPath(state_dir, "network")) {
  if (!options_.host_netns.empty()) {
    host_ns_ = UniqueFd(::open(options_.host_netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!host_ns_) {
      throw Error::FromErrno("open", options_.host_netns, errno)
          .WithContext("[network] host_netns");
    }
  }
  MakeDirs(state_dir_, 0700);
  net::BridgeConfig bc;
  bc.bridge = options_.bridge;
  bc.subnet = net::Ipv4Subnet::Parse(options_.subnet);
  if (!options_.gateway.empty()) bc.gateway = net::Ipv4Address::Parse(options_.gateway);
  if (!options_.subnet6.empty()) bc.subnet6 = net::Ipv6Subnet::Parse(options_.subnet6);
  bc.transit = net::Ipv4Subnet::Parse(options_.transit);
  bc.mtu = options_.mtu;
  bc.state_dir = JoinPath(state_dir_, "bridge");
  bc.table = options_.nft_table;
  bc.enable_ip_forward = options_.enable_ip_forward;
  bc.fast_path = options_.bridge_fast_path;
  bc.host_netns_fd = host_ns_ ? host_ns_.get() : -1;
  bridge_ = std::make_unique<net::BridgeNetwork>(bc);
  net::VifNetworkConfig vc;
  vc.state_dir = JoinPath(state_dir_, "vifs");
  vc.host_netns_fd = bc.host_netns_fd;
  vc.ovsdb.vsctl = options_.ovs_vsctl;
  vc.ovsdb.db = options_.ovsdb;
  vc.ovsdb.timeout_seconds = options_.ovs_timeout;
  vc.libvirt_uri = options_.libvirt_uri;
  vifs_ = std::make_unique<net::VifNetwork>(vc);
}

InstanceNetwork::~InstanceNetwork() = default;

void InstanceNetwork::Check(const NetworkRequest& request) const {
  if (request.mode == "libvirt" && request.libvirt_network.empty()) {
    Invalid("network.libvirt_network: missing");
  }
}

void InstanceNetwork::Save(const std::string& instance_dir, const NetworkRequest& request) {
  const std::string path = JoinPath(instance_dir, "network.json");
  // Loopback only is what no file means (Load): such a spawn writes nothing here.
  if (request.mode == "none" && request.ports.empty() && request.vifs.empty() &&
      request.libvirt_network.empty()) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) ThrowErrno("unlink", path);
    return;
  }
  WriteFileAtomic(path, NetworkRequestToJson(request), 0600);
}

NetworkRequest InstanceNetwork::Load(const std::string& instance_dir) const {
  std::string path = JoinPath(instance_dir, "network.json");
  auto text = ReadFileIfExists(path);
  if (!text) return NetworkRequest{};
  return NetworkRequestFromJson(*text, path);
}

bool InstanceNetwork::HostLinkExists(const std::string& name) {
  net::Netlink nl =
      net::Netlink::OpenIn(host_ns_ ? net::NetnsRef::Fd(host_ns_.get()) : net::NetnsRef{});
  return nl.FindLink(name).has_value();
}

void InstanceNetwork::AttachVif(const std::string& uuid, pid_t pid, const NeutronVif& vif) {
  auto ns = net::NetnsRef::Pid(pid);
  if (vif.kind == net::VifKind::kOvs) {
    vifs_->AttachToOvs(uuid, ns, vif.spec);
  } else {
    vifs_->AttachToLinuxBridge(uuid, ns, vif.spec);
  }
}

void InstanceNetwork::Attach(const std::string& uuid, pid_t init_pid, const std::string& rootfs,
                             const std::string& hostname, const NetworkRequest& request) {
  if (request.mode == "none") {
    Refresh(uuid, "none");
    return;
  }
  auto started = std::chrono::steady_clock::now();
  Rollback undo;
  std::optional<std::string> address;
  std::vector<std::string> dns;
  auto ns = net::NetnsRef::Pid(init_pid);
  if (request.mode == "bridge") {
    net::AttachOptions o;
    o.ports = request.ports;
    net::Attachment a = bridge_->Attach(uuid, ns, o);
    undo.Add([this, uuid] { bridge_->Detach(uuid); });
    address = a.address.ToString();
  } else if (request.mode == "neutron") {
    undo.Add([this, uuid] { vifs_->DetachInstance(uuid); });
    for (const auto& vif : request.vifs) {
      AttachVif(uuid, init_pid, vif);
      if (!address && !vif.spec.fixed_ips.empty()) {
        const std::string& ip = vif.spec.fixed_ips.front();
        address = ip.substr(0, ip.find('/'));
      }
      for (const auto& d : vif.dns) dns.push_back(d);
    }
  } else if (request.mode == "libvirt") {
    undo.Add([this, uuid] { vifs_->DetachInstance(uuid); });
    // An address reserved in libvirt's DHCP for the instance's MAC, when the network has
    // DHCP; else the instance asks libvirt's DHCP itself (docs/networking.md).
    net::VifAttachment a = vifs_->AttachToLibvirtNetwork(uuid, ns, request.libvirt_network);
    if (!a.fixed_ips.empty())
      address = a.fixed_ips.front().substr(0, a.fixed_ips.front().find('/'));
    dns = a.dns;
  }
  WithContext("write /etc files of instance " + uuid, [&] {
    net::ResolvConf conf;
    if (!dns.empty()) {
      conf.nameservers = dns;
    } else {
      conf = net::ResolvConfForInstance(
          net::ParseResolvConf(ReadFileIfExists(options_.host_resolv_conf).value_or("")),
          options_.fallback_dns);
    }
    WriteInRoot(rootfs, "etc/resolv.conf", net::RenderResolvConf(conf));
    WriteInRoot(rootfs, "etc/hosts", net::RenderHosts(hostname, address));
    WriteInRoot(rootfs, "etc/hostname", net::RenderHostname(hostname));
  });
  undo.Commit();
  Refresh(uuid, request.mode);
  spdlog::info("instance {}: network ({}) attached in {:.1f} ms", uuid, request.mode,
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
                   .count());
}

void InstanceNetwork::Detach(const std::string& uuid) {
  // Both kinds, whatever the request says (a half-made instance may have no request
  // yet); each only when it holds something, so an instance without networking never
  // touches nftables or OVSDB. (A lease without a record — a crash inside Attach — is
  // freed by the start-up Reconcile.)
  if (bridge_->Find(uuid)) bridge_->Detach(uuid);
  if (!vifs_->ListInstance(uuid).empty()) vifs_->DetachInstance(uuid);
  std::lock_guard lock(mu_);
  views_.erase(uuid);
}

void InstanceNetwork::Reconcile(const std::map<std::string, NetworkRequest>& live,
                                const std::map<std::string, pid_t>& running) {
  std::set<std::string> ids;
  for (const auto& [uuid, req] : live) ids.insert(uuid);
  for (const auto& id : bridge_->Reconcile(ids)) {
    spdlog::warn("network: released the bridge attachment of {} (no such instance)", id);
  }
  spdlog::info("network: bridge fast path {}", bridge_->FastPathStatus());
  try {
    for (const auto& id : vifs_->Reconcile(ids)) {
      spdlog::warn("network: detached VIF {} (no such instance)", id);
    }
  } catch (const Error& e) {
    spdlog::error("network: reconciling VIFs: {}", e.message());
  }
  for (const auto& [uuid, req] : live) {
    auto pid = running.find(uuid);
    if (pid != running.end() && pid->second > 0) {
      try {
        if (req.mode == "bridge") {
          auto a = bridge_->Find(uuid);
          if (!a || !bridge_->HostEndExists(uuid)) {
            spdlog::warn("instance {}: bridge attachment missing; attaching again", uuid);
            net::AttachOptions o;
            o.ports = req.ports;
            bridge_->Attach(uuid, net::NetnsRef::Pid(pid->second), o);
          }
        } else if (req.mode == "neutron") {
          auto have = vifs_->ListInstance(uuid);
          for (const auto& vif : req.vifs) {
            bool ok = std::any_of(have.begin(), have.end(), [&](const net::VifAttachment& a) {
              return a.port_id == vif.spec.port_id && HostLinkExists(a.devname);
            });
            if (!ok) {
              spdlog::warn("instance {}: VIF {} missing; attaching again", uuid, vif.spec.port_id);
              AttachVif(uuid, pid->second, vif);
            }
          }
        } else if (req.mode == "libvirt") {
          auto have = vifs_->ListInstance(uuid);
          bool ok = std::any_of(have.begin(), have.end(), [&](const net::VifAttachment& a) {
            return HostLinkExists(a.devname);
          });
          if (!ok) {
            spdlog::warn("instance {}: libvirt attachment missing; attaching again", uuid);
            vifs_->AttachToLibvirtNetwork(uuid, net::NetnsRef::Pid(pid->second),
                                          req.libvirt_network);
          }
        }
      } catch (const Error& e) {
        spdlog::error("instance {}: network not restored: {}", uuid, e.message());
      }
    }
    Refresh(uuid, req.mode);
  }
}

InterfaceView InstanceNetwork::AttachInterface(const std::string& uuid, pid_t pid,
                                               const std::string& instance_dir,
                                               const rapidjson::Value& body) {
  NetworkRequest req = Load(instance_dir);
  if (req.mode != "neutron" && req.mode != "none") {
    throw Error(ErrorKind::kConflict, "instance " + uuid + " is in network mode " + req.mode +
                                          "; interfaces can be attached in mode neutron");
  }
  const rapidjson::Value* vif_json = Member(body, "vif");
  NeutronVif vif =
      ParseNovaVif(vif_json ? *vif_json : body, vif_json ? "vif" : "body", NextIfname(req));
  KeepOneDefaultRoute(req.vifs, vif);
  for (const auto& v : req.vifs) {
    if (v.spec.port_id == vif.spec.port_id) {
      throw Error(ErrorKind::kAlreadyExists,
                  "port " + vif.spec.port_id + " is already attached to instance " + uuid);
    }
  }
  if (pid > 0) AttachVif(uuid, pid, vif);
  req.mode = "neutron";
  req.vifs.push_back(vif);
  try {
    Save(instance_dir, req);
  } catch (...) {
    if (pid > 0) vifs_->Detach(uuid, vif.spec.port_id);
    throw;
  }
  Refresh(uuid, req.mode);
  for (const auto& i : View(uuid).interfaces) {
    if (i.port_id == vif.spec.port_id) return i;
  }
  InterfaceView i;  // stopped: attached at the next start
  i.ifname = vif.spec.ifname;
  i.kind = net::ToString(vif.kind);
  i.port_id = vif.spec.port_id;
  i.mac = vif.spec.mac.ToString();
  i.addresses = vif.spec.fixed_ips;
  i.host_ifname = vif.spec.devname;
  i.bridge = vif.spec.bridge;
  i.mtu = vif.spec.mtu;
  return i;
}

void InstanceNetwork::DetachInterface(const std::string& uuid, const std::string& instance_dir,
                                      const std::string& port_id) {
  NetworkRequest req = Load(instance_dir);
  auto it = std::find_if(req.vifs.begin(), req.vifs.end(),
                         [&](const NeutronVif& v) { return v.spec.port_id == port_id; });
  if (it == req.vifs.end()) {
    throw Error(ErrorKind::kNotFound, "instance " + uuid + " has no interface " + port_id);
  }
  vifs_->Detach(uuid, port_id);  // throws, changing nothing, when OVSDB does not answer
  req.vifs.erase(it);
  Save(instance_dir, req);
  Refresh(uuid, req.mode);
}

void InstanceNetwork::Refresh(const std::string& uuid, const std::string& mode) {
  NetworkView v;
  v.mode = mode;
  if (mode == "bridge") {
    if (auto a = bridge_->Find(uuid)) {
      InterfaceView i;
      i.ifname = a->ifname;
      i.kind = "bridge";
      i.mac = a->mac.ToString();
      i.addresses = {a->address.ToString() + "/" + std::to_string(a->prefix_len)};
      if (!a->address6.empty()) {
        i.addresses.push_back(a->address6 + "/" + std::to_string(a->prefix_len6));
      }
      i.gateway = a->gateway.ToString();
      i.host_ifname = a->host_ifname;
      i.bridge = options_.bridge;
      i.host_netns = net::BridgeNetnsPin(bridge_->config().state_dir);
      i.mtu = a->mtu;
      v.interfaces.push_back(i);
      v.ports = a->ports;
    }
  } else if (mode != "none") {
    for (const auto& a : vifs_->ListInstance(uuid)) {
      InterfaceView i;
      i.ifname = a.ifname;
      i.kind = net::ToString(a.kind);
      i.port_id = a.port_id;
      i.mac = a.mac.ToString();
      i.addresses = a.fixed_ips;
      i.host_ifname = a.devname;
      i.bridge = a.bridge;
      i.mtu = a.mtu;
      v.interfaces.push_back(i);
    }
    std::sort(v.interfaces.begin(), v.interfaces.end(),
              [](const InterfaceView& x, const InterfaceView& y) { return x.ifname < y.ifname; });
  }
  std::lock_guard lock(mu_);
  views_[uuid] = std::move(v);
}

NetworkView InstanceNetwork::View(const std::string& uuid) const {
  std::lock_guard lock(mu_);
  auto it = views_.find(uuid);
  return it == views_.end() ? NetworkView{} : it->second;
}

}  // namespace berth::server
