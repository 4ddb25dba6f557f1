// The escape suite: a tenant who is root inside a live instance started by a real berthd
// (default profile: user namespace, Docker's capabilities without CAP_NET_RAW, the default
// seccomp profile, masked and read-only /proc and /sys, a cgroup namespace) attacks the
// host, and every attempt must fail with the expected error. The same probe runs on the
// host as the control: each attempt must get past the permission check there, so a failure
// inside is shown to come from the instance's confinement (tests/escape/escape_probe.c has
// the harmless host form of each). Prints a table: attempt, mechanism, inside, host.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"
#include "tests/support/busybox_rootfs.h"

namespace berth::testing {
namespace {

struct Outcome {
  std::string result;  // OK, EMPTY or an errno name
  std::string detail;
};
using Outcomes = std::map<std::string, Outcome>;

Outcomes ParseProbe(const std::string& out) {
  Outcomes o;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find('\t');
    size_t b = line.find('\t', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    o[line.substr(0, a)] = {line.substr(a + 1, b - a - 1), line.substr(b + 1)};
  }
  return o;
}

std::string ProbePath() { return BuildDir() + "/tests/berth_escape_probe"; }

// A block device the host's root may open: this host's own disk is closed to it by the
// device cgroup it runs in, loop devices are not.
std::string HostDisk() {
  for (int i = 0; i < 8; ++i) {
    std::string p = "/dev/loop" + std::to_string(i);
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return p;
  }
  return "/dev/vda";
}

// A host process for kill/ptrace/proc attempts; killed and reaped at scope exit.
struct Sleeper {
  pid_t pid = ::fork();
  Sleeper() {
    if (pid == 0) {
      for (;;) ::pause();
    }
  }
  ~Sleeper() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// Runs the probe on the host as root and returns its stdout.
std::string RunHostProbe(pid_t target, const std::string& disk) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    std::string t = std::to_string(target);
    ::execl(ProbePath().c_str(), "escape_probe", "host", t.c_str(), disk.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "host probe status " << status;
  return out;
}

struct Expectation {
  const char* attempt;
  std::set<std::string> inside;   // results that count as stopped
  const char* mechanism;          // what stops it inside
  std::set<std::string> host;     // results that show the permission check was passed
  std::set<std::string> host_na;  // host results meaning "this kernel cannot do it at all"
};

const std::vector<Expectation>& Expectations() {
  static const std::vector<Expectation> kAll = {
      {"mount_tmpfs", {"EPERM"}, "seccomp (mount); no CAP_SYS_ADMIN", {"OK"}, {}},
      {"mount_proc", {"EPERM"}, "seccomp (mount); no CAP_SYS_ADMIN", {"OK"}, {}},
      {"mount_sysfs", {"EPERM"}, "seccomp (mount); no CAP_SYS_ADMIN", {"OK"}, {}},
      {"unshare_userns_then_mount", {"EPERM"}, "seccomp (unshare CLONE_NEWUSER)", {"OK"}, {}},
      {"pivot_root", {"EPERM"}, "seccomp (pivot_root)", {"OK"}, {}},
      {"kexec_load", {"EPERM"}, "seccomp (kexec_load)", {"EINVAL"}, {"ENOSYS"}},
      {"reboot", {"EPERM"}, "seccomp (reboot); no CAP_SYS_BOOT", {"EINVAL"}, {}},
      {"init_module", {"EPERM"}, "seccomp (init_module)", {"ENOEXEC", "EINVAL"}, {"ENOSYS"}},
      {"finit_module", {"EPERM"}, "seccomp (finit_module)", {"ENOEXEC", "EINVAL"}, {"ENOSYS"}},
      {"swapon", {"EPERM"}, "seccomp (swapon)", {"EINVAL"}, {"ENOSYS"}},
      {"settimeofday", {"EPERM"}, "seccomp (settimeofday); no CAP_SYS_TIME", {"OK"}, {}},
      {"acct", {"EPERM"}, "seccomp (acct); no CAP_SYS_PACCT", {"ENOENT"}, {"ENOSYS"}},
      {"write_proc_sys_kernel",
       {"EROFS", "EACCES"},
       "read-only /proc/sys; owner outside the user namespace",
       {"OK"},
       {}},
      {"write_proc_sysrq_trigger",
       {"EROFS", "EACCES", "ENOENT"},
       "read-only path; owner outside the user namespace",
       {"OK"},
       {"ENOENT"}},
      {"write_sys_kernel",
       {"EROFS", "EACCES"},
       "read-only sysfs; owner outside the user namespace",
       {"OK"},
       {}},
      {"read_proc_kcore", {"EMPTY", "ENOENT"}, "masked path", {"OK"}, {"ENOENT"}},
      {"read_proc_keys", {"EMPTY"}, "masked path (/dev/null over it)", {"OK"}, {}},
      {"read_sys_firmware", {"EMPTY"}, "masked path (empty tmpfs over it)", {"OK"}, {}},
      {"mknod_block_device",
       {"EPERM"},
       "user namespace (CAP_MKNOD counts only in the initial one)",
       {"OK"},
       {}},
      {"open_host_disk", {"ENOENT"}, "/dev holds only the standard nodes", {"OK"}, {}},
      {"bpf", {"EPERM"}, "seccomp (bpf)", {"OK"}, {}},
      {"perf_event_open", {"EPERM"}, "seccomp (perf_event_open)", {"OK"}, {}},
      {"add_key", {"EPERM"}, "seccomp (add_key)", {"OK"}, {}},
      {"keyctl", {"EPERM"}, "seccomp (keyctl)", {"OK"}, {}},
      {"userfaultfd", {"EPERM"}, "seccomp (userfaultfd)", {"OK"}, {}},
      {"open_by_handle_at",
       {"EPERM"},
       "seccomp (open_by_handle_at); no CAP_DAC_READ_SEARCH",
       {"OK"},
       {}},
      {"mount_cgroup_v1", {"EPERM"}, "seccomp (mount)", {"OK"}, {}},
      {"cgroup_release_agent",
       {"ENOENT", "EROFS", "EACCES"},
       "cgroup namespace: only the instance's own group is mounted",
       {"OK"},
       {}},
      {"cgroup_notify_on_release",
       {"EROFS", "EACCES", "ENOENT"},
       "read-only cgroup view",
       {"OK"},
       {}},
      {"cgroup_procs_write",
       {"EROFS", "EACCES", "ENOENT"},
       "read-only cgroup view; parents not mounted",
       {"OK"},
       {}},
      {"kill_host_process", {"ESRCH"}, "pid namespace", {"OK"}, {}},
      {"ptrace_host_process", {"ESRCH"}, "pid namespace", {"OK"}, {}},
      {"proc_shows_host_process", {"ENOENT"}, "pid namespace (own /proc)", {"OK"}, {}},
  };
  return kAll;
}

std::string Join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : "|") + x;
  return out;
}

class EscapeTest : public ServerTest {
 protected:
  // The busybox image plus the probe and a setuid-root binary, imported once.
  void ImportEscapeImage() {
    std::string root = dir_->Sub("escape-rootfs");
    if (PathExists(root)) return;
    BuildBusyboxRootfs(root);
    std::filesystem::copy_file(ProbePath(), root + "/bin/escape_probe");
    ASSERT_EQ(::chmod((root + "/bin/escape_probe").c_str(), 0755), 0);
    std::filesystem::copy_file(root + "/bin/busybox", root + "/bin/suidroot");
    ASSERT_EQ(::chmod((root + "/bin/suidroot").c_str(), 04755), 0);
    std::string tar = dir_->Sub("escape.tar");
    ASSERT_EQ(std::system(("tar -C " + root + " -cf " + tar + " .").c_str()), 0);
    HttpResult imp = daemon().Request("POST", "/v1/images?name=escape&format=rootfs-tar",
                                      ReadFile(tar), true, "application/x-tar");
    ASSERT_EQ(imp.status, 201) << imp.body;
  }

