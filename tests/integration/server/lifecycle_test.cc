// One test per action, each checking the container underneath, not only the answer.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "runtime/common/file_util.h"
#include "tests/integration/server/daemon_fixture.h"

namespace berth::testing {
namespace {

using LifecycleTest = ServerTest;

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool IsMounted(const std::string& path) {
  std::string mi = ReadFile("/proc/self/mountinfo");
  return mi.find(" " + path + " ") != std::string::npos;
}

TEST_F(LifecycleTest, SpawnRunsTheContainerAndDeleteRemovesEverything) {
  const std::string uuid = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
  ASSERT_EQ(CreateInstance(R"("uuid": ")" + uuid + R"(", "name": "web-1",
                            "metadata": {"role": "web"}, "env": ["GREETING=hi"])"),
            uuid);
  auto v = Show(uuid);
  EXPECT_EQ(Str(v, "name"), "web-1");
  EXPECT_EQ(Str(v, "hostname"), "web-1");
  EXPECT_EQ(Int(v, "power_state"), 1);
  EXPECT_EQ(Str(v, "image"), image_id_);
  pid_t pid = static_cast<pid_t>(Int(v, "pid"));
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::kill(pid, 0), 0);
  // The flavor became limits; the name the hostname; Nova's marker is in PID 1's env.
  EXPECT_EQ(Trim(ReadFile(CgroupDir("memory", uuid) + "/memory.limit_in_bytes")), "67108864");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("cpu", uuid) + "/cpu.cfs_quota_us")), "100000");
  EXPECT_EQ(Trim(Exec(uuid, "hostname")), "web-1");
  std::string env = Exec(uuid, "tr '\\0' '\\n' < /proc/1/environ");
  EXPECT_NE(env.find("product_name=OpenStack Nova"), std::string::npos) << env;
  EXPECT_NE(env.find("GREETING=hi"), std::string::npos) << env;
  EXPECT_TRUE(IsMounted(InstanceDir(uuid) + "/rootfs"));
  EXPECT_TRUE(PathExists(InstanceDir(uuid) + "/instance.json"));

  EXPECT_EQ(daemon().Delete("/v1/instances/" + uuid).status, 204);
  EXPECT_EQ(daemon().Get("/v1/instances/" + uuid).status, 404);
  EXPECT_FALSE(PathExists(InstanceDir(uuid)));
  EXPECT_FALSE(PathExists(CgroupDir("memory", uuid)));
  EXPECT_FALSE(PathExists(daemon().run_dir() + "/containers/" + uuid));
  EXPECT_FALSE(IsMounted(InstanceDir(uuid) + "/rootfs"));
  for (int i = 0; i < 100 && ::kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(::kill(pid, 0), 0);
}

