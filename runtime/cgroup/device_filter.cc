#include "runtime/cgroup/device_filter.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/cgroup/cgroup_internal.h"
#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"

namespace berth::cgroup {

namespace {

// Registers: r1 = ctx on entry; the prologue leaves the device type in r2, the access bits
// in r3, major in r4, minor in r5. r1 is then free as scratch, r0 is the verdict.
constexpr uint8_t kR0 = BPF_REG_0, kR1 = BPF_REG_1, kType = BPF_REG_2, kAccess = BPF_REG_3,
                  kMajor = BPF_REG_4, kMinor = BPF_REG_5;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

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
bpf_insn Mov64Imm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

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

long Bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

UniqueFd OpenDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) ThrowErrno("open", dir);
  return fd;
}

std::vector<uint32_t> QueryAttached(int dir_fd, const std::string& dir) {
  std::vector<uint32_t> ids(64);
  bpf_attr attr{};
  attr.query.target_fd = static_cast<uint32_t>(dir_fd);
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = Ptr(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  if (Bpf(BPF_PROG_QUERY, &attr) != 0) ThrowErrno("bpf BPF_PROG_QUERY", dir);
  ids.resize(std::min<size_t>(attr.query.prog_cnt, ids.size()));
  return ids;
}

UniqueFd LoadProgram(const std::vector<bpf_insn>& program) {
  static const char kLicense[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = Ptr(program.data());
  attr.insn_cnt = static_cast<uint32_t>(program.size());
  attr.license = Ptr(kLicense);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return UniqueFd(fd);
  int err = errno;
  if (err != EINVAL && err != EACCES) ThrowErrnoValue(err, "bpf BPF_PROG_LOAD");
  // Load again with the verifier's log: the program is ours, so this is a bug to report.
  std::string log(64 * 1024, '\0');
  attr.log_buf = Ptr(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return UniqueFd(fd);
  log.resize(strnlen(log.data(), log.size()));
  throw Error(ErrorKind::kInternal,
              "bpf BPF_PROG_LOAD: " + ErrnoName(err) + ": verifier says: " + log, err);
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
  return QueryAttached(dir.get(), cgroup_dir);
}

void AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<bpf_insn>& program) {
  UniqueFd dir = OpenDir(cgroup_dir);
  std::vector<uint32_t> old_ids = QueryAttached(dir.get(), cgroup_dir);
  UniqueFd prog = LoadProgram(program);

  bpf_attr attr{};
  attr.target_fd = static_cast<uint32_t>(dir.get());
  attr.attach_bpf_fd = static_cast<uint32_t>(prog.get());
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) ThrowErrno("bpf BPF_PROG_ATTACH", cgroup_dir);

  // With several programs attached every one must allow, so the group is never less
  // restricted than either the old or the new rules while both are in place.
  for (uint32_t id : old_ids) {
    bpf_attr get{};
    get.prog_id = id;
    UniqueFd old(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &get)));
    if (!old) {
      if (errno == ENOENT) continue;  // detached meanwhile
      ThrowErrno("bpf BPF_PROG_GET_FD_BY_ID", cgroup_dir);
    }
    bpf_attr detach{};
    detach.target_fd = static_cast<uint32_t>(dir.get());
    detach.attach_bpf_fd = static_cast<uint32_t>(old.get());
    detach.attach_type = BPF_CGROUP_DEVICE;
    if (Bpf(BPF_PROG_DETACH, &detach) != 0 && errno != ENOENT) {
      ThrowErrno("bpf BPF_PROG_DETACH", cgroup_dir);
    }
  }
}

}  // namespace berth::cgroup
