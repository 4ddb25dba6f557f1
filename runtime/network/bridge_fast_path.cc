#include "runtime/network/bridge_fast_path.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <set>

#include "runtime/common/bpf.h"
#include "runtime/common/error.h"
#include "runtime/network/netns.h"

namespace berth::net {
namespace {

using namespace berth::bpf;  // NOLINT: the instruction builders read as assembly

// Registers kept across the helper calls (r6-r9 are callee-saved).
constexpr uint8_t kCtx = BPF_REG_6, kData = BPF_REG_7, kDataEnd = BPF_REG_8, kEtherType = BPF_REG_9;
constexpr uint8_t kR0 = BPF_REG_0, kR1 = BPF_REG_1, kR2 = BPF_REG_2, kR3 = BPF_REG_3,
                  kFp = BPF_REG_10;

// Frame offsets: Ethernet, then IPv4 (saddr at 12) or IPv6 (saddr at 8).
constexpr int16_t kEthDst = 0, kEthSrc = 6, kEthType = 12, kEthLen = 14;
constexpr int16_t kIpv4Saddr = kEthLen + 12, kIpv4MinLen = kEthLen + 20;
constexpr int16_t kIpv6Saddr = kEthLen + 8, kIpv6MinLen = kEthLen + 40;

constexpr int16_t kSrcKey = -8, kDstKey = -16;  // 6-byte keys on the stack

constexpr uint32_t kMaxPorts = 65536;

// r2 = data + len; past the end: pass on.
void RequireBytes(ProgramBuilder& p, int32_t len) {
  p.Emit(Mov64Reg(kR2, kData));
  p.Emit(Add64Imm(kR2, len));
  p.EmitJump(JumpReg(BPF_JGT, kR2, kDataEnd, 0), "next");
}

// The MAC at frame offset `mac` copied to the stack at `key`, then r0 = its map entry.
void LookUpMac(ProgramBuilder& p, int map_fd, int16_t mac, int16_t key) {
  p.Emit(LoadMem(BPF_W, kR2, kData, mac));
  p.Emit(StoreMem(BPF_W, kFp, kR2, key));
  p.Emit(LoadMem(BPF_H, kR2, kData, static_cast<int16_t>(mac + 4)));
  p.Emit(StoreMem(BPF_H, kFp, kR2, static_cast<int16_t>(key + 4)));
  p.EmitLoadMap(kR1, map_fd);
  p.Emit(Mov64Reg(kR2, kFp));
  p.Emit(Add64Imm(kR2, key));
  p.Emit(Call(BPF_FUNC_map_lookup_elem));
  p.EmitJump(JumpImm(BPF_JEQ, kR0, 0, 0), "next");
}

// Jumps to "next" unless the packet's `size` bytes at `packet_off` equal the entry's at
// `entry_off` (r0 = the entry).
void RequireEqual(ProgramBuilder& p, uint8_t size, int16_t packet_off, int16_t entry_off) {
  p.Emit(LoadMem(size, kR2, kData, packet_off));
  p.Emit(LoadMem(size, kR3, kR0, entry_off));
  p.EmitJump(JumpReg(BPF_JNE, kR2, kR3, 0), "next");
}

std::array<uint8_t, 6> Key(const MacAddress& mac) { return mac.bytes; }

}  // namespace

std::vector<bpf_insn> BridgeFastPath::BuildProgram(int map_fd) {
  constexpr auto kIfindex = static_cast<int16_t>(offsetof(__sk_buff, ifindex));
  constexpr auto kEntryIfindex = static_cast<int16_t>(offsetof(Entry, ifindex));
  constexpr auto kEntryIpv4 = static_cast<int16_t>(offsetof(Entry, ipv4));
  constexpr auto kEntryIpv6 = static_cast<int16_t>(offsetof(Entry, ipv6));
  constexpr auto kEntryHasIpv6 = static_cast<int16_t>(offsetof(Entry, has_ipv6));
  // The ethertype as a 16-bit load of the frame's bytes gives it: network order.
  const int32_t ipv4_type = htons(ETH_P_IP), ipv6_type = htons(ETH_P_IPV6);

  ProgramBuilder p;
  p.Emit(Mov64Reg(kCtx, kR1));
  p.Emit(LoadMem(BPF_W, kData, kCtx, offsetof(__sk_buff, data)));
  p.Emit(LoadMem(BPF_W, kDataEnd, kCtx, offsetof(__sk_buff, data_end)));
  // A VLAN tag is out of the frame by now (in the packet's metadata), and the frame would
  // look untagged: the bridge's rules, which see the tag, drop it.
  p.Emit(LoadMem(BPF_W, kR2, kCtx, offsetof(__sk_buff, vlan_present)));
  p.EmitJump(JumpImm(BPF_JNE, kR2, 0, 0), "next");
  RequireBytes(p, kEthLen);
  p.Emit(LoadMem(BPF_H, kEtherType, kData, kEthType));
  p.EmitJump(JumpImm(BPF_JEQ, kEtherType, ipv4_type, 0), "ip");
  p.EmitJump(JumpImm(BPF_JNE, kEtherType, ipv6_type, 0), "next");
  p.Bind("ip");

  // The source: a port's MAC, arriving on that port, from that port's address.
  LookUpMac(p, map_fd, kEthSrc, kSrcKey);
  p.Emit(LoadMem(BPF_W, kR2, kR0, kEntryIfindex));
  p.Emit(LoadMem(BPF_W, kR3, kCtx, kIfindex));
  p.EmitJump(JumpReg(BPF_JNE, kR2, kR3, 0), "next");
  p.EmitJump(JumpImm(BPF_JEQ, kEtherType, ipv6_type, 0), "ipv6");
  RequireBytes(p, kIpv4MinLen);
  RequireEqual(p, BPF_W, kIpv4Saddr, kEntryIpv4);
  p.EmitJump(Jump(0), "destination");
  p.Bind("ipv6");
  p.Emit(LoadMem(BPF_W, kR2, kR0, kEntryHasIpv6));
  p.EmitJump(JumpImm(BPF_JEQ, kR2, 0, 0), "next");
  RequireBytes(p, kIpv6MinLen);
  RequireEqual(p, BPF_DW, kIpv6Saddr, kEntryIpv6);
  RequireEqual(p, BPF_DW, kIpv6Saddr + 8, kEntryIpv6 + 8);

  // The destination: another port's MAC; into its instance's namespace.
  p.Bind("destination");
  LookUpMac(p, map_fd, kEthDst, kDstKey);
  p.Emit(LoadMem(BPF_W, kR1, kR0, kEntryIfindex));
  p.Emit(LoadMem(BPF_W, kR2, kCtx, kIfindex));
  // Back out of its own port: the bridge never sends a frame there (no hairpin).
  p.EmitJump(JumpReg(BPF_JEQ, kR1, kR2, 0), "next");
  p.Emit(Mov64Imm(kR2, 0));
  p.Emit(Call(BPF_FUNC_redirect_peer));
  p.Emit(Exit());

  p.Bind("next");
  p.Emit(Mov64Imm(kR0, kTcxNext));
  p.Emit(Exit());
  return p.Finish();
}

BridgeFastPath::Entry BridgeFastPath::EntryFor(const FastPathPort& port) {
  Entry e{};
  e.ifindex = static_cast<uint32_t>(port.ifindex);
  auto v4 = port.address.Bytes();
  std::memcpy(e.ipv4, v4.data(), sizeof(e.ipv4));
  if (port.address6) {
    std::memcpy(e.ipv6, port.address6->data(), sizeof(e.ipv6));
    e.has_ipv6 = 1;
  }
  return e;
}

BridgeFastPath::BridgeFastPath() {
  try {
    map_ = CreateHashMap(6, sizeof(Entry), kMaxPorts, "berth_ports");
    program_ = LoadProgram(BPF_PROG_TYPE_SCHED_CLS, BuildProgram(map_.get()), kFastPathProgramName);
  } catch (const Error& e) {
    if (e.sys_errno() == EPERM || e.sys_errno() == ENOSYS) {
      throw Error(ErrorKind::kUnsupported, "no eBPF here: " + e.message(), e.sys_errno());
    }
    throw;
  }
  program_id_ = ProgramId(program_.get());
}

void BridgeFastPath::AttachTo(int ifindex) {
  try {
    AttachProgram(static_cast<uint32_t>(ifindex), kTcxIngress, program_.get(), 0,
                  "tcx ingress of ifindex " + std::to_string(ifindex));
  } catch (const Error& e) {
    // Kernels before tcx (6.6) do not know the attach type.
    if (e.sys_errno() == EINVAL) {
      throw Error(ErrorKind::kUnsupported, "no tcx (Linux 6.6) here: " + e.message(),
                  e.sys_errno());
    }
    throw;
  }
}

void BridgeFastPath::AddPort(int netns_fd, const FastPathPort& port) {
  Entry entry = EntryFor(port);
  auto key = Key(port.mac);
  UpdateMapElement(map_.get(), key.data(), &entry);
  keys_.insert(key);
  try {
    RunInNetns(netns_fd, [&] { AttachTo(port.ifindex); });
  } catch (...) {
    DeleteMapElement(map_.get(), key.data());
    keys_.erase(key);
    throw;
  }
}

void BridgeFastPath::RemovePort(const MacAddress& mac) {
  auto key = Key(mac);
  DeleteMapElement(map_.get(), key.data());
  keys_.erase(key);
}

void BridgeFastPath::Sync(int netns_fd, const std::vector<FastPathPort>& ports) {
  std::set<std::array<uint8_t, 6>> wanted;
  for (const auto& port : ports) {
    Entry entry = EntryFor(port);
    auto key = Key(port.mac);
    UpdateMapElement(map_.get(), key.data(), &entry);
    wanted.insert(key);
  }
  for (const auto& key : keys_) {
    if (!wanted.count(key)) DeleteMapElement(map_.get(), key.data());
  }
  keys_ = std::move(wanted);

  RunInNetns(netns_fd, [&] {
    for (const auto& port : ports) {
      const auto ifindex = static_cast<uint32_t>(port.ifindex);
      const std::string what = "tcx ingress of ifindex " + std::to_string(ifindex);
      std::vector<uint32_t> attached = QueryPrograms(ifindex, kTcxIngress, what);
      if (std::find(attached.begin(), attached.end(), program_id_) == attached.end()) {
        AttachTo(port.ifindex);
      }
      // A predecessor's program, after a berthd restart: ours now does its job.
      for (uint32_t id : attached) {
        if (id == program_id_) continue;
        UniqueFd old = ProgramById(id);
        if (old && ProgramName(old.get()) == kFastPathProgramName) {
          DetachProgram(ifindex, kTcxIngress, old.get(), what);
        }
      }
    }
  });
}

}  // namespace berth::net