// A spawn's cgroup is made while the rest of it is (its image looked up, its root mounted):
// one that fails after that leaves no group behind, in any hierarchy.
TEST_F(LifecycleTest, ASpawnThatFailsLeavesNoCgroup) {
  const std::string uuid = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f9a8b7c6d";
  HttpResult r =
      daemon().Post("/v1/instances", R"({"uuid": ")" + uuid + R"(", "image": "no-such-image"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_FALSE(PathExists(InstanceDir(uuid)));
  std::vector<std::string> hierarchy_roots = {"/sys/fs/cgroup"};  // v2; v1's are below
  std::error_code ec;
  for (const auto& c : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    hierarchy_roots.push_back(c.path().string());
  }
  int hierarchies = 0;
  for (const auto& root : hierarchy_roots) {
    if (!PathExists(root + "/" + daemon().cgroup_parent())) continue;
    ++hierarchies;
    EXPECT_FALSE(PathExists(root + "/" + daemon().cgroup_parent() + "/" + uuid)) << root;
  }
  EXPECT_GT(hierarchies, 0) << "no hierarchy has the daemon's cgroup parent: nothing was checked";
}

TEST_F(LifecycleTest, HostnameIsSeparateFromTheName) {
  std::string a = CreateInstance(R"("name": "Nova's Web Server #2", "hostname": "web-2")");
  EXPECT_EQ(Str(Show(a), "name"), "Nova's Web Server #2");
  EXPECT_EQ(Str(Show(a), "hostname"), "web-2");
  EXPECT_EQ(Trim(Exec(a, "hostname")), "web-2");
  // Without one, the name sanitised.
  std::string b = CreateInstance(R"("name": "Nova's Web Server #3")");
  EXPECT_EQ(Str(Show(b), "hostname"), "nova-s-web-server-3");
  EXPECT_EQ(Trim(Exec(b, "hostname")), "nova-s-web-server-3");
  EXPECT_EQ(
      daemon().Post("/v1/instances", R"({"image": "busybox", "hostname": "bad_host"})").status,
      400);
}

TEST_F(LifecycleTest, ConsoleShowsTheOutput) {
  std::string uuid = CreateInstance(R"("name": "talker")",
                                    "for i in 1 2 3 4 5; do echo line$i; done; trap 'exit 0' TERM; "
                                    "while true; do sleep 0.05; done");
  std::string out;
  for (int i = 0; i < 100; ++i) {
    out = Str(daemon().Get("/v1/instances/" + uuid + "/console?lines=2").Json(), "output");
    if (out.find("line5") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(out, "line4\nline5\n");
  std::string all = Str(daemon().Get("/v1/instances/" + uuid + "/console").Json(), "output");
  EXPECT_EQ(all, "line1\nline2\nline3\nline4\nline5\n");
}

TEST_F(LifecycleTest, PauseFreezesAndUnpauseThaws) {
  std::string uuid = CreateInstance();
  ASSERT_EQ(Action(uuid, R"({"action": "pause"})").status, 200);
  EXPECT_EQ(PowerState(uuid), "PAUSED");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", uuid) + "/freezer.state")), "FROZEN");
  // Pausing a paused instance is a no-op; resuming it is not allowed (it is not suspended).
  HttpResult again = Action(uuid, R"({"action": "pause"})");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(Str(again.Json(), "power_state_name"), "PAUSED");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", uuid) + "/freezer.state")), "FROZEN");
  HttpResult resume = Action(uuid, R"({"action": "resume"})");
  EXPECT_EQ(resume.status, 409);
  EXPECT_EQ(Int(resume.Json()["error"], "power_state"), 3) << resume.body;
  EXPECT_EQ(Str(resume.Json()["error"], "kind"), "invalid_state") << resume.body;
  HttpResult exec = daemon().Post("/v1/instances/" + uuid + "/exec", R"({"command": ["true"]})");
  EXPECT_EQ(exec.status, 409);
  ASSERT_EQ(Action(uuid, R"({"action": "unpause"})").status, 200);
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", uuid) + "/freezer.state")), "THAWED");
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  EXPECT_EQ(Action(uuid, R"({"action": "unpause"})").status, 409);
}

TEST_F(LifecycleTest, SuspendIsFrozenAndRecorded) {
  std::string uuid = CreateInstance();
  ASSERT_EQ(Action(uuid, R"({"action": "suspend"})").status, 200);
  EXPECT_EQ(PowerState(uuid), "SUSPENDED");
  EXPECT_EQ(Int(Show(uuid), "power_state"), 7);
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", uuid) + "/freezer.state")), "FROZEN");
  EXPECT_NE(ReadFile(InstanceDir(uuid) + "/instance.json").find("\"desired\":\"suspended\""),
            std::string::npos);
  EXPECT_EQ(Action(uuid, R"({"action": "unpause"})").status, 409);
  EXPECT_EQ(Action(uuid, R"({"action": "suspend"})").status, 200);  // already: a no-op
  EXPECT_EQ(Action(uuid, R"({"action": "pause"})").status, 409);    // suspended, not running
  // Survives a restart of berthd.
  daemon().Terminate();
  daemon().Start();
  EXPECT_EQ(PowerState(uuid), "SUSPENDED");
  ASSERT_EQ(Action(uuid, R"({"action": "resume"})").status, 200);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", uuid) + "/freezer.state")), "THAWED");
}

TEST_F(LifecycleTest, ResizeChangesTheCgroupLimits) {
  std::string uuid = CreateInstance();
  HttpResult r = Action(uuid, R"({"action": "resize", "flavor": {"vcpus": 2, "memory_mb": 128,
                                   "extra_specs": {"berth:pids_limit": "50"}}})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Trim(ReadFile(CgroupDir("memory", uuid) + "/memory.limit_in_bytes")), "134217728");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("cpu", uuid) + "/cpu.cfs_quota_us")), "200000");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("pids", uuid) + "/pids.max")), "50");
  auto v = Show(uuid);
  EXPECT_EQ(Int(v["flavor"], "memory_mb"), 128);
  auto stats = daemon().Get("/v1/instances/" + uuid + "/stats").Json();
  EXPECT_EQ(Int(stats["memory"], "limit_bytes"), 134217728);
  EXPECT_GT(Int(stats["memory"], "usage_bytes"), 0);
  EXPECT_GE(Int(stats["pids"], "current"), 1);
  EXPECT_EQ(Int(stats["pids"], "limit"), 50);
  EXPECT_TRUE(stats["cpu"].HasMember("usage_ns"));
  EXPECT_TRUE(stats["io"].HasMember("read_bytes"));
  // The new flavor holds after a stop and start too.
  ASSERT_EQ(Action(uuid, R"({"action": "stop"})").status, 200);
  ASSERT_EQ(Action(uuid, R"({"action": "start"})").status, 200);
  EXPECT_EQ(Trim(ReadFile(CgroupDir("memory", uuid) + "/memory.limit_in_bytes")), "134217728");
}