  std::string CreateEscapeInstance(const std::string& extra_specs = "") {
    std::string body =
        "{\"image\": \"escape\", \"flavor\": {\"vcpus\": 1, \"memory_mb\": 64" +
        (extra_specs.empty() ? "" : ", \"extra_specs\": {" + extra_specs + "}") +
        "}, \"command\": [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 0.05; "
        "done\"]}";
    HttpResult r = daemon().Post("/v1/instances", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? Str(r.Json(), "uuid") : "";
  }

  HttpResult ExecArgs(const std::string& uuid, const std::vector<std::string>& args) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("command");
    w.StartArray();
    for (const auto& a : args) w.String(a.c_str());
    w.EndArray();
    w.EndObject();
    return daemon().Post("/v1/instances/" + uuid + "/exec", sb.GetString());
  }

  // The host uid/gid root inside maps to, from the instance's idmap.json.
  std::pair<uint32_t, uint32_t> RangeOf(const std::string& uuid) {
    auto text = ReadFileIfExists(InstanceDir(uuid) + "/idmap.json");
    EXPECT_TRUE(text.has_value()) << "no idmap.json for " << uuid;
    if (!text) return {0, 0};
    rapidjson::Document d;
    d.Parse(text->c_str());
    return {d["uid"].GetUint(), d["gid"].GetUint()};
  }
};

TEST_F(EscapeTest, EveryAttemptFailsInsideAndPassesThePermissionCheckOnTheHost) {
  ImportEscapeImage();
  std::string uuid = CreateEscapeInstance();
  ASSERT_FALSE(uuid.empty());
  Sleeper target;
  ASSERT_GT(target.pid, 0);
  const std::string disk = HostDisk();

  Outcomes host = ParseProbe(RunHostProbe(target.pid, disk));
  HttpResult r = ExecArgs(uuid, {"/bin/escape_probe", "inside", std::to_string(target.pid), disk});
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document d = r.Json();
  Outcomes inside = ParseProbe(Str(d, "stdout"));
  EXPECT_EQ(Int(d, "exit_code"), 0) << Str(d, "stderr");

  std::printf("\n%-26s %-58s %-8s %-8s %s\n", "attempt", "mechanism that stopped it", "inside",
              "host", "result");
  for (const auto& e : Expectations()) {
    SCOPED_TRACE(e.attempt);
    ASSERT_TRUE(inside.count(e.attempt)) << "inside probe did not report it";
    ASSERT_TRUE(host.count(e.attempt)) << "host probe did not report it";
    const Outcome& in = inside[e.attempt];
    const Outcome& h = host[e.attempt];
    const bool stopped = e.inside.count(in.result) > 0;
    const bool host_na = e.host_na.count(h.result) > 0;
    const bool host_passed = e.host.count(h.result) > 0;
    std::string verdict = !stopped      ? "FAIL: not stopped inside"
                          : host_passed ? "stopped (host control passed)"
                          : host_na     ? "stopped (host: not in this kernel)"
                                        : "FAIL: host control did not pass";
    std::printf("%-26s %-58s %-8s %-8s %s\n", e.attempt, e.mechanism, in.result.c_str(),
                h.result.c_str(), verdict.c_str());
    EXPECT_TRUE(stopped) << "inside: " << in.result << " (" << in.detail << "), want "
                         << Join(e.inside);
    EXPECT_TRUE(host_passed || host_na)
        << "host: " << h.result << " (" << h.detail << "), want " << Join(e.host);
    // Where the host cannot show success, inside must at least differ from it: the error
    // then comes from the instance's confinement, not from the kernel lacking the call.
    if (host_na && e.attempt != std::string("write_proc_sysrq_trigger") &&
        e.attempt != std::string("read_proc_kcore")) {
      EXPECT_NE(in.result, h.result);
    }
  }
  std::fflush(stdout);
  EXPECT_EQ(inside.size(), Expectations().size()) << "an attempt without an expectation";
  // The probe's scratch directory and mounts are gone on the host.
  for (const auto& entry : std::filesystem::directory_iterator("/tmp")) {
    EXPECT_EQ(entry.path().filename().string().rfind("escape-probe.", 0), std::string::npos)
        << entry.path();
  }
}

TEST_F(EscapeTest, RootInsideIsAnUnprivilegedUidOnTheHost) {
  ImportEscapeImage();
  std::string uuid = CreateEscapeInstance();
  ASSERT_FALSE(uuid.empty());
  auto [uid, gid] = RangeOf(uuid);
  EXPECT_GE(uid, 65536u);
  EXPECT_NE(gid, 0u);
  // Inside: root, image files owned by root, the map as the kernel has it.
  std::string out = Exec(uuid,
                         "id -u; stat -c %u:%g /bin/busybox; cat /proc/self/uid_map; "
                         "touch /owned-by-root; cp /bin/busybox /suid-copy; "
                         "chmod 4755 /suid-copy; chmod 4755 /bin/suidroot; "
                         "stat -c %u:%a /suid-copy");
  std::istringstream in(out);
  std::string id, owner, map, copy;
  std::getline(in, id);
  std::getline(in, owner);
  std::getline(in, map);
  std::getline(in, copy);
  EXPECT_EQ(id, "0") << out;
  EXPECT_EQ(owner, "0:0") << out;
  std::istringstream m(map);
  uint64_t inside_id = 1, host_id = 0, count = 0;
  m >> inside_id >> host_id >> count;
  EXPECT_EQ(inside_id, 0u) << map;
  EXPECT_EQ(host_id, uid) << map;
  EXPECT_EQ(count, 65536u) << map;
  EXPECT_EQ(copy, "0:4755") << out;

  // On the host, through the instance's root and in the upper directory on disk.
  std::string rootfs = InstanceDir(uuid) + "/rootfs";
  std::string upper;
  {
    std::ifstream mi("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mi, line)) {
      if (line.find(" " + rootfs + " ") == std::string::npos) continue;
      size_t p = line.find("upperdir=");
      if (p != std::string::npos) upper = line.substr(p + 9, line.find(',', p) - p - 9);
    }
  }
  ASSERT_FALSE(upper.empty()) << "no overlay on " << rootfs;
  for (const std::string& base : {rootfs, upper}) {
    SCOPED_TRACE(base);
    struct stat st;
    ASSERT_EQ(::lstat((base + "/owned-by-root").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, uid);
    EXPECT_EQ(st.st_gid, gid);
    for (const char* f : {"/suid-copy", "/bin/suidroot"}) {
      ASSERT_EQ(::lstat((base + f).c_str(), &st), 0) << f;
      EXPECT_TRUE(st.st_mode & S_ISUID) << f;
      EXPECT_EQ(st.st_uid, uid) << f << ": setuid to the range's root, not to the host's";
    }
  }
  // The shared image layer itself is untouched: still root's on disk.
  struct stat st;
  ASSERT_EQ(::lstat((dir_->Sub("escape-rootfs") + "/bin/suidroot").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u);
  // A copy taken out of the upper layer is setuid to an unprivileged uid at most.
  std::string copied = dir_->Sub("copied-out");
  ASSERT_EQ(std::system(("cp -a " + upper + "/suid-copy " + copied).c_str()), 0);
  ASSERT_EQ(::lstat(copied.c_str(), &st), 0);
  EXPECT_NE(st.st_uid, 0u);
  ::unlink(copied.c_str());
}

TEST_F(EscapeTest, SnapshotStoresOwnersAsSeenInsideNotAsHostIds) {
  ImportEscapeImage();
  std::string a = CreateEscapeInstance();
  ASSERT_FALSE(a.empty());
  Exec(a, "touch /root-file /user-file; chown 1234:1234 /user-file");
  HttpResult snap =
      daemon().Post("/v1/instances/" + a + "/snapshot", R"({"name": "berth-test-escape-snap"})");
  ASSERT_EQ(snap.status, 201) << snap.body;
  HttpResult created = daemon().Post(
      "/v1/instances", R"({"image": "berth-test-escape-snap", "command": ["sleep", "1000"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string b = Str(created.Json(), "uuid");
  EXPECT_NE(RangeOf(a).first, RangeOf(b).first);
  EXPECT_EQ(Exec(b, "stat -c %u:%g /root-file /user-file"), "0:0\n1234:1234\n");
}

TEST_F(EscapeTest, EachInstanceGetsItsOwnRangeKeptAcrossRestartsAndReleasedOnDelete) {
  ImportEscapeImage();
  std::string a = CreateEscapeInstance();
  std::string b = CreateEscapeInstance();
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  auto ra = RangeOf(a), rb = RangeOf(b);
  EXPECT_NE(ra.first, rb.first);
  EXPECT_GE(ra.first > rb.first ? ra.first - rb.first : rb.first - ra.first, 65536u);
  // One instance cannot signal the other even when it guesses a host pid: different uids.
  daemon().Kill9();
  daemon().Start();
  EXPECT_EQ(RangeOf(a), ra);
  std::string c = CreateEscapeInstance();
  EXPECT_NE(RangeOf(c).first, ra.first);
  EXPECT_NE(RangeOf(c).first, rb.first);
  EXPECT_EQ(Exec(a, "id -u"), "0\n");  // re-attached after the restart
  ASSERT_EQ(daemon().Delete("/v1/instances/" + a).status, 204);
  // Released with the instance's directory, but handed out again only once every other
  // slot has been used (UsernsRanges.AFreedSlotIsReusedOnlyWhenNoOtherIsFree): files a
  // deleted instance left in a shared volume keep its ids, which a new instance should
  // get as late as possible.
  std::string d = CreateEscapeInstance();
  EXPECT_NE(RangeOf(d).first, ra.first);
  EXPECT_NE(RangeOf(d).first, rb.first);
  EXPECT_NE(RangeOf(d).first, RangeOf(c).first);
}

TEST_F(EscapeTest, PrivilegedExtraSpecIsRefusedUnlessTheConfigAllowsIt) {
  HttpResult r =
      daemon().Post("/v1/instances",
                    R"({"image": "busybox", "flavor": {"extra_specs": {"berth:privileged": "true"}},
          "command": ["true"]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("allow_privileged"), std::string::npos) << r.body;
  HttpResult list = daemon().Get("/v1/instances");
  EXPECT_EQ(list.body.find("\"uuid\""), std::string::npos) << "nothing half-made: " << list.body;
}

TEST_F(EscapeTest, NetRawOnlyWhenTheFlavorAsksForIt) {
  ImportEscapeImage();
  std::string plain = CreateEscapeInstance();
  std::string raw = CreateEscapeInstance("\"berth:net_raw\": \"true\"");
  ASSERT_FALSE(plain.empty());
  ASSERT_FALSE(raw.empty());
  // CAP_NET_RAW is bit 13 of CapBnd (0x2000).
  auto bnd = [&](const std::string& uuid) {
    std::string line = Exec(uuid, "grep CapBnd /proc/self/status | cut -f2");
    return std::stoull(line, nullptr, 16);
  };
  EXPECT_EQ(bnd(plain) & (1ull << 13), 0u);
  EXPECT_NE(bnd(raw) & (1ull << 13), 0u);
  EXPECT_EQ(bnd(plain) & (1ull << 21), 0u) << "no CAP_SYS_ADMIN";
}

TEST_F(EscapeTest, SymlinksPlantedInTheInstanceDoNotMakeBerthdWriteOutside) {
  ImportEscapeImage();
  std::string uuid = CreateEscapeInstance();
  ASSERT_FALSE(uuid.empty());
  std::string canary = dir_->Sub("canary");
  WriteFileAtomic(canary, "untouched\n");
  // Every path of the image berthd reads or might write, pointed at a host file; berthd
  // reads /etc/passwd and /etc/group at each start, with RESOLVE_IN_ROOT.
  Exec(uuid,
       "for f in /etc/passwd /etc/group /etc/hostname /etc/hosts /etc/resolv.conf; do "
       "rm -f $f; ln -s " +
           canary + " $f; done; mkdir -p /var/log; ln -sf " + canary + " /var/log/console.log");
  ASSERT_EQ(Action(uuid, R"({"action": "stop", "timeout": 5})").status, 200);
  ASSERT_EQ(Action(uuid, R"({"action": "start"})").status, 200);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  EXPECT_EQ(Exec(uuid, "echo tenant output; id -u"), "tenant output\n0\n");
  ASSERT_EQ(Action(uuid, R"({"action": "reboot", "type": "HARD"})").status, 200);
  EXPECT_EQ(ReadFile(canary), "untouched\n");
  // berthd's own files for the instance stay where they were, owned by root.
  struct stat st;
  ASSERT_EQ(::lstat((InstanceDir(uuid) + "/instance.json").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
}

}  // namespace
}  // namespace berth::testing

namespace berth::testing {
namespace {

// With [security] allow_privileged = true a trusted image gets what it asks for: no user
// namespace (root is the host's root) and every capability.
TEST(PrivilegedInstanceTest, AllowedByTheConfigRunsAsTheHostsRootWithEveryCapability) {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  TempDir dir;
  ::chmod(dir.path().c_str(), 0755);
  std::string rootfs = dir.Sub("rootfs");
  BuildBusyboxRootfs(rootfs);
  std::string tar = dir.Sub("bb.tar");
  ASSERT_EQ(std::system(("tar -C " + rootfs + " -cf " + tar + " .").c_str()), 0);
  Daemon daemon(dir.path(), "[security]\nallow_privileged = true\n");
  daemon.Start();
  ASSERT_EQ(daemon
                .Request("POST", "/v1/images?name=bb&format=rootfs-tar", ReadFile(tar), true,
                         "application/x-tar")
                .status,
            201);
  HttpResult r = daemon.Post("/v1/instances", R"({"image": "bb",
      "flavor": {"extra_specs": {"berth:privileged": "true"}}, "command": ["sleep", "1000"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string uuid = Str(r.Json(), "uuid");
  EXPECT_FALSE(PathExists(daemon.state_dir() + "/instances/" + uuid + "/idmap.json"));
  HttpResult e = daemon.Post(
      "/v1/instances/" + uuid + "/exec",
      R"({"command": ["sh", "-c", "cat /proc/self/uid_map; grep CapBnd /proc/self/status"]})");
  ASSERT_EQ(e.status, 200) << e.body;
  std::string out = Str(e.Json(), "stdout");
  EXPECT_NE(out.find("0          0 4294967295"), std::string::npos) << out;
  // Every capability the host's root has here (this host withholds some even from root).
  std::string host_bnd;
  {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("CapBnd:", 0) == 0) host_bnd = line;
    }
  }
  EXPECT_NE(out.find(host_bnd), std::string::npos) << out << " vs host " << host_bnd;
  EXPECT_NE(std::stoull(host_bnd.substr(8), nullptr, 16) & (1ull << 21), 0u) << "CAP_SYS_ADMIN";
  EXPECT_EQ(daemon.DeleteAllInstances(), 0);
}

}  // namespace
}  // namespace berth::testing
