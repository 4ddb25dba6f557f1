// Shells: a container's processes made before the container is asked for, then claimed by
// a create. The claimed container must be the same as a cold one: its root (mounted after
// the shell was made), its namespaces and id maps, its cgroup, its console. An unclaimed
// or refused shell leaves no process behind.
#include "runtime/linux/shell.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
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

class ShellTest : public ContainerTest {
 protected:
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
