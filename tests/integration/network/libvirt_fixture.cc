#include "tests/integration/network/libvirt_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdexcept>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/network/command.h"
#include "runtime/network/netns.h"

namespace berth::net::testing {
namespace {

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

// One mount step for the child; all strings are made before fork.
struct MountStep {
  std::string source, target, type;
  unsigned long flags;
  bool mkdir_target;
};

}  // namespace

bool HaveLibvirtd() {
  return ::access("/usr/sbin/libvirtd", X_OK) == 0 && ::access("/usr/bin/virsh", X_OK) == 0;
}

LibvirtDaemon::LibvirtDaemon(const std::string& dir) : dir_(dir) {
  for (const char* sub : {"run", "lib", "etc", "etc/qemu"}) MakeDirs(dir_ + "/" + sub, 0755);
  uri_ = "qemu:///system?socket=" + dir_ + "/run/libvirt-sock";
  WriteFileAtomic(dir_ + "/etc/libvirtd.conf",
                  "listen_tls = 0\nlisten_tcp = 0\nunix_sock_dir = \"/run/libvirt\"\n"
                  "log_outputs = \"3:file:/run/libvirt/libvirtd.log\"\n");
  WriteFileAtomic(dir_ + "/etc/qemu.conf", "user = \"root\"\ngroup = \"root\"\n");
  WriteFileAtomic(
      dir_ + "/passwd",
      ReadFile("/etc/passwd") + "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/bin/false\n");
  WriteFileAtomic(dir_ + "/group",
                  ReadFile("/etc/group") + "libvirt-qemu:x:64055:\nkvm:x:64056:\n");

  std::vector<MountStep> steps = {
      {"", "/", "", MS_REC | MS_PRIVATE, false},
      {"sysfs", "/sys", "sysfs", 0, false},  // this namespace's devices, not the host's
      {"tmpfs", "/run", "tmpfs", 0, false},
      {"tmpfs", "/var/lib", "tmpfs", 0, false},
      {"tmpfs", "/var/cache", "tmpfs", 0, false},
      {"tmpfs", "/var/log", "tmpfs", 0, false},
      {dir_ + "/run", "/run/libvirt", "", MS_BIND, true},
      {dir_ + "/lib", "/var/lib/libvirt", "", MS_BIND, true},
      {dir_ + "/etc", "/etc/libvirt", "", MS_BIND, false},
      {dir_ + "/passwd", "/etc/passwd", "", MS_BIND, false},
      {dir_ + "/group", "/etc/group", "", MS_BIND, false},
  };
  std::string conf = "/etc/libvirt/libvirtd.conf";
  const char* argv[] = {"/usr/sbin/libvirtd", "-f", conf.c_str(), nullptr};
  std::string out_path = dir_ + "/libvirtd.out";
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) ThrowErrno("open", out_path);
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) ThrowErrno("pipe2");
  pid_ = ::fork();
  if (pid_ < 0) ThrowErrno("fork");
  if (pid_ == 0) {
    // Only system calls from here to exec.
    ::close(ready[0]);
    int step = 0;
    if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0) ::_exit(100);
    for (const auto& s : steps) {
      ++step;
      if (s.mkdir_target) ::mkdir(s.target.c_str(), 0755);
      if (::mount(s.source.empty() ? nullptr : s.source.c_str(), s.target.c_str(),
                  s.type.empty() ? nullptr : s.type.c_str(), s.flags, nullptr) != 0) {
        ::_exit(100 + step);
      }
    }
    char ok = 'y';
    (void)!::write(ready[1], &ok, 1);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  ::close(out);
  ::close(ready[1]);
  ScopeGuard stop_on_error([this] { Stop(); });
  char ok = 0;
  ssize_t n = ::read(ready[0], &ok, 1);
  ::close(ready[0]);
  if (n != 1) {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    throw std::runtime_error("libvirtd's namespace setup failed, exit " +
                             std::to_string(WEXITSTATUS(status)));
  }
  netns_ = OpenNetnsOfPid(pid_);
  for (int i = 0;; ++i) {
    auto r = RunCommand({"/usr/bin/virsh", "-c", uri_, "net-list", "--all"}, 10000);
    if (r.exit_code == 0) break;
    bool exited = ::waitpid(pid_, nullptr, WNOHANG) == pid_;
    if (exited || i == 100) {
      if (exited) pid_ = -1;
      throw std::runtime_error("libvirtd did not come up: " + r.err + Log());
    }
    SleepMs(100);
  }
  stop_on_error.Dismiss();
}

LibvirtDaemon::~LibvirtDaemon() {
  std::vector<pid_t> dnsmasqs;
  for (const auto& name : networks_) {
    auto pid = ReadFileIfExists(dir_ + "/run/network/" + name + ".pid");
    if (pid && !pid->empty()) dnsmasqs.push_back(static_cast<pid_t>(std::stol(*pid)));
    try {
      Virsh({"net-destroy", name});  // also stops the network's dnsmasq
    } catch (...) {
    }
  }
  Stop();
  // dnsmasq daemonises away from libvirtd: should net-destroy have failed, end it by the
  // pid libvirt recorded (after checking that pid is still a dnsmasq).
  for (pid_t pid : dnsmasqs) {
    auto comm = ReadFileIfExists("/proc/" + std::to_string(pid) + "/comm");
    if (comm && comm->rfind("dnsmasq", 0) == 0) ::kill(pid, SIGKILL);
  }
}

void LibvirtDaemon::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    SleepMs(100);
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string LibvirtDaemon::Virsh(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"/usr/bin/virsh", "-c", uri_};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, 20000);
  if (r.exit_code != 0) throw std::runtime_error(FormatArgv(argv) + ": " + r.err);
  return r.out;
}

void LibvirtDaemon::CreateNetwork(const std::string& name, const std::string& bridge) {
  std::string xml_path = dir_ + "/" + name + ".xml";
  WriteFileAtomic(xml_path, "<network><name>" + name + "</name><bridge name='" + bridge +
                                "' stp='off'/><ip address='192.168.150.1' netmask='255.255.255.0'>"
                                "<dhcp><range start='192.168.150.10' end='192.168.150.50'/></dhcp>"
                                "</ip></network>\n");
  Virsh({"net-create", xml_path});
  networks_.push_back(name);
}

std::string LibvirtDaemon::Log() const {
  auto text = ReadFileIfExists(dir_ + "/run/libvirtd.log").value_or("") +
              ReadFileIfExists(dir_ + "/libvirtd.out").value_or("");
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

}  // namespace berth::net::testing
