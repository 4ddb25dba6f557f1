// A private Open vSwitch for a test: ovsdb-server and ovs-vswitchd started as children we
// track, with their database, sockets, pid files and logs under a directory of the test's,
// running inside the test's "host" namespace (so br-int's internal port and every port
// live there). Nothing touches a system OVS (/run/openvswitch). Stopped by pid (SIGTERM,
// then SIGKILL) on destruction.
#pragma once

#include <sys/types.h>

#include <string>

#include "runtime/network/ovsdb.h"

namespace berth::net::testing {

// Whether ovsdb-server, ovs-vswitchd, ovsdb-tool and ovs-vsctl are installed.
bool HaveOpenVswitch();

class OvsSwitch {
 public:
  // dir must exist and be short (unix socket paths are limited to 107 bytes).
  OvsSwitch(int host_netns_fd, const std::string& dir);
  ~OvsSwitch();
  OvsSwitch(const OvsSwitch&) = delete;
  OvsSwitch& operator=(const OvsSwitch&) = delete;

  const OvsdbConfig& config() const { return config_; }
  // Adds a bridge; uses the kernel datapath when the openvswitch module is there, else
  // the userspace one (datapath_type=netdev). Returns the datapath type used.
  std::string AddBridge(const std::string& bridge);
  std::string Vsctl(const std::vector<std::string>& args) const;
  // The tail of ovs-vswitchd's log, for failure messages.
  std::string VswitchdLog() const;

 private:
  pid_t Spawn(const std::vector<std::string>& argv);
  void Stop(pid_t& pid);

  int host_netns_fd_;
  std::string dir_;
  OvsdbConfig config_;
  pid_t ovsdb_pid_ = -1;
  pid_t vswitchd_pid_ = -1;
};

}  // namespace berth::net::testing
