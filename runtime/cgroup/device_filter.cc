#include "runtime/cgroup/device_filter.h"

#include <fcntl.h>
#include <unistd.h>

#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/bpf.h"
#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::cgroup {

namespace {

// Registers: r1 = ctx on entry; the prologue leaves the device type in r2, the access bits
// in r3, major in r4, minor in r5. r1 is then free as scratch, r0 is the verdict.
constexpr uint8_t kR0 = BPF_REG_0, kR1 = BPF_REG_1, kType = BPF_REG_2, kAccess = BPF_REG_3,
                  kMajor = BPF_REG_4, kMinor = BPF_REG_5;

using bpf::Exit;
using bpf::Insn;
using bpf::Mov64Imm;

bpf_insn LoadCtxWord(uint8_t dst, int16_t offset) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, kR1, offset, 0);
}
bpf_insn Alu32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU | op | BPF_K, dst, 0, 0, imm);
}
bpf_insn Mov32Reg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}
// 32-bit compares: the ctx words are u32, and a 64-bit compare would sign-extend the imm.
bpf_insn Jmp32Imm(uint8_t op, uint8_t dst, int32_t imm) {
  return Insn(BPF_JMP32 | op | BPF_K, dst, 0, 0, imm);
}

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_MKNOD | BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE;

int32_t AccessBits(const std::string& access) {
  if (access.empty()) return kAllAccess;
  int32_t bits = 0;
  for (char c : access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

bool IsAny(const std::optional<int64_t>& n) { return !n || *n == -1; }

bool IsCatchAll(const spec::DeviceRule& rule) {
  return (rule.type.empty() || rule.type == "a") && IsAny(rule.major) && IsAny(rule.minor) &&
         AccessBits(rule.access) == kAllAccess;
}

// One rule: a run of tests that each jump past the block when they fail, then the verdict.
void AppendRule(const spec::DeviceRule& rule, std::vector<bpf_insn>& program) {
  std::vector<bpf_insn> block;
  std::vector<size_t> exits;  // jumps that leave the block
  block.reserve(8);           // at most 7; reserving also quiets a GCC 12 false warning
  exits.reserve(4);
  if (rule.type == "c" || rule.type == "b") {
    exits.push_back(block.size());
    block.push_back(
        Jmp32Imm(BPF_JNE, kType, rule.type == "c" ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK));
  }
  int32_t bits = AccessBits(rule.access);
  if (bits != kAllAccess) {
    block.push_back(Mov32Reg(kR1, kAccess));
    if (rule.allow) {
      // Every requested bit must be granted.
      block.push_back(Alu32Imm(BPF_AND, kR1, ~bits));
      exits.push_back(block.size());
      block.push_back(Jmp32Imm(BPF_JNE, kR1, 0));
    } else {
      // Any requested bit that is denied.
      block.push_back(Alu32Imm(BPF_AND, kR1, bits));
      exits.push_back(block.size());
      block.push_back(Jmp32Imm(BPF_JEQ, kR1, 0));
    }
  }
  if (!IsAny(rule.major)) {
    exits.push_back(block.size());
    block.push_back(Jmp32Imm(BPF_JNE, kMajor, static_cast<int32_t>(*rule.major)));
  }
  if (!IsAny(rule.minor)) {
    exits.push_back(block.size());
    block.push_back(Jmp32Imm(BPF_JNE, kMinor, static_cast<int32_t>(*rule.minor)));
  }
  block.push_back(Mov64Imm(kR0, rule.allow ? 1 : 0));
  block.push_back(Exit());
  for (size_t at : exits) block[at].off = static_cast<int16_t>(block.size() - at - 1);
  program.insert(program.end(), block.begin(), block.end());
}

UniqueFd OpenDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", dir);
  return fd;
}

}  // namespace

std::vector<bpf_insn> BuildDeviceFilter(const std::vector<spec::DeviceRule>& rules) {
  size_t first = 0;
  bool default_allow = false;
  for (size_t i = 0; i < rules.size(); ++i) {
    internal::DeviceRuleLine(rules[i], i);  // validates
    if (IsCatchAll(rules[i])) {
      first = i + 1;
      default_allow = rules[i].allow;
    }
  }
  std::vector<bpf_insn> program = {
      LoadCtxWord(kType, 0),          Alu32Imm(BPF_AND, kType, 0xffff), LoadCtxWord(kAccess, 0),
      Alu32Imm(BPF_RSH, kAccess, 16), LoadCtxWord(kMajor, 4),           LoadCtxWord(kMinor, 8),
  };
  // Last rule first: the first block that matches returns, so the last match wins.
  for (size_t i = rules.size(); i > first; --i) AppendRule(rules[i - 1], program);
  program.push_back(Mov64Imm(kR0, default_allow ? 1 : 0));
  program.push_back(Exit());
  return program;
}

std::vector<uint32_t> QueryDeviceFilters(const std::string& cgroup_dir) {
  UniqueFd dir = OpenDir(cgroup_dir);
  return bpf::QueryPrograms(static_cast<uint32_t>(dir.get()), BPF_CGROUP_DEVICE, cgroup_dir);
}

void AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<bpf_insn>& program) {
  UniqueFd dir = OpenDir(cgroup_dir);
  const auto target = static_cast<uint32_t>(dir.get());
  std::vector<uint32_t> old_ids = bpf::QueryPrograms(target, BPF_CGROUP_DEVICE, cgroup_dir);
  UniqueFd prog = bpf::LoadProgram(BPF_PROG_TYPE_CGROUP_DEVICE, program, "berth_devices");
  bpf::AttachProgram(target, BPF_CGROUP_DEVICE, prog.get(), BPF_F_ALLOW_MULTI, cgroup_dir);

  // With several programs attached every one must allow, so the group is never less
  // restricted than either the old or the new rules while both are in place.
  for (uint32_t id : old_ids) {
    UniqueFd old = bpf::ProgramById(id);
    if (old) bpf::DetachProgram(target, BPF_CGROUP_DEVICE, old.get(), cgroup_dir);
  }
}

}  // namespace berth::cgroup
