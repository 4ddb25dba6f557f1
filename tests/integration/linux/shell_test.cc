// Shells: a container's processes made before the container is asked for, then claimed by
// a create. The claimed container must be the same as a cold one: its root (mounted after
// the shell was made), its namespaces and id maps, its cgroup, its console. An unclaimed
// or refused shell leaves no process behind.
#include "runtime/linux/shell.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/linux/shell_zygote.h"
#include "tests/integration/linux/container_fixture.h"

namespace berth::testing {
namespace {

bool Gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

// M is our child: reap it (for at most 3 s: a shell that does not end fails the test, not
// hangs it), then wait for its init, which ends with it, to be gone.
void ReapShell(pid_t m, pid_t init) {
  for (int i = 0; i < 600 && ::waitpid(m, nullptr, WNOHANG) == 0; ++i) ::usleep(5000);
  for (int i = 0; i < 400 && !Gone(init); ++i) ::usleep(5000);
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif

// The 64-bit id of the mount `path` is on (Linux 6.8): never reused and growing, so a mount
// made before another has the smaller id. 0 when the kernel does not tell.
uint64_t UniqueMountId(const std::string& path) {
  struct statx st;
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_MNT_ID_UNIQUE, &st) != 0 ||
      !(st.stx_mask & STATX_MNT_ID_UNIQUE)) {
    return 0;
  }
  return st.stx_mnt_id;
}

// What a container sees of its /dev, /sys and /proc: each mount (point, options, whether
// shared or slave, type, source, super options, root), sorted, then each node of /dev.
const char* const kMountView =
    "awk '{ i = 7; opt = \"\"; while ($i != \"-\") { opt = opt \" \" $i; i++ }"
    " gsub(/[0-9]+/, \"N\", opt);"
    " print $5, $6, \"[\" opt \" ]\", $(i+1), $(i+2), $(i+3), $4 }' /proc/self/mountinfo"
    " | grep -E '^/(dev|sys|proc)' | sort;"
    " stat -c '%n %F %a %u %g %t %T %N' /dev/* /dev/pts/* /dev/shm /dev/mqueue;"
    " echo ping_group_range $(cat /proc/sys/net/ipv4/ping_group_range);"
    // A shell's init joins its cgroups late (while its root is built): its cgroup namespace
    // must still be rooted at its own group, as a cold create's is.
    " echo cgroup; cat /proc/self/cgroup";

// Counts of the mounts a shell premakes (by type) in a mountinfo.
std::string PremadeTypesIn(const std::string& mountinfo) {
  std::map<std::string, int> counts;
  std::istringstream in(mountinfo);
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::string type = line.substr(dash + 3, line.find(' ', dash + 3) - dash - 3);
    if (type == "sysfs" || type == "devpts" || type == "mqueue") ++counts[type];
  }
  std::string out;
  for (const auto& [type, n] : counts) out += type + "=" + std::to_string(n) + " ";
  return out;
}

// A root mounted after a shell was made (as berthd mounts an instance's), shared as "/" is
// under systemd.
class LateRoot {
 public:
  LateRoot(const std::string& rootfs, const std::string& path) : path_(path) {
    if (::mkdir(path.c_str(), 0755) != 0 ||
        ::mount(rootfs.c_str(), path.c_str(), "", MS_BIND | MS_REC, nullptr) != 0) {
      ThrowErrno("mount late root", path);
    }
    mounted_ = true;
    if (::mount("", path.c_str(), "", MS_SHARED, nullptr) != 0) ThrowErrno("make shared", path);
  }
  ~LateRoot() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// A shell is handed out once its monitor is exec'd; its init goes on making its trees
// until it waits for its claim (recvmsg). The mount-id checks need the trees made before
// the root, as berthd's next spawn finds them.
void WaitForTheClaimWait(pid_t init) {
  const std::string path = "/proc/" + std::to_string(init) + "/syscall";
  for (int i = 0; i < 1000; ++i) {
    if (ReadFile(path).rfind(std::to_string(SYS_recvmsg) + " ", 0) == 0) return;
    ::usleep(5000);
  }
  ADD_FAILURE() << "the shell's init " << init << " never waited for its claim";
}

class ShellTest : public ContainerTest {
 protected:
  struct Ids {
    uint64_t root = 0, dev = 0, sys = 0, proc = 0;
  };
  // The unique mount ids of a created container's root, /dev and /sys (seen through its
  // init's root): a tree made before the root has a smaller id than the root's.
  static Ids MountIds(pid_t init) {
    const std::string at = "/proc/" + std::to_string(init) + "/root";
    return {UniqueMountId(at + "/"), UniqueMountId(at + "/dev"), UniqueMountId(at + "/sys"),
            UniqueMountId(at + "/proc")};
  }

