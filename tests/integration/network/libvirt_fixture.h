// A private libvirtd for a test, touching nothing of the host: it runs in a mount and
// network namespace of its own, where tmpfs hides /run, /var/lib, /var/cache and /var/log,
// and the test's directories are bind-mounted on /run/libvirt (so its socket is reachable
// from outside at dir/run/libvirt-sock), /var/lib/libvirt, /etc/libvirt, /etc/passwd and
// /etc/group (with the libvirt-qemu user the QEMU driver insists on). Its networks'
// bridges, dnsmasq and firewall rules therefore live only in that network namespace.
// Stopped by pid on destruction, after destroying the networks the test made.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"

namespace berth::net::testing {

bool HaveLibvirtd();

class LibvirtDaemon {
 public:
  explicit LibvirtDaemon(const std::string& dir);  // dir must exist
  ~LibvirtDaemon();
  LibvirtDaemon(const LibvirtDaemon&) = delete;
  LibvirtDaemon& operator=(const LibvirtDaemon&) = delete;

  // "qemu:///system?socket=<dir>/run/libvirt-sock"
  const std::string& uri() const { return uri_; }
  // libvirtd's network namespace: where its bridges are ("the host" for VifNetwork).
  int netns() const { return netns_.get(); }
  // virsh -c uri args...; throws with virsh's stderr on failure.
  std::string Virsh(const std::vector<std::string>& args) const;
  // A transient NAT-less network with DHCP: bridge, 192.168.150.1/24, leases .10-.50.
  void CreateNetwork(const std::string& name, const std::string& bridge);
  std::string Log() const;

 private:
  void Stop();
  std::string dir_;
  std::string uri_;
  pid_t pid_ = -1;
  UniqueFd netns_;
  std::vector<std::string> networks_;
};

}  // namespace berth::net::testing
