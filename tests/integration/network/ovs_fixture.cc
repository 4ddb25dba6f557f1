#include "tests/integration/network/ovs_fixture.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdexcept>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/network/command.h"

namespace berth::net::testing {
namespace {

constexpr const char* kSchema = "/usr/share/openvswitch/vswitch.ovsschema";

void SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  ::nanosleep(&ts, nullptr);
}

bool Exists(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

}  // namespace

bool HaveOpenVswitch() {
  return Exists("/usr/sbin/ovsdb-server") && Exists("/usr/sbin/ovs-vswitchd") &&
         Exists("/usr/bin/ovsdb-tool") && Exists("/usr/bin/ovs-vsctl") &&
         ::access(kSchema, R_OK) == 0;
}

pid_t OvsSwitch::Spawn(const std::vector<std::string>& argv) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<std::string> env_store = {"OVS_RUNDIR=" + dir_, "OVS_LOGDIR=" + dir_,
                                        "OVS_DBDIR=" + dir_, "OVS_SYSCONFDIR=" + dir_,
                                        "PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
  std::vector<char*> env, args;
  for (auto& e : env_store) env.push_back(e.data());
  env.push_back(nullptr);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string log = dir_ + "/" + argv[0].substr(argv[0].rfind('/') + 1) + ".out";
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) ThrowErrno("open", log);
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork");
  if (pid == 0) {
    if (::setns(host_netns_fd_, CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execve(args[0], args.data(), env.data());
    ::_exit(127);
  }
  ::close(out);
  return pid;
}

OvsSwitch::OvsSwitch(int host_netns_fd, const std::string& dir)
    : host_netns_fd_(host_netns_fd), dir_(dir) {
  config_.db = "unix:" + dir_ + "/db.sock";
  config_.timeout_seconds = 10;
  const std::string db = dir_ + "/conf.db";
  auto created = RunCommand({"/usr/bin/ovsdb-tool", "create", db, kSchema}, 10000);
  if (created.exit_code != 0) throw std::runtime_error("ovsdb-tool create: " + created.err);
  ovsdb_pid_ =
      Spawn({"/usr/sbin/ovsdb-server", db, "--remote=punix:" + dir_ + "/db.sock",
             "--pidfile=" + dir_ + "/ovsdb-server.pid", "--unixctl=" + dir_ + "/ovsdb-server.ctl",
             "--log-file=" + dir_ + "/ovsdb-server.log", "--no-chdir"});
  ScopeGuard stop_on_error([this] {
    Stop(vswitchd_pid_);
    Stop(ovsdb_pid_);
  });
  // Ready when it answers.
  for (int i = 0;; ++i) {
    auto init = RunCommand(
        {"/usr/bin/ovs-vsctl", "--db=" + config_.db, "--timeout=2", "--no-wait", "init"}, 5000);
    if (init.exit_code == 0) break;
    if (i == 50) {
      throw std::runtime_error("ovsdb-server did not come up: " + init.err);
    }
    SleepMs(100);
  }
  vswitchd_pid_ =
      Spawn({"/usr/sbin/ovs-vswitchd", config_.db, "--pidfile=" + dir_ + "/ovs-vswitchd.pid",
             "--unixctl=" + dir_ + "/ovs-vswitchd.ctl", "--log-file=" + dir_ + "/ovs-vswitchd.log",
             "--no-chdir"});
  stop_on_error.Dismiss();
}

OvsSwitch::~OvsSwitch() {
  Stop(vswitchd_pid_);
  Stop(ovsdb_pid_);
}

void OvsSwitch::Stop(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      pid = -1;
      return;
    }
    SleepMs(100);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

std::string OvsSwitch::Vsctl(const std::vector<std::string>& args) const {
  return OvsVsctl(config_).Run(args);
}

std::string OvsSwitch::AddBridge(const std::string& bridge) {
  // add-br waits until ovs-vswitchd has applied it; without the kernel module it still
  // succeeds but the bridge gets no OpenFlow port number.
  (void)RunCommand({"/usr/bin/ovs-vsctl", "--db=" + config_.db, "--timeout=10", "add-br", bridge},
                   15000);
  auto ofport = [&] { return Vsctl({"get", "Interface", bridge, "ofport"}); };
  if (ofport().find_first_of("123456789") == 0) return "system";
  Vsctl({"set", "Bridge", bridge, "datapath_type=netdev"});
  for (int i = 0; i < 50; ++i) {
    if (ofport().find_first_of("123456789") == 0) return "netdev";
    SleepMs(100);
  }
  throw std::runtime_error("bridge " + bridge + " did not come up:\n" + VswitchdLog());
}

std::string OvsSwitch::VswitchdLog() const {
  auto text = ReadFileIfExists(dir_ + "/ovs-vswitchd.log").value_or("");
  return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
}

}  // namespace berth::net::testing