TEST_F(LifecycleTest, StopKeepsTheDiskAndStartBringsItBack) {
  std::string uuid = CreateInstance();
  pid_t pid = static_cast<pid_t>(Int(Show(uuid), "pid"));
  Exec(uuid, "echo persisted > /root/marker");
  auto started = std::chrono::steady_clock::now();
  HttpResult stop = Action(uuid, R"({"action": "stop", "timeout": 5})");
  ASSERT_EQ(stop.status, 200) << stop.body;
  // The init traps SIGTERM, so the stop is quick, not the timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
  auto v = Show(uuid);
  EXPECT_EQ(Str(v, "power_state_name"), "SHUTDOWN");
  EXPECT_EQ(Int(v, "power_state"), 4);
  EXPECT_FALSE(PathExists(CgroupDir("memory", uuid)));
  EXPECT_FALSE(IsMounted(InstanceDir(uuid) + "/rootfs"));
  EXPECT_NE(::kill(pid, 0), 0);
  // Invalid transitions name the state.
  HttpResult pause = Action(uuid, R"({"action": "pause"})");
  EXPECT_EQ(pause.status, 409);
  EXPECT_NE(pause.body.find("SHUTDOWN"), std::string::npos) << pause.body;
  EXPECT_EQ(Int(pause.Json()["error"], "power_state"), 4) << pause.body;
  // Stopping a stopped instance is a no-op answered with the instance.
  HttpResult stop2 = Action(uuid, R"({"action": "stop"})");
  EXPECT_EQ(stop2.status, 200) << stop2.body;
  EXPECT_EQ(Int(stop2.Json(), "power_state"), 4);
  EXPECT_EQ(Action(uuid, R"({"action": "reboot"})").status, 409);  // soft needs RUNNING
  EXPECT_EQ(daemon().Get("/v1/instances/" + uuid + "/stats").status, 409);
  // The console of the last run is still there.
  EXPECT_NE(Str(daemon().Get("/v1/instances/" + uuid + "/console").Json(), "output").find("hello"),
            std::string::npos);

  ASSERT_EQ(Action(uuid, R"({"action": "start"})").status, 200);
  v = Show(uuid);
  EXPECT_EQ(Str(v, "power_state_name"), "RUNNING");
  EXPECT_NE(Int(v, "pid"), pid);
  EXPECT_EQ(Exec(uuid, "cat /root/marker"), "persisted\n");
  pid_t pid2 = static_cast<pid_t>(Int(v, "pid"));
  HttpResult start2 = Action(uuid, R"({"action": "start"})");  // already running: a no-op
  EXPECT_EQ(start2.status, 200) << start2.body;
  EXPECT_EQ(Int(start2.Json(), "pid"), pid2);
}

