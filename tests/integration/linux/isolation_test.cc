// Each isolation a container promises, checked from inside a real busybox container.
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "runtime/common/file_util.h"
#include "runtime/security/security.h"
#include "tests/integration/linux/container_fixture.h"

namespace berth::testing {
namespace {

using container::ContainerInfo;

TEST_F(ContainerTest, ExitCodeIsReported) {
  ContainerInfo info = RunToExit("exit42", BaseSpec({"sh", "-c", "exit 42"}));
  EXPECT_EQ(info.status, container::Status::kStopped);
  ASSERT_TRUE(info.exit_code.has_value());
  EXPECT_EQ(*info.exit_code, 42);
  EXPECT_FALSE(info.exit_signal.has_value());
}

TEST_F(ContainerTest, OwnHostnameAndPid1) {
  ContainerInfo info = RunToExit("ident", BaseSpec({"sh", "-c", "hostname; echo pid=$$"}));
  EXPECT_EQ(info.exit_code.value_or(-1), 0);
  std::string out = Console("ident");
  EXPECT_NE(out.find("berth-test\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pid=1\n"), std::string::npos) << out;
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(std::string(host), "berth-test");
}

TEST_F(ContainerTest, NewNetworkNamespaceHasOnlyLoopbackAndItIsUp) {
  RunToExit("net", BaseSpec({"sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"}));
  // 0x9: IFF_UP | IFF_LOOPBACK.
  EXPECT_EQ(Console("net"), "lo\n0x9\n");
}

TEST_F(ContainerTest, HostMountsAreInvisible) {
  // A mount made on the host before the container starts must not be seen inside.
  std::string host_only = dir_->Sub("berth-test-hostonly");
  MakeDirs(host_only);
  ASSERT_EQ(::mount("tmpfs", host_only.c_str(), "tmpfs", 0, "size=1m"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{host_only};
  RunToExit("mnts", BaseSpec({"sh", "-c", "cut -d' ' -f5 /proc/self/mountinfo"}));
  std::string out = Console("mnts");
  EXPECT_EQ(out.find("hostonly"), std::string::npos) << out;
  // Every mount point is one the spec asked for: the root, /proc, /dev and /sys trees.
  size_t start = 0;
  int count = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    std::string point = out.substr(start, end - start);
    bool ours = point == "/" || point.rfind("/proc", 0) == 0 || point.rfind("/dev", 0) == 0 ||
                point.rfind("/sys", 0) == 0;
    EXPECT_TRUE(ours) << point;
    ++count;
    start = end + 1;
  }
  EXPECT_GT(count, 5);
}

TEST_F(ContainerTest, MaskedPathsAreUnreadable) {
  RunToExit("masked", BaseSpec({"sh", "-c",
                                "echo timer_list=$(wc -c < /proc/timer_list); "
                                "echo keys=$(cat /proc/keys | wc -l); "
                                "echo firmware=$(ls /sys/firmware | wc -l); "
                                "echo 3 > /proc/sys/vm/drop_caches || echo procsys-ro"}));
  std::string out = Console("masked");
  // This kernel has no /proc/kcore or /proc/sysrq-trigger; /proc/timer_list and
  // /proc/keys are masked files it does have.
  EXPECT_NE(out.find("timer_list=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("keys=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("firmware=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("procsys-ro"), std::string::npos) << out;
  EXPECT_NE(out.find("Read-only file system"), std::string::npos) << out;
}

TEST_F(ContainerTest, MountFailsWithEperm) {
  RunToExit("nomount", BaseSpec({"sh", "-c", "mkdir -p /mnt/x; mount -t tmpfs none /mnt/x"}));
  // busybox words EPERM from mount(2) as "permission denied".
  EXPECT_NE(Console("nomount").find("mount: permission denied"), std::string::npos)
      << Console("nomount");
}

TEST_F(ContainerTest, DefaultSeccompProfileDeniesWithEperm) {
  // CAP_SYS_ADMIN is granted so that only the seccomp filter can be what refuses mount;
  // unshare of a user namespace needs no capability at all.
  auto with_admin = [&](bool seccomp) {
    spec::Spec s = BaseSpec({"sh", "-c",
                             "mkdir -p /mnt/x; mount -t tmpfs none /mnt/x && echo mount-ok; "
                             "unshare -U true && echo unshare-ok"});
    auto& caps = *s.process.capabilities;
    for (auto* set : {&caps.bounding, &caps.effective, &caps.permitted}) {
      set->push_back("CAP_SYS_ADMIN");
    }
    if (seccomp) s.linux.seccomp = security::DefaultSeccompProfile();
    return s;
  };
  RunToExit("noseccomp", with_admin(false));
  std::string control = Console("noseccomp");
  EXPECT_NE(control.find("mount-ok"), std::string::npos) << control;
  RunToExit("seccomp", with_admin(true));
  std::string out = Console("seccomp");
  EXPECT_EQ(out.find("mount-ok"), std::string::npos) << out;
  EXPECT_EQ(out.find("unshare-ok"), std::string::npos) << out;
  EXPECT_NE(out.find("Operation not permitted"), std::string::npos) << out;
}

TEST_F(ContainerTest, UserNamespaceMapsRootToUnprivilegedUid) {
  spec::Spec s = BaseSpec({"sh", "-c", "id -u; sleep 30"});
  s.linux.namespaces.push_back({spec::NamespaceType::kUser, ""});
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 100000, 65536}};
  auto record = Create("userns", s);
  container::StartContainer(state_root_, "userns");
  std::string status;
  for (int i = 0; i < 100 && Console("userns").empty(); ++i) ::usleep(10000);
  EXPECT_EQ(Console("userns"), "0\n");
  status = ReadFile("/proc/" + std::to_string(record.init_pid) + "/status");
  EXPECT_NE(status.find("Uid:\t100000\t100000\t100000\t100000"), std::string::npos) << status;
}

// nginx's access_log /dev/stdout, and images that link their log files there, open the
// console again by path: the pipe must belong to the (mapped) user, not to host root.
TEST_F(ContainerTest, UserNamespaceRootCanReopenItsStdout) {
  spec::Spec s = BaseSpec({"sh", "-c",
                           "echo via-dev-stdout >/dev/stdout && echo via-proc >/proc/self/fd/1 && "
                           "echo via-dev-stderr >/dev/stderr; sleep 30"});
  s.linux.namespaces.push_back({spec::NamespaceType::kUser, ""});
  s.linux.uid_mappings = {{0, 100000, 65536}};
  s.linux.gid_mappings = {{0, 100000, 65536}};
  Create("userns-stdout", s);
  container::StartContainer(state_root_, "userns-stdout");
  for (int i = 0; i < 200 && Console("userns-stdout").find("stderr") == std::string::npos; ++i)
    ::usleep(10000);
  EXPECT_EQ(Console("userns-stdout"), "via-dev-stdout\nvia-proc\nvia-dev-stderr\n");
}

TEST_F(ContainerTest, SigkillOfInitIsReported) {
  Create("killed", BaseSpec({"sleep", "60"}));
  container::StartContainer(state_root_, "killed");
  container::KillContainer(state_root_, "killed", SIGKILL, false);
  ContainerInfo info = container::WaitContainer(state_root_, "killed");
  ASSERT_TRUE(info.exit_signal.has_value());
  EXPECT_EQ(*info.exit_signal, SIGKILL);
  EXPECT_FALSE(info.oom_killed);
}

TEST_F(ContainerTest, ExecRunsInsideTheContainersNamespaces) {
  auto record = Create("exec", BaseSpec({"sleep", "60"}));
  container::StartContainer(state_root_, "exec");
  int status = -1;
  std::string out = Exec("exec",
                         {"sh", "-c",
                          "hostname; for n in pid mnt net; do readlink /proc/self/ns/$n; done; "
                          "cat /proc/1/comm"},
                         &status);
  EXPECT_EQ(status, 0);
  std::string init_ns;
  for (const char* ns : {"pid", "mnt", "net"}) {
    char buf[64] = {};
    std::string link = "/proc/" + std::to_string(record.init_pid) + "/ns/" + ns;
    ASSERT_GT(::readlink(link.c_str(), buf, sizeof buf - 1), 0);
    init_ns += std::string(buf) + "\n";
  }
  EXPECT_EQ(out, "berth-test\n" + init_ns + "sleep\n");
  Exec("exec", {"sh", "-c", "exit 3"}, &status);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 3);
}

TEST_F(ContainerTest, ConsoleLogStaysUnderItsBound) {
  spec::Spec s =
      BaseSpec({"sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; echo; echo THE-END"});
  Create("console", s, 64 * 1024);
  container::StartContainer(state_root_, "console");
  container::WaitContainer(state_root_, "console");
  std::string out = Console("console");
  EXPECT_LE(out.size(), 64u * 1024);
  EXPECT_GT(out.size(), 16u * 1024);
  EXPECT_NE(out.find("THE-END\n"), std::string::npos);
}

TEST_F(ContainerTest, PauseStopsProgressAndResumeContinuesIt) {
  // The container counts into a file on a bind mount the test can read. It writes a
  // temporary file and renames it over the counter, so a reader never sees a truncated
  // file (a plain `echo > n` frozen between truncate and write reads as empty forever).
  std::string shared = dir_->Sub("shared");
  MakeDirs(shared);
  spec::Spec s = BaseSpec({"sh", "-c",
                           "i=0; while true; do i=$((i+1)); echo $i > /shared/n.tmp; "
                           "mv /shared/n.tmp /shared/n; done"});
  s.mounts.push_back({"/shared", "bind", shared, {"rbind", "rw"}});
  Create("pause", s);
  container::StartContainer(state_root_, "pause");
  auto count = [&] {
    auto text = ReadFileIfExists(shared + "/n").value_or("");
    return std::atol(text.c_str());
  };
  // Generous deadlines: on a loaded two-core CI machine the writer may wait for a CPU.
  auto wait_until_count_exceeds = [&](long floor) {
    for (int i = 0; i < 1000 && count() <= floor; ++i) ::usleep(5000);
    return count();
  };
  ASSERT_GE(wait_until_count_exceeds(9), 10);
  container::PauseContainer(state_root_, "pause");
  EXPECT_EQ(container::QueryContainer(state_root_, "pause").status, container::Status::kPaused);
  long a = count();
  ::usleep(300000);
  long b = count();
  EXPECT_EQ(a, b);
  EXPECT_GT(b, 0);
  container::ResumeContainer(state_root_, "pause");
  EXPECT_EQ(container::QueryContainer(state_root_, "pause").status, container::Status::kRunning);
  EXPECT_GT(wait_until_count_exceeds(b), b);
}

TEST_F(ContainerTest, ReadonlyRootRefusesWrites) {
  spec::Spec s =
      BaseSpec({"sh", "-c", "touch /etc/x || echo ro-root; touch /tmp/y && echo tmp-ok"});
  s.root.readonly = true;
  s.mounts.push_back({"/tmp", "tmpfs", "tmpfs", {"nosuid", "nodev"}});
  RunToExit("ro", s);
  std::string out = Console("ro");
  EXPECT_NE(out.find("ro-root"), std::string::npos) << out;
  EXPECT_NE(out.find("tmp-ok"), std::string::npos) << out;
  EXPECT_FALSE(PathExists(rootfs_ + "/etc/x"));
}

TEST_F(ContainerTest, DevHasTheStandardNodes) {
  RunToExit("dev", BaseSpec({"sh", "-c",
                             "ls /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/urandom | wc -c; "
                             "echo x > /dev/null && echo null-ok"}));
  std::string out = Console("dev");
  for (const char* n : {"null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm",
                        "fd", "stdin", "stdout", "stderr"}) {
    EXPECT_NE(out.find(std::string(n) + " "), std::string::npos) << n << " in " << out;
  }
  EXPECT_NE(out.find("null-ok"), std::string::npos) << out;
}

TEST_F(ContainerTest, TerminalGivesAPtyAndDevConsole) {
  spec::Spec s = BaseSpec({"sh", "-c",
                           "test -t 0 && test -t 1 && echo is-a-tty; "
                           "test -c /dev/console && echo has-console"});
  s.process.terminal = true;
  RunToExit("tty", s);
  std::string out = Console("tty");
  // A pty turns "\n" into "\r\n".
  EXPECT_NE(out.find("is-a-tty\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("has-console"), std::string::npos) << out;
}

TEST_F(ContainerTest, RunsAsTheSpecsUserWithItsRlimitsAndSysctls) {
  spec::Spec s = BaseSpec({"sh", "-c", "id; ulimit -n; cat /proc/sys/net/ipv4/ip_forward"});
  s.process.user.uid = 1000;
  s.process.user.gid = 1001;
  s.process.user.additional_gids = {1002};
  s.process.rlimits = {{"RLIMIT_NOFILE", 512, 256}};
  s.linux.sysctl["net.ipv4.ip_forward"] = "1";
  RunToExit("user", s);
  EXPECT_EQ(Console("user"), "uid=1000 gid=1001 groups=1002\n256\n1\n");
}

TEST_F(ContainerTest, JoinsAnotherContainersNetworkNamespaceByPath) {
  auto first = Create("netowner", BaseSpec({"sleep", "60"}));
  container::StartContainer(state_root_, "netowner");
  spec::Spec s = BaseSpec({"readlink", "/proc/self/ns/net"});
  for (auto& ns : s.linux.namespaces) {
    if (ns.type == spec::NamespaceType::kNetwork) {
      ns.path = "/proc/" + std::to_string(first.init_pid) + "/ns/net";
    }
  }
  RunToExit("netjoiner", s);
  char buf[64] = {};
  std::string link = "/proc/" + std::to_string(first.init_pid) + "/ns/net";
  ASSERT_GT(::readlink(link.c_str(), buf, sizeof buf - 1), 0);
  EXPECT_EQ(Console("netjoiner"), std::string(buf) + "\n");
}

}  // namespace
}  // namespace berth::testing