  // The container's view (kMountView's output) with its cgroup path replaced, without the
  // init's BERTH_TIMING lines (indented) when the tests run with it.
  std::string View(const std::string& id) const {
    std::string out;
    std::istringstream console(Console(id));
    for (std::string line; std::getline(console, line);) {
      if (line.rfind("  ", 0) != 0) out += line + "\n";
    }
    const std::string cgroup = "berth-test-" + std::to_string(::getpid()) + "-" + id;
    for (size_t at = out.find(cgroup); at != std::string::npos; at = out.find(cgroup, at)) {
      out.replace(at, cgroup.size(), "CGROUP");
    }
    return out;
  }

  // Claims a shell made for `s` with a root mounted after it; returns the view and sets
  // *ids to the mount ids seen while it was created.
  std::string RunClaimed(const std::string& id, spec::Spec s, Ids* ids) {
    auto shell = container::MakeShell(*container::ShellShapeOf(s));
    const pid_t m = shell->monitor_pid(), init = shell->init_pid();
    WaitForTheClaimWait(init);
    LateRoot root(rootfs_, dir_->path() + "/root-" + id);
    s.root.path = root.path();
    ScopeGuard reap([&] {
      try {
        container::DeleteContainer(state_root_, id, true);
      } catch (const Error&) {
      }
      ReapShell(m, init);
    });
    container::CreateContainer(Options(id, s), std::move(shell));
    *ids = MountIds(init);
    container::StartContainer(state_root_, id);
    EXPECT_EQ(container::WaitContainer(state_root_, id).exit_code.value_or(-1), 0) << Console(id);
    return View(id);
  }

  std::string RunCold(const std::string& id, const spec::Spec& s, Ids* ids) {
    auto record = Create(id, s);
    *ids = MountIds(record.init_pid);
    container::StartContainer(state_root_, id);
    EXPECT_EQ(container::WaitContainer(state_root_, id).exit_code.value_or(-1), 0) << Console(id);
    return View(id);
  }

