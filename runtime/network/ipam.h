// Persistent IPv4 address management for one subnet: one file per leased address under a
// state directory, named after the address and holding its owner (an instance id).
//
// A lease is taken by creating its file with O_CREAT|O_EXCL, so the kernel decides the
// race between threads, processes and a restarted berthd: an address is never handed out
// twice, even across a crash. The file is fsynced (and its directory) before the address
// is returned. A crash between create and write leaves an empty lease: still taken, never
// reused, and freed by Reconcile (its owner "" is never live).
//
// Reserved, never leased: the network address, the broadcast address and the gateway.
// Allocation is next-fit from the last address handed out (remembered in ".last"), so a
// just-released address is not reused at once while peers may still have it in their ARP
// caches, as CNI's host-local plugin does.
#pragma once

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runtime/network/address.h"

namespace berth::net {

struct Lease {
  Ipv4Address address;
  std::string owner;  // empty for a lease torn by a crash
};

class Ipam {
 public:
  // Creates state_dir (0700) if needed. The subnet needs at least 2 usable addresses
  // besides the gateway (so /29 or larger); the gateway must be a host
  // address inside it. A state dir that holds leases of another subnet is kConflict.
  Ipam(std::string state_dir, Ipv4Subnet subnet, Ipv4Address gateway);

  // The owner's lease when it already has one (so a retried attach gets the same address),
  // else a new one. kResourceExhausted when the subnet is full.
  Ipv4Address Allocate(const std::string& owner);
  std::optional<Ipv4Address> Find(const std::string& owner) const;
  // Frees one address; false when it was not leased.
  bool Release(Ipv4Address address);
  // Frees every lease of the owner; returns how many.
  size_t ReleaseOwner(const std::string& owner);
  std::vector<Lease> List() const;

  // Crash recovery: frees every lease whose owner is not in `live` (including torn ones)
  // and returns them. Run it when no allocation is in flight (berthd's start-up).
  std::vector<Lease> Reconcile(const std::set<std::string>& live);

  const Ipv4Subnet& subnet() const { return subnet_; }
  Ipv4Address gateway() const { return gateway_; }
  const std::string& state_dir() const { return dir_; }
  bool IsReserved(Ipv4Address address) const;

 private:
  std::string LeasePath(Ipv4Address address) const;
  std::vector<Lease> ListLocked() const;
  bool TryTake(Ipv4Address address, const std::string& owner);
  void RememberLast(Ipv4Address address);
  std::optional<Ipv4Address> LoadLast() const;

  std::string dir_;
  Ipv4Subnet subnet_;
  Ipv4Address gateway_;
  mutable std::mutex mu_;
};

}  // namespace berth::net
