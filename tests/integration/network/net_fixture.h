// Test scaffolding for the network suite. Everything lives in namespaces the test makes:
// a "host" namespace that holds the bridge, the veths' host ends and the nftables tables,
// and "instances" (forked children in their own namespaces, as a container's init would
// be). No packet ever reaches the real host's namespace.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/network/address.h"

namespace berth::net::testing {

// A child process sleeping in a network namespace of its own; killed (SIGKILL, by pid)
// and reaped on destruction.
class InstanceProcess {
 public:
  InstanceProcess();
  ~InstanceProcess();
  InstanceProcess(const InstanceProcess&) = delete;
  InstanceProcess& operator=(const InstanceProcess&) = delete;
  pid_t pid() const { return pid_; }
  int netns() const { return netns_.get(); }

 private:
  pid_t pid_ = -1;
  UniqueFd netns_;
};

// busybox ping -c1 from inside the namespace; true when a reply came.
bool Ping(int netns_fd, const std::string& address);

// "<name>#<id>" of each eBPF program on the link's tcx ingress, in the namespace (the
// bridge fast path's, on a bt- end).
std::vector<std::string> TcxIngressPrograms(int netns_fd, const std::string& link);
// Detaches them all (as if the fast path were off for that port).
void DetachTcxIngressPrograms(int netns_fd, const std::string& link);

// A TCP server listening in a namespace on port (all addresses), answering each
// connection with an HTTP/1.0 response whose body is `body` followed by the client's
// address. Serves until destroyed.
class HttpServer {
 public:
  HttpServer(int netns_fd, uint16_t port, std::string body);
  ~HttpServer();

 private:
  UniqueFd listen_fd_;
  UniqueFd stop_pipe_[2];
  std::thread thread_;
  std::string body_;
};

// GET / from inside the namespace; the body, or nullopt when the connection failed or
// timed out (2 s).
std::optional<std::string> HttpGet(int netns_fd, const std::string& address, uint16_t port);

// A bound UDP socket in a namespace; Receive waits up to timeout_ms.
class UdpReceiver {
 public:
  UdpReceiver(int netns_fd, const std::string& address, uint16_t port);
  std::optional<std::string> Receive(int timeout_ms);

 private:
  UniqueFd fd_;
};

// Sends one datagram from `source` (bound first, so the packet carries it) in the
// namespace.
void SendUdp(int netns_fd, const std::string& source, const std::string& dest, uint16_t port,
             const std::string& payload);

// Sends one UDP datagram as a hand-made Ethernet frame out of eth0 (AF_PACKET), with the
// given MACs and addresses; with `priority_tag`, inside an 802.1Q tag of VLAN 0, which a
// receiver without VLAN devices takes as untagged.
void SendRawUdp(int netns_fd, const MacAddress& src_mac, const MacAddress& dst_mac,
                const std::string& source, const std::string& dest, uint16_t port,
                const std::string& payload, bool priority_tag);

// Names of the links in the namespace that start with `prefix` (leftover checks).
std::vector<std::string> LinksWithPrefix(int netns_fd, const std::string& prefix);

}  // namespace berth::net::testing
