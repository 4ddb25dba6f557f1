// Compiles the spec's linux.seccomp with libseccomp into classic BPF before clone, so the
// child only has to hand a ready program to seccomp(2).
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "runtime/common/error.h"
#include "runtime/common/unique_fd.h"
#include "runtime/security/security.h"

namespace berth::security {
namespace {

using FilterCtx = std::unique_ptr<void, decltype(&seccomp_release)>;

[[noreturn]] void ThrowInvalid(const std::string& field, const std::string& what) {
  throw Error(ErrorKind::kInvalidArgument, field + ": " + what);
}

// libseccomp returns -errno; this turns one into an Error naming the call and the field.
[[noreturn]] void ThrowSeccomp(int rc, std::string_view call, const std::string& field) {
  Error error = Error::FromErrno(call, {}, -rc);
  error.WithContext(field);
  throw error;
}

uint32_t ParseAction(const std::string& name, const std::optional<uint32_t>& errno_ret,
                     const std::string& field) {
  if (errno_ret && *errno_ret > 0xffff) {
    ThrowInvalid(field, "errnoRet " + std::to_string(*errno_ret) + " is out of range");
  }
  uint16_t ret = errno_ret ? static_cast<uint16_t>(*errno_ret) : EPERM;
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(ret);
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(ret);
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  if (name == "SCMP_ACT_NOTIFY") {
    // A notify filter needs a listener fd handed to an agent (listenerPath); Berth has
    // none yet.
    throw Error(ErrorKind::kUnsupported, field + ": SCMP_ACT_NOTIFY is not supported");
  }
  ThrowInvalid(field, "unknown action \"" + name + "\"");
}

scmp_compare ParseOperator(const std::string& name, const std::string& field) {
  static const std::map<std::string, scmp_compare, std::less<>> kOps = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  auto it = kOps.find(name);
  if (it == kOps.end()) ThrowInvalid(field, "unknown operator \"" + name + "\"");
  return it->second;
}

uint32_t ParseArchitecture(const std::string& name, const std::string& field) {
  // libseccomp names architectures as the spec does without the prefix, in lower case:
  // "SCMP_ARCH_X86_64" -> "x86_64".
  constexpr std::string_view kPrefix = "SCMP_ARCH_";
  uint32_t token = 0;
  if (name.size() > kPrefix.size() && name.compare(0, kPrefix.size(), kPrefix) == 0) {
    std::string short_name = name.substr(kPrefix.size());
    for (char& c : short_name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    token = seccomp_arch_resolve_name(short_name.c_str());
  }
  if (token == 0) ThrowInvalid(field, "unknown architecture \"" + name + "\"");
  return token;
}

unsigned ParseFlag(const std::string& name, const std::string& field) {
  if (name == "SECCOMP_FILTER_FLAG_TSYNC") return SECCOMP_FILTER_FLAG_TSYNC;
  if (name == "SECCOMP_FILTER_FLAG_LOG") return SECCOMP_FILTER_FLAG_LOG;
  if (name == "SECCOMP_FILTER_FLAG_SPEC_ALLOW") return SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  if (name == "SECCOMP_FILTER_FLAG_TSYNC_ESRCH") return SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
  // Both only make sense with a notify listener (see SCMP_ACT_NOTIFY).
  if (name == "SECCOMP_FILTER_FLAG_NEW_LISTENER" ||
      name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") {
    throw Error(ErrorKind::kUnsupported, field + ": " + name + " is not supported");
  }
  ThrowInvalid(field, "unknown flag \"" + name + "\"");
}

std::vector<scmp_arg_cmp> ParseArgs(const std::vector<spec::SeccompArg>& args,
                                    const std::string& field) {
  std::vector<scmp_arg_cmp> cmps;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg_field = field + ".args[" + std::to_string(i) + "]";
    const spec::SeccompArg& arg = args[i];
    if (arg.index > 5) {
      ThrowInvalid(arg_field + ".index",
                   "argument index " + std::to_string(arg.index) + " is out of range (0..5)");
    }
    scmp_arg_cmp cmp{};
    cmp.arg = arg.index;
    cmp.op = ParseOperator(arg.op, arg_field + ".op");
    cmp.datum_a = arg.value;  // for SCMP_CMP_MASKED_EQ: the mask
    cmp.datum_b = arg.value_two;
    cmps.push_back(cmp);
  }
  return cmps;
}

// libseccomp rejects two comparisons of the same argument in one rule. runc then adds each
// comparison as a rule of its own (so they are ORed), and profiles written for Docker rely
// on that; do the same.
bool RepeatsAnArgument(const std::vector<scmp_arg_cmp>& cmps) {
  unsigned seen = 0;
  for (const scmp_arg_cmp& cmp : cmps) {
    if (seen & (1u << cmp.arg)) return true;
    seen |= 1u << cmp.arg;
  }
  return false;
}

void AddRules(scmp_filter_ctx ctx, const spec::SeccompSyscall& rule, uint32_t action,
              const std::string& field) {
  std::vector<scmp_arg_cmp> cmps = ParseArgs(rule.args, field);
  for (size_t n = 0; n < rule.names.size(); ++n) {
    const std::string& name = rule.names[n];
    int nr = seccomp_syscall_resolve_name(name.c_str());
    // A name libseccomp does not know belongs to a newer kernel; skip it as runc/crun do.
    if (nr == __NR_SCMP_ERROR) continue;
    std::string name_field = field + ".names[" + std::to_string(n) + "] (" + name + ")";
    if (RepeatsAnArgument(cmps)) {
      for (const scmp_arg_cmp& cmp : cmps) {
        int rc = seccomp_rule_add_array(ctx, action, nr, 1, &cmp);
        if (rc < 0) ThrowSeccomp(rc, "seccomp_rule_add", name_field);
      }
    } else {
      int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(cmps.size()),
                                      cmps.empty() ? nullptr : cmps.data());
      if (rc < 0) ThrowSeccomp(rc, "seccomp_rule_add", name_field);
    }
  }
}

std::vector<uint8_t> ExportBpf(scmp_filter_ctx ctx) {
  UniqueFd fd(::memfd_create("berth-seccomp", MFD_CLOEXEC));
  if (!fd) ThrowErrno("memfd_create", "berth-seccomp");
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) ThrowErrnoValue(-rc, "seccomp_export_bpf");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) ThrowErrno("fstat", "berth-seccomp");
  std::vector<uint8_t> bpf(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bpf.size()) {
    ssize_t n = ::pread(fd.get(), bpf.data() + done, bpf.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ThrowErrno("pread", "berth-seccomp");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done != bpf.size() || bpf.size() % sizeof(sock_filter) != 0 || bpf.empty()) {
    throw Error(ErrorKind::kInternal,
                "seccomp_export_bpf: short program (" + std::to_string(done) + " bytes)");
  }
  return bpf;
}

}  // namespace

