// The bridge's fast path: frames from one instance to another on the same bridge go from
// the sender's veth straight into the receiver's namespace, skipping the bridge and the
// receiver's veth hop, when they pass the same source checks as the bridge's rules.
//
// One eBPF program (tc, on the tcx ingress hook of every bt- end in the bridge namespace)
// and one hash map of the bridge's ports, keyed by the instance's MAC. For a frame that an
// instance sends, the program:
//   1. passes on (TCX_NEXT: the bridge has it, with all its rules) anything that is not
//      untagged IPv4 or IPv6 (a tag is in the packet's metadata by then), or is too short;
//   2. looks up the source MAC: it must be a port's, and that port must be the one the
//      frame arrives on; the IPv4 source must be that port's address, an IPv6 source its
//      IPv6 address (link-local and :: sources pass on: neighbour discovery and DAD take
//      the bridge);
//   3. looks up the destination MAC: another port's, and then bpf_redirect_peer() to that
//      port's veth peer, the instance's eth0, in its own namespace.
// Everything else (ARP, broadcast, multicast, the gateway's MAC, spoofed sources, a
// destination that is not an instance here) goes the bridge's way, whose nftables rules
// (firewall.h) drop spoofed frames: the program only takes a shortcut for frames the
// bridge would deliver, so it needs no rules of its own and cannot weaken them.
//
// Why: a bridge costs a frame the bridge's forwarding and a second veth hop (~350-450 ns
// here); the veth pair the throughput target compares against has neither.
// Needs Linux 6.6 (tcx) and CAP_BPF/CAP_NET_ADMIN; without them the bridge works alone.
//
// Attachments made with BPF_PROG_ATTACH outlive berthd, so the fast path keeps working
// while it is down; a new berthd loads a new program and map and, in Sync, attaches them
// to every port and detaches the ones of its predecessor (by name). A veth takes its
// program with it when deleted.
#pragma once

#include <linux/bpf.h>

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"
#include "runtime/network/address.h"

namespace berth::net {

struct FastPathPort {
  int ifindex = 0;  // the bt- end, in the bridge namespace
  MacAddress mac;   // the instance's
  Ipv4Address address;
  std::optional<std::array<uint8_t, 16>> address6;
};

// The program's name, by which a berthd recognises its predecessor's.
inline constexpr const char* kFastPathProgramName = "berth_fastpath";

class BridgeFastPath {
 public:
  // Loads the map and the program. kUnsupported when this kernel or process cannot (no
  // bpf(2), no permission); tcx itself is only known at the first attach.
  BridgeFastPath();

  // The port's map entry, then the program on its ingress. netns_fd: the bridge namespace
  // (ifindexes are resolved there). kUnsupported when the kernel has no tcx.
  void AddPort(int netns_fd, const FastPathPort& port);
  // The port's map entry; its program goes with its veth.
  void RemovePort(const MacAddress& mac);
  // The map holds exactly `ports`, each has this program attached, and no port keeps a
  // predecessor's program.
  void Sync(int netns_fd, const std::vector<FastPathPort>& ports);

  int program_fd() const { return program_.get(); }
  uint32_t program_id() const { return program_id_; }

  // The instructions, for a map fd; exposed for tests.
  static std::vector<bpf_insn> BuildProgram(int map_fd);
  // The map's value for a port (its key is the MAC's 6 bytes).
  struct Entry {
    uint32_t ifindex;
    uint8_t ipv4[4];  // network order, as in the packet
    uint8_t ipv6[16];
    uint32_t has_ipv6;
    uint32_t reserved;
  };
  static Entry EntryFor(const FastPathPort& port);

 private:
  // The program on the ifindex's tcx ingress, in the calling thread's namespace.
  void AttachTo(int ifindex);

  UniqueFd map_;
  UniqueFd program_;
  uint32_t program_id_ = 0;
  std::set<std::array<uint8_t, 6>> keys_;  // the map's keys, to prune it in Sync
};

}  // namespace berth::net