TEST_F(LifecycleTest, StopKillsAnInitThatIgnoresTheSignal) {
  std::string uuid = CreateInstance("", "while true; do sleep 0.05; done");  // PID 1 ignores TERM
  auto started = std::chrono::steady_clock::now();
  ASSERT_EQ(Action(uuid, R"({"action": "stop", "timeout": 1})").status, 200);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::seconds(4));
  EXPECT_EQ(PowerState(uuid), "SHUTDOWN");
}

TEST_F(LifecycleTest, RebootSoftAndHardChangeThePid) {
  std::string uuid = CreateInstance();
  pid_t pid1 = static_cast<pid_t>(Int(Show(uuid), "pid"));
  HttpResult soft = Action(uuid, R"({"action": "reboot", "type": "SOFT"})");
  ASSERT_EQ(soft.status, 200) << soft.body;
  pid_t pid2 = static_cast<pid_t>(Int(Show(uuid), "pid"));
  EXPECT_NE(pid2, pid1);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
  ASSERT_EQ(Action(uuid, R"({"action": "reboot", "type": "HARD"})").status, 200);
  pid_t pid3 = static_cast<pid_t>(Int(Show(uuid), "pid"));
  EXPECT_NE(pid3, pid2);
  EXPECT_EQ(::kill(pid3, 0), 0);
  EXPECT_NE(::kill(pid2, 0), 0);
  // A hard reboot also starts a stopped instance, as Nova's does.
  ASSERT_EQ(Action(uuid, R"({"action": "stop"})").status, 200);
  ASSERT_EQ(Action(uuid, R"({"action": "reboot", "type": "HARD"})").status, 200);
  EXPECT_EQ(PowerState(uuid), "RUNNING");
}