SeccompProgram CompileSeccomp(const spec::Seccomp& seccomp) {
  const std::string root = "linux.seccomp";
  if (seccomp.default_action.empty()) ThrowInvalid(root + ".defaultAction", "missing");
  uint32_t default_action =
      ParseAction(seccomp.default_action, seccomp.default_errno_ret, root + ".defaultAction");
  FilterCtx ctx(seccomp_init(default_action), &seccomp_release);
  if (!ctx) throw Error(ErrorKind::kInternal, "seccomp_init failed");
  // The filter is only exported here; no_new_privs is the loader's business.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) ThrowSeccomp(rc, "seccomp_attr_set", root);
  // A binary tree of syscall numbers instead of a linear chain: every syscall the
  // container makes runs this filter, and profiles list dozens to hundreds of names.
  rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  if (rc < 0) ThrowSeccomp(rc, "seccomp_attr_set(SCMP_FLTATR_CTL_OPTIMIZE)", root);

  for (size_t i = 0; i < seccomp.architectures.size(); ++i) {
    std::string field = root + ".architectures[" + std::to_string(i) + "]";
    uint32_t arch = ParseArchitecture(seccomp.architectures[i], field);
    rc = seccomp_arch_add(ctx.get(), arch);
    if (rc == -EEXIST) continue;  // the native architecture is always there
    if (rc < 0) ThrowSeccomp(rc, "seccomp_arch_add", field);
  }

  SeccompProgram program;
  for (size_t i = 0; i < seccomp.flags.size(); ++i) {
    program.flags_ |= ParseFlag(seccomp.flags[i], root + ".flags[" + std::to_string(i) + "]");
  }

  for (size_t i = 0; i < seccomp.syscalls.size(); ++i) {
    const spec::SeccompSyscall& rule = seccomp.syscalls[i];
    std::string field = root + ".syscalls[" + std::to_string(i) + "]";
    uint32_t action = ParseAction(rule.action, rule.errno_ret, field + ".action");
    // libseccomp refuses a rule that repeats the default action; it would change nothing.
    if (action == default_action) {
      ParseArgs(rule.args, field);  // still report malformed arguments
      continue;
    }
    AddRules(ctx.get(), rule, action, field);
  }

  program.bpf_ = ExportBpf(ctx.get());
  return program;
}

int SeccompProgram::Load() const noexcept {
  if (bpf_.empty()) return 0;
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(bpf_.size() / sizeof(sock_filter));
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<uint8_t*>(bpf_.data()));
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags_, &prog);
  if (rc == 0) return 0;
  // With TSYNC a positive result is the id of a thread that could not be synchronized.
  if (rc > 0) return EBUSY;
  int err = errno;
  // Kernels before 3.17 only have the prctl; it takes no flags.
  if (err == ENOSYS && flags_ == 0) {
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0) return 0;
    err = errno;
  }
  return err;
}

}  // namespace berth::security

namespace berth::security {
namespace {

// Every field, with separators that cannot occur in names, so equal keys mean equal
// profiles.
std::string SeccompKey(const spec::Seccomp& s) {
  std::string key = s.default_action;
  auto add = [&key](std::string_view part) {
    key += '\x1f';
    key += part;
  };
  add(s.default_errno_ret ? std::to_string(*s.default_errno_ret) : "-");
  for (const auto& a : s.architectures) add(a);
  key += '\x1e';
  for (const auto& f : s.flags) add(f);
  for (const auto& rule : s.syscalls) {
    key += '\x1d';
    for (const auto& n : rule.names) add(n);
    add(rule.action);
    add(rule.errno_ret ? std::to_string(*rule.errno_ret) : "-");
    for (const auto& arg : rule.args) {
      add(std::to_string(arg.index) + ":" + std::to_string(arg.value) + ":" +
          std::to_string(arg.value_two) + ":" + arg.op);
    }
  }
  return key;
}

}  // namespace

SeccompProgram CompileSeccompCached(const spec::Seccomp& seccomp) {
  static std::mutex mu;
  static std::list<std::pair<std::string, SeccompProgram>> cache;  // most recent first
  constexpr size_t kMaxEntries = 16;
  std::string key = SeccompKey(seccomp);
  {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->first == key) {
        cache.splice(cache.begin(), cache, it);
        return cache.front().second;
      }
    }
  }
  SeccompProgram program = CompileSeccomp(seccomp);
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace_front(std::move(key), program);
  if (cache.size() > kMaxEntries) cache.pop_back();
  return program;
}

}  // namespace berth::security