  // M is our child: we reap it, as the spawner does its monitors.
  container::CreateOptions Options(const std::string& id, spec::Spec spec) const {
    container::CreateOptions o = ContainerTest::Options(id, std::move(spec));
    o.caller_reaps_monitor = true;
    return o;
  }
};

TEST_F(ShellTest, AClaimedShellRunsTheContainerOnARootMountedAfterIt) {
  spec::Spec s = UsernsSpec(
      {"sh", "-c",
       "hostname; cat /proc/self/uid_map; echo pid $$; ls /tmp; echo comm $(cat /proc/1/comm)"});
  auto shape = container::ShellShapeOf(s);
  ASSERT_TRUE(shape.has_value());
  auto shell = container::MakeShell(*shape);
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  EXPECT_TRUE(shell->alive());

  // The root exists only after the shell's mount namespace was copied.
  const std::string root = dir_->path() + "/late-root";
  ASSERT_EQ(::mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(::mount(rootfs_.c_str(), root.c_str(), "", MS_BIND | MS_REC, nullptr), 0);
  ScopeGuard unmount([&] { ::umount2(root.c_str(), MNT_DETACH); });
  // Shared, as "/" is under systemd: the container's mounts must not show up here.
  ASSERT_EQ(::mount("", root.c_str(), "", MS_SHARED, nullptr), 0);
  ASSERT_EQ(::mount("tmpfs", (root + "/tmp").c_str(), "tmpfs", 0, "size=1m"), 0);
  WriteFileAtomic(root + "/tmp/shell-marker", "x");
  s.root.path = root;
  ScopeGuard reap([&] {
    try {
      container::DeleteContainer(state_root_, "claimed", true);
    } catch (const Error&) {
    }
    ReapShell(m, init);
  });

  auto record = container::CreateContainer(Options("claimed", s), std::move(shell));
  EXPECT_EQ(record.init_pid, init);
  EXPECT_EQ(record.monitor_pid, m);
  // It shows the command line of a cold create's monitor (ps, pgrep, leak checks).
  std::string cmdline = ReadFile("/proc/" + std::to_string(m) + "/cmdline");
  for (char& c : cmdline) c = c == '\0' ? ' ' : c;
  EXPECT_NE(cmdline.find("berth-monitor --init-pid " + std::to_string(init)), std::string::npos)
      << cmdline;
  EXPECT_NE(cmdline.find("--state-dir " + StateDir("claimed")), std::string::npos) << cmdline;
  EXPECT_EQ(cmdline.find("--shell-claim-fd"), std::string::npos) << cmdline;
  EXPECT_EQ(container::QueryContainer(state_root_, "claimed").status, container::Status::kCreated);
  const std::string mountinfo = ReadFile("/proc/self/mountinfo");
  EXPECT_EQ(mountinfo.find(" " + root + "/proc "), std::string::npos) << mountinfo;
  EXPECT_EQ(mountinfo.find(" " + root + "/dev "), std::string::npos) << mountinfo;
  // In its cgroup before it runs, as a cold create leaves it.
  std::string cgroups = ReadFile("/proc/" + std::to_string(init) + "/cgroup");
  EXPECT_NE(cgroups.find("berth-test-" + std::to_string(::getpid()) + "-claimed"),
            std::string::npos)
      << cgroups;
  container::StartContainer(state_root_, "claimed");
  auto info = container::WaitContainer(state_root_, "claimed");
  EXPECT_EQ(info.exit_code.value_or(-1), 0);
  const std::string out = Console("claimed");
  EXPECT_NE(out.find("berth-test\n"), std::string::npos) << out;
  EXPECT_NE(out.find("100000"), std::string::npos) << out;
  EXPECT_NE(out.find("pid 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("shell-marker"), std::string::npos) << out;
  // Its proc (made while the shell waited) is its own pid namespace's.
  EXPECT_NE(out.find("comm sh\n"), std::string::npos) << out;
}

// /dev, /sys and /proc were made while the shell waited (their mounts are older than the
// root), and the container cannot tell: the same mounts, options, propagation, masks,
// read-only paths and device nodes as a cold create of the same spec.
TEST_F(ShellTest, AClaimedShellsPremadeDevAndSysAreThoseOfAColdCreate) {
  spec::Spec s = UsernsSpec({"sh", "-c", kMountView});
  // As berthd's instances: written before /proc/sys is made read-only, and a cgroup
  // namespace (a shell's init makes it once it has joined its cgroups, late).
  s.linux.sysctl["net.ipv4.ping_group_range"] = "0 1000";
  s.linux.namespaces.push_back({spec::NamespaceType::kCgroup, ""});
  Ids cold_ids, ids;
  const std::string cold = RunCold("same", s, &cold_ids);
  const std::string claimed = RunClaimed("same-shell", s, &ids);
  ASSERT_NE(cold_ids.root, 0u) << "no unique mount ids (Linux 6.8)";
  EXPECT_GT(cold_ids.dev, cold_ids.root);
  EXPECT_GT(cold_ids.sys, cold_ids.root);
  EXPECT_GT(cold_ids.proc, cold_ids.root);
  EXPECT_LT(ids.dev, ids.root);
  EXPECT_LT(ids.sys, ids.root);
  EXPECT_LT(ids.proc, ids.root);
  EXPECT_EQ(claimed, cold);
  for (const char* expected :
       {"/dev rw,nosuid [ ] tmpfs tmpfs rw,size=65536k,mode=755,",
        "/dev/pts rw,nosuid,noexec,relatime [ ] devpts devpts",
        "/dev/null rw,relatime [ ] devtmpfs devtmpfs ", "/dev/mqueue ", "/dev/shm ",
        "/sys ro,nosuid,nodev,noexec,relatime [ ] sysfs sysfs ro", "/sys/firmware ro,",
        "/sys/fs/cgroup/memory ro,", "/proc/keys rw,relatime [ ] devtmpfs devtmpfs ",
        "/proc/sys ro,", "/dev/null character special file 666 ", "/dev/fd symbolic link",
        "/dev/ptmx symbolic link", "ping_group_range 0 1000", ":/\n"}) {
    EXPECT_NE(claimed.find(expected), std::string::npos) << expected << " in\n" << claimed;
  }
}

// A spec whose /dev (or /sys) is not the default spec's gets that path made the cold way,
// as it asks; the other path still comes premade.
TEST_F(ShellTest, ASpecWithAnotherDevOrSysGoesColdForThatPath) {
  spec::Spec other_dev = UsernsSpec({"sh", "-c", kMountView});
  for (auto& m : other_dev.mounts) {
    if (m.destination == "/dev") m.options = {"nosuid", "strictatime", "mode=755", "size=1024k"};
  }
  Ids ids;
  std::string view = RunClaimed("other-dev", other_dev, &ids);
  ASSERT_NE(ids.root, 0u) << "no unique mount ids (Linux 6.8)";
  EXPECT_GT(ids.dev, ids.root);
  EXPECT_LT(ids.sys, ids.root);
  EXPECT_GT(ids.proc, ids.root);  // its masked files would be another /dev/null
  EXPECT_NE(view.find("/dev rw,nosuid [ ] tmpfs tmpfs rw,size=1024k,mode=755"), std::string::npos)
      << view;
  EXPECT_NE(view.find("/dev/null character special file 666 "), std::string::npos) << view;

  spec::Spec other_sys = UsernsSpec({"sh", "-c", kMountView});
  for (auto& m : other_sys.mounts) {
    if (m.destination == "/sys") m.options = {"nosuid", "noexec", "nodev"};
  }
  view = RunClaimed("other-sys", other_sys, &ids);
  EXPECT_LT(ids.dev, ids.root);
  EXPECT_GT(ids.sys, ids.root);
  EXPECT_NE(view.find("/sys rw,nosuid,nodev,noexec,relatime [ ] sysfs sysfs rw"), std::string::npos)
      << view;
  EXPECT_NE(view.find("/sys/firmware ro,"), std::string::npos) << view;

  // A mask below /sys that the default spec does not have: /sys comes premade, the mask is
  // applied over it as in a cold create.
  spec::Spec more_masks = UsernsSpec({"sh", "-c", kMountView});
  more_masks.linux.masked_paths.push_back("/sys/kernel");
  view = RunClaimed("more-masks", more_masks, &ids);
  EXPECT_LT(ids.sys, ids.root);
  EXPECT_NE(view.find("/sys/kernel ro,"), std::string::npos) << view;
  EXPECT_NE(view.find("/sys/firmware ro,"), std::string::npos) << view;
}

// The premade trees are detached: nothing of them shows in the shell's mount namespace
// while it waits, nor anywhere once it has ended.
TEST_F(ShellTest, AnUnclaimedShellLeavesNoMounts) {
  const std::string before = PremadeTypesIn(ReadFile("/proc/self/mountinfo"));
  auto shell = container::MakeShell(*container::ShellShapeOf(UsernsSpec({"true"})));
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  WaitForTheClaimWait(init);  // its trees are made
  const std::string in_shell =
      PremadeTypesIn(ReadFile("/proc/" + std::to_string(init) + "/mountinfo"));
  EXPECT_EQ(in_shell, before);
  shell.reset();
  ReapShell(m, init);
  EXPECT_TRUE(Gone(init));
  EXPECT_EQ(PremadeTypesIn(ReadFile("/proc/self/mountinfo")), before);
}

TEST_F(ShellTest, AnUnclaimedShellEndsWithItsObject) {
  auto shell = container::MakeShell(*container::ShellShapeOf(UsernsSpec({"true"})));
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  EXPECT_FALSE(Gone(m));
  EXPECT_FALSE(Gone(init));
  // Its init is already in its own namespaces, with its maps.
  EXPECT_NE(ReadFile("/proc/" + std::to_string(init) + "/uid_map").find("100000"),
            std::string::npos);
  shell.reset();
  ReapShell(m, init);
  EXPECT_TRUE(Gone(m));
  EXPECT_TRUE(Gone(init));
}

// A cold create's init forked meanwhile holds copies of every descriptor of the creator
// until it execs (at start, which may never come): the shell must still end.
TEST_F(ShellTest, AnUnclaimedShellEndsEvenWhenAnotherProcessHoldsItsSockets) {
  auto shell = container::MakeShell(*container::ShellShapeOf(UsernsSpec({"true"})));
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    ::pause();  // holds copies of our descriptors, the shell's sockets among them
    ::_exit(0);
  }
  ScopeGuard end_holder([holder] {
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
  });
  shell.reset();
  ReapShell(m, init);
  EXPECT_TRUE(Gone(m));
  EXPECT_TRUE(Gone(init));
  EXPECT_FALSE(Gone(holder));
}

TEST_F(ShellTest, AShellOfAnotherShapeIsRefusedAndNothingIsMade) {
  auto shell = container::MakeShell(*container::ShellShapeOf(UsernsSpec({"true"}, 100000)));
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  try {
    container::CreateContainer(Options("other", UsernsSpec({"true"}, 200000)), std::move(shell));
    FAIL() << "claimed a shell with other id maps";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInternal) << e.what();
  }
  EXPECT_FALSE(PathExists(StateDir("other")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "other")));
  ReapShell(m, init);
  EXPECT_TRUE(Gone(init));
}

TEST_F(ShellTest, ABadCommandFailsTheClaimAndLeavesNothing) {
  spec::Spec s = UsernsSpec({"no-such-program"});
  auto shell = container::MakeShell(*container::ShellShapeOf(s));
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  try {
    container::CreateContainer(Options("noexe", s), std::move(shell));
    FAIL() << "created with a missing executable";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
    EXPECT_NE(std::string(e.what()).find("no-such-program"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(PathExists(StateDir("noexe")));
  EXPECT_FALSE(PathExists(CgroupDir("memory", "noexe")));
  ReapShell(m, init);
  EXPECT_TRUE(Gone(init));
}

TEST_F(ShellTest, SpecsWithoutAUserNamespaceOrWithATerminalHaveNoShape) {
  EXPECT_FALSE(container::ShellShapeOf(BaseSpec({"true"})).has_value());
  spec::Spec tty = UsernsSpec({"true"});
  tty.process.terminal = true;
  EXPECT_FALSE(container::ShellShapeOf(tty).has_value());
  auto shape = *container::ShellShapeOf(UsernsSpec({"true"}));
  EXPECT_EQ(container::ParseShellShape(container::ShellShapeJson(shape)), shape);
  EXPECT_THROW(container::ParseShellShape("{\"clone_flags\": 1}"), Error);
}

// A zygote makes shells for the process that started it: M is that process's child (as
// one made by MakeShell), the zygote keeps none, and a make that fails leaves it working.
TEST_F(ShellTest, AZygoteMakesShellsAsItsStartersChildren) {
  auto zygote = container::ShellZygote::Start();
  const pid_t zygote_pid = zygote->pid();
  spec::Spec s = UsernsSpec({"sh", "-c", "echo made by the zygote"});
  const container::ShellShape shape = *container::ShellShapeOf(s);
  auto shell = zygote->Make(shape);
  const pid_t m = shell->monitor_pid(), init = shell->init_pid();
  ScopeGuard reap([&] {
    try {
      container::DeleteContainer(state_root_, "zygote-made", true);
    } catch (const Error&) {
    }
    ReapShell(m, init);
  });
  EXPECT_TRUE(shell->alive());
  EXPECT_EQ(ReadProcStat(m)->ppid, ::getpid());
  EXPECT_EQ(ReadProcStat(init)->ppid, m);
  EXPECT_EQ(ReadProcStat(zygote_pid)->comm, "berth-zygote");

  auto record = container::CreateContainer(Options("zygote-made", s), std::move(shell));
  EXPECT_EQ(record.init_pid, init);
  container::StartContainer(state_root_, "zygote-made");
  EXPECT_EQ(container::WaitContainer(state_root_, "zygote-made").exit_code.value_or(-1), 0);
  EXPECT_NE(Console("zygote-made").find("made by the zygote\n"), std::string::npos)
      << Console("zygote-made");

  // Maps the kernel refuses: the make fails with the step's error, the zygote goes on.
  container::ShellShape bad = shape;
  bad.uid_mappings = {{0, 4294967000u, 65536}};
  try {
    zygote->Make(bad);
    FAIL() << "made a shell with impossible maps";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("uidMappings"), std::string::npos) << e.what();
  }
  // Its M gave up and exited, our child: reaped here, as the spawner reaps all of its.
  pid_t failed = 0;
  for (int i = 0; i < 400 && failed <= 0; ++i) {
    failed = ::waitpid(-1, nullptr, WNOHANG);
    if (failed <= 0) ::usleep(5000);
  }
  EXPECT_GT(failed, 0);
  EXPECT_NE(failed, zygote_pid);
  EXPECT_TRUE(zygote->alive());
  auto second = zygote->Make(shape);
  const pid_t m2 = second->monitor_pid(), init2 = second->init_pid();
  second.reset();
  ReapShell(m2, init2);
  EXPECT_TRUE(Gone(m2));
  EXPECT_TRUE(Gone(init2));

  zygote.reset();
  EXPECT_TRUE(Gone(zygote_pid));
}

}  // namespace
}  // namespace berth::testing
