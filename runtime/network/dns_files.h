// Contents of /etc/resolv.conf, /etc/hosts and /etc/hostname for an instance: pure
// functions, so berthd decides where to write them (into the rootfs, or a file it
// bind-mounts there) and tests need no root.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::net {

struct ResolvConf {
  std::vector<std::string> nameservers;
  std::vector<std::string> search;
  std::vector<std::string> options;  // "ndots:2", "edns0", ...
};

// Reads nameserver, search (and the older domain) and options lines; the rest is ignored.
ResolvConf ParseResolvConf(std::string_view text);

// The host's settings made fit for an instance in its own network namespace: loopback
// nameservers (systemd-resolved's 127.0.0.53, a local dnsmasq, ::1) are unreachable from
// there and are dropped; when none is left, `fallback` (berthd's config) is used.
ResolvConf ResolvConfForInstance(const ResolvConf& host, const std::vector<std::string>& fallback);

std::string RenderResolvConf(const ResolvConf& conf);

struct HostsEntry {
  std::string address;
  std::vector<std::string> names;
};

// localhost lines (IPv4 and IPv6), then the instance's own name on its address (or on
// 127.0.1.1 when it has none, Debian's convention), then `extra`. A dotted hostname also
// gets its short form. kInvalidArgument for a hostname that is not RFC 1123.
std::string RenderHosts(const std::string& hostname, const std::optional<std::string>& address,
                        const std::vector<HostsEntry>& extra = {});

std::string RenderHostname(const std::string& hostname);

bool IsValidHostname(std::string_view hostname);

}  // namespace berth::net