TEST_F(LifecycleTest, ExitedInstanceIsShutdownAndKilledOneIsCrashed) {
  std::string quits = CreateInstance("", "exit 0");
  std::string killed = CreateInstance();
  pid_t pid = static_cast<pid_t>(Int(Show(killed), "pid"));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::string s1, s2;
  for (int i = 0; i < 100; ++i) {
    s1 = PowerState(quits);
    s2 = PowerState(killed);
    if (s1 == "SHUTDOWN" && s2 == "CRASHED") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(s1, "SHUTDOWN");
  EXPECT_EQ(s2, "CRASHED");
  ASSERT_EQ(Action(killed, R"({"action": "start"})").status, 200);
  EXPECT_EQ(PowerState(killed), "RUNNING");
}

// The spawn is answered once the init is told to exec (runc's contract); an entrypoint the
// kernel cannot run is then the instance's own exit: SHUTDOWN, 126, the reason in its console.
TEST_F(LifecycleTest, AnEntrypointTheKernelCannotRunShutsTheInstanceDown) {
  TempDir image;
  MakeDirs(image.Sub("root"), 0755);
  WriteFileAtomic(image.Sub("root/junk"), "neither ELF nor #!\n", 0755);
  const std::string tar = image.Sub("junk.tar");
  ASSERT_EQ(std::system(("tar -C " + image.Sub("root") + " -cf " + tar + " .").c_str()), 0);
  HttpResult imp = daemon().Request("POST", "/v1/images?name=berth-test-junk&format=rootfs-tar",
                                    ReadFile(tar), true, "application/x-tar");
  ASSERT_EQ(imp.status, 201) << imp.body;
  const std::string image_id = Str(imp.Json(), "id");
  HttpResult r =
      daemon().Post("/v1/instances", R"({"image": "berth-test-junk", "command": ["/junk"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  const std::string uuid = Str(r.Json(), "uuid");
  std::string state;
  for (int i = 0; i < 200 && state != "SHUTDOWN"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    state = PowerState(uuid);
  }
  EXPECT_EQ(state, "SHUTDOWN");
  EXPECT_EQ(Int(Show(uuid), "exit_code"), 126);
  HttpResult log = daemon().Get("/v1/instances/" + uuid + "/console");
  EXPECT_NE(log.body.find("berth: exec /junk: Exec format error"), std::string::npos) << log.body;
  EXPECT_EQ(daemon().Delete("/v1/instances/" + uuid).status, 204);
  EXPECT_EQ(daemon().Delete("/v1/images/" + image_id).status, 204);
}

TEST_F(LifecycleTest, ExecReturnsOutputAndExitCode) {
  std::string uuid = CreateInstance();
  HttpResult r = daemon().Post("/v1/instances/" + uuid + "/exec",
                               R"({"command": ["sh", "-c", "echo out; echo err >&2; exit 7"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = r.Json();
  EXPECT_EQ(Int(d, "exit_code"), 7);
  EXPECT_EQ(Str(d, "stdout"), "out\n");
  EXPECT_EQ(Str(d, "stderr"), "err\n");
}

TEST_F(LifecycleTest, SnapshotCommitsTheDiskIntoAnImageTheNextInstanceBootsFrom) {
  std::string a = CreateInstance();
  Exec(a, "echo from-a > /root/snap-marker && rm /bin/true");
  HttpResult snap = daemon().Post("/v1/instances/" + a + "/snapshot",
                                  R"({"name": "berth-test-snap", "image_id": "glance-1"})");
  ASSERT_EQ(snap.status, 201) << snap.body;
  auto img = snap.Json();
  std::string id = Str(img, "id");
  EXPECT_EQ(Int(img, "layer_count"), 2);  // busybox's layer + the instance's changes
  // The instance was thawed and still runs.
  EXPECT_EQ(PowerState(a), "RUNNING");
  EXPECT_EQ(Trim(ReadFile(CgroupDir("freezer", a) + "/freezer.state")), "THAWED");
  EXPECT_EQ(Str(daemon().Get("/v1/images/berth-test-snap").Json(), "id"), id);

  HttpResult created = daemon().Post(
      "/v1/instances",
      R"({"image": "berth-test-snap", "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string b = Str(created.Json(), "uuid");
  EXPECT_EQ(Str(Show(b), "image"), id);
  EXPECT_EQ(Exec(b, "cat /root/snap-marker"), "from-a\n");
  EXPECT_EQ(Exec(b, "test -e /bin/true && echo present || echo gone"), "gone\n");
  // In use by b: not removable.
  EXPECT_EQ(daemon().Delete("/v1/images/" + id).status, 409);

  // A paused instance stays paused; export streams the archive back.
  ASSERT_EQ(Action(a, R"({"action": "pause"})").status, 200);
  HttpResult tar = daemon().Post("/v1/instances/" + a + "/snapshot",
                                 R"({"name": "berth-test-snap2", "export": true})");
  ASSERT_EQ(tar.status, 200) << tar.body.substr(0, 300);
  EXPECT_EQ(tar.content_type, "application/octet-stream");
  EXPECT_GT(tar.body.size(), 10240u);
  EXPECT_NE(tar.body.find("manifest.json"), std::string::npos);
  EXPECT_EQ(PowerState(a), "PAUSED");

  HttpResult oci = daemon().Get("/v1/images/" + id + "/export?format=oci");
  ASSERT_EQ(oci.status, 200);
  EXPECT_NE(oci.body.find("oci-layout"), std::string::npos);
  EXPECT_EQ(daemon().Get("/v1/images/" + id + "/export?format=zip").status, 400);
  // No temp archives are left behind.
  std::string left;
  for (const auto& e : std::filesystem::directory_iterator(daemon().state_dir() + "/tmp")) {
    left += e.path().filename().string() + " ";
  }
  EXPECT_EQ(left.find("export-"), std::string::npos) << left;
  EXPECT_EQ(daemon().Post("/v1/instances/" + a + "/snapshot", "{}").status, 400);

  // The images' layers stay in use while an instance's disk sits on them.
  EXPECT_EQ(daemon().Delete("/v1/instances/" + b).status, 204);
  EXPECT_EQ(daemon().Delete("/v1/instances/" + a).status, 204);
  HttpResult rm = daemon().Delete("/v1/images/" + id);
  EXPECT_EQ(rm.status, 204) << rm.body;
  rm = daemon().Delete("/v1/images/berth-test-snap2");
  EXPECT_EQ(rm.status, 204) << rm.body;
}

}  // namespace
}  // namespace berth::testing
