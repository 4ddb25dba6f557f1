// eBPF through bpf(2) directly: instruction builders for the few small programs Berth
// writes by hand (a cgroup2 device filter, the bridge's fast path), and thin wrappers for
// the commands they need. Hand-assembled, as systemd's and runc's device filters are: the
// programs are tens of instructions, and a BPF compiler and loader (clang, libbpf) would
// be a build dependency bigger than the code they replace.
#pragma once

#include <linux/bpf.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/common/unique_fd.h"

namespace berth::bpf {

// Attach types newer than Debian 12's kernel headers (6.1); values are kernel ABI.
inline constexpr uint32_t kTcxIngress = 46;  // BPF_TCX_INGRESS, Linux 6.6
// tcx verdicts: TCX_NEXT lets the next program (or the stack) have the packet.
inline constexpr int32_t kTcxNext = -1;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm);
inline bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
inline bpf_insn Mov64Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
inline bpf_insn Add64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm);
}
// size: BPF_B, BPF_H, BPF_W or BPF_DW.
inline bpf_insn LoadMem(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | size, dst, src, off, 0);
}
inline bpf_insn StoreMem(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_STX | BPF_MEM | size, dst, src, off, 0);
}
// Jumps: `off` counts instructions after this one.
inline bpf_insn JumpImm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) {
  return Insn(BPF_JMP | op | BPF_K, dst, 0, off, imm);
}
inline bpf_insn JumpReg(uint8_t op, uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_JMP | op | BPF_X, dst, src, off, 0);
}
inline bpf_insn Jump32Imm(uint8_t op, uint8_t dst, int32_t imm, int16_t off) {
  return Insn(BPF_JMP32 | op | BPF_K, dst, 0, off, imm);
}
inline bpf_insn Jump(int16_t off) { return Insn(BPF_JMP | BPF_JA, 0, 0, off, 0); }
inline bpf_insn Call(int32_t helper) { return Insn(BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
inline bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

// A program with named jump targets, so branches need no hand-counted offsets.
class ProgramBuilder {
 public:
  void Emit(bpf_insn insn) { program_.push_back(insn); }
  // A jump (JumpImm/JumpReg/Jump32Imm/Jump with any offset) to `label`, bound before or
  // after.
  void EmitJump(bpf_insn jump, const std::string& label);
  void Bind(const std::string& label);
  // dst = the map behind map_fd: a two-instruction load the verifier turns into the map's
  // address.
  void EmitLoadMap(uint8_t dst, int map_fd);
  // kInternal for a jump to a label never bound.
  std::vector<bpf_insn> Finish() const;

 private:
  std::vector<bpf_insn> program_;
  std::vector<std::pair<size_t, std::string>> jumps_;
  std::map<std::string, size_t> labels_;
};

// Loads a program; a verifier refusal is kInternal with the verifier's log (the programs
// are ours, so that is a bug). `name` (at most 15 bytes) is what bpftool shows.
UniqueFd LoadProgram(bpf_prog_type type, const std::vector<bpf_insn>& program,
                     const std::string& name);

// BPF_MAP_TYPE_HASH; entries allocated as they are added (BPF_F_NO_PREALLOC).
UniqueFd CreateHashMap(uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                       const std::string& name);
void UpdateMapElement(int map_fd, const void* key, const void* value);
// Whether there was one to delete.
bool DeleteMapElement(int map_fd, const void* key);

// target: a cgroup directory fd (target_fd) or an ifindex (tcx), resolved in the calling
// thread's network namespace. `what` names the target in errors.
void AttachProgram(uint32_t target, uint32_t attach_type, int prog_fd, uint32_t flags,
                   const std::string& what);
// False when the program was not attached there (any more).
bool DetachProgram(uint32_t target, uint32_t attach_type, int prog_fd, const std::string& what);
std::vector<uint32_t> QueryPrograms(uint32_t target, uint32_t attach_type, const std::string& what);
// An invalid fd when no program has that id (any more).
UniqueFd ProgramById(uint32_t id);
// The name given at load time; the id of a loaded program.
std::string ProgramName(int prog_fd);
uint32_t ProgramId(int prog_fd);

// BPF_PROG_TEST_RUN of a packet program: its return value for `packet`, with `ifindex` as
// the device the packet arrives on (for tests).
int32_t TestRunPacket(int prog_fd, const std::vector<uint8_t>& packet, uint32_t ifindex);

}  // namespace berth::bpf
