#include "runtime/common/bpf.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/common/error.h"

namespace berth::bpf {
namespace {

long Bpf(int cmd, bpf_attr* attr) { return ::syscall(SYS_bpf, cmd, attr, sizeof(*attr)); }

uint64_t Ptr(const void* p) { return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p)); }

void CopyName(char (&out)[BPF_OBJ_NAME_LEN], const std::string& name) {
  std::strncpy(out, name.c_str(), BPF_OBJ_NAME_LEN - 1);
}

bpf_prog_info ProgramInfo(int prog_fd) {
  bpf_prog_info info{};
  bpf_attr attr{};
  attr.info.bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.info.info_len = sizeof(info);
  attr.info.info = Ptr(&info);
  if (Bpf(BPF_OBJ_GET_INFO_BY_FD, &attr) != 0) ThrowErrno("bpf BPF_OBJ_GET_INFO_BY_FD");
  return info;
}

}  // namespace

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn{};
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

void ProgramBuilder::EmitJump(bpf_insn jump, const std::string& label) {
  jumps_.emplace_back(program_.size(), label);
  program_.push_back(jump);
}

void ProgramBuilder::Bind(const std::string& label) { labels_[label] = program_.size(); }

void ProgramBuilder::EmitLoadMap(uint8_t dst, int map_fd) {
  program_.push_back(Insn(BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, map_fd));
  program_.push_back(Insn(0, 0, 0, 0, 0));
}

std::vector<bpf_insn> ProgramBuilder::Finish() const {
  std::vector<bpf_insn> out = program_;
  for (const auto& [at, label] : jumps_) {
    auto target = labels_.find(label);
    if (target == labels_.end()) {
      throw Error(ErrorKind::kInternal, "bpf program: jump to unbound label " + label);
    }
    out[at].off =
        static_cast<int16_t>(static_cast<long>(target->second) - static_cast<long>(at) - 1);
  }
  return out;
}

UniqueFd LoadProgram(bpf_prog_type type, const std::vector<bpf_insn>& program,
                     const std::string& name) {
  static const char kLicense[] = "GPL";
  bpf_attr attr{};
  attr.prog_type = type;
  attr.insns = Ptr(program.data());
  attr.insn_cnt = static_cast<uint32_t>(program.size());
  attr.license = Ptr(kLicense);
  CopyName(attr.prog_name, name);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return UniqueFd(fd);
  int err = errno;
  if (err != EINVAL && err != EACCES) ThrowErrnoValue(err, "bpf BPF_PROG_LOAD", name);
  // Load again with the verifier's log: the program is ours, so this is a bug to report.
  std::string log(64 * 1024, '\0');
  attr.log_buf = Ptr(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  attr.log_level = 1;
  fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd >= 0) return UniqueFd(fd);
  log.resize(strnlen(log.data(), log.size()));
  throw Error(ErrorKind::kInternal,
              "bpf BPF_PROG_LOAD " + name + ": " + ErrnoName(err) + ": verifier says: " + log, err);
}

UniqueFd CreateHashMap(uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                       const std::string& name) {
  bpf_attr attr{};
  attr.map_type = BPF_MAP_TYPE_HASH;
  attr.key_size = key_size;
  attr.value_size = value_size;
  attr.max_entries = max_entries;
  attr.map_flags = BPF_F_NO_PREALLOC;
  CopyName(attr.map_name, name);
  UniqueFd fd(static_cast<int>(Bpf(BPF_MAP_CREATE, &attr)));
  if (!fd) ThrowErrno("bpf BPF_MAP_CREATE", name);
  return fd;
}

void UpdateMapElement(int map_fd, const void* key, const void* value) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map_fd);
  attr.key = Ptr(key);
  attr.value = Ptr(value);
  attr.flags = BPF_ANY;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0) ThrowErrno("bpf BPF_MAP_UPDATE_ELEM");
}

bool DeleteMapElement(int map_fd, const void* key) {
  bpf_attr attr{};
  attr.map_fd = static_cast<uint32_t>(map_fd);
  attr.key = Ptr(key);
  if (Bpf(BPF_MAP_DELETE_ELEM, &attr) == 0) return true;
  if (errno == ENOENT) return false;
  ThrowErrno("bpf BPF_MAP_DELETE_ELEM");
}

void AttachProgram(uint32_t target, uint32_t attach_type, int prog_fd, uint32_t flags,
                   const std::string& what) {
  bpf_attr attr{};
  attr.target_fd = target;  // the union's target_ifindex for tcx
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = attach_type;
  attr.attach_flags = flags;
  if (Bpf(BPF_PROG_ATTACH, &attr) != 0) ThrowErrno("bpf BPF_PROG_ATTACH", what);
}

bool DetachProgram(uint32_t target, uint32_t attach_type, int prog_fd, const std::string& what) {
  bpf_attr attr{};
  attr.target_fd = target;
  attr.attach_bpf_fd = static_cast<uint32_t>(prog_fd);
  attr.attach_type = attach_type;
  if (Bpf(BPF_PROG_DETACH, &attr) == 0) return true;
  if (errno == ENOENT) return false;
  ThrowErrno("bpf BPF_PROG_DETACH", what);
}

std::vector<uint32_t> QueryPrograms(uint32_t target, uint32_t attach_type,
                                    const std::string& what) {
  std::vector<uint32_t> ids(64);
  bpf_attr attr{};
  attr.query.target_fd = target;
  attr.query.attach_type = attach_type;
  attr.query.prog_ids = Ptr(ids.data());
  attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
  if (Bpf(BPF_PROG_QUERY, &attr) != 0) ThrowErrno("bpf BPF_PROG_QUERY", what);
  ids.resize(std::min<size_t>(attr.query.prog_cnt, ids.size()));
  return ids;
}

UniqueFd ProgramById(uint32_t id) {
  bpf_attr attr{};
  attr.prog_id = id;
  UniqueFd fd(static_cast<int>(Bpf(BPF_PROG_GET_FD_BY_ID, &attr)));
  if (!fd && errno != ENOENT) ThrowErrno("bpf BPF_PROG_GET_FD_BY_ID");
  return fd;
}

std::string ProgramName(int prog_fd) {
  bpf_prog_info info = ProgramInfo(prog_fd);
  return std::string(info.name, strnlen(info.name, sizeof(info.name)));
}

uint32_t ProgramId(int prog_fd) { return ProgramInfo(prog_fd).id; }

int32_t TestRunPacket(int prog_fd, const std::vector<uint8_t>& packet, uint32_t ifindex) {
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  std::vector<uint8_t> out(packet.size() + 256);
  bpf_attr attr{};
  attr.test.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.test.data_in = Ptr(packet.data());
  attr.test.data_size_in = static_cast<uint32_t>(packet.size());
  attr.test.data_out = Ptr(out.data());
  attr.test.data_size_out = static_cast<uint32_t>(out.size());
  attr.test.ctx_in = Ptr(&ctx);
  attr.test.ctx_size_in = sizeof(ctx);
  attr.test.repeat = 1;
  if (Bpf(BPF_PROG_TEST_RUN, &attr) != 0) ThrowErrno("bpf BPF_PROG_TEST_RUN");
  return static_cast<int32_t>(attr.test.retval);
}

}  // namespace berth::bpf
