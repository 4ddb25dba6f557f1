#include "tests/integration/cli/cli_fixture.h"

#include <fcntl.h>
#include <rapidjson/error/en.h>
#include <rapidjson/pointer.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "runtime/common/file_util.h"
#include "tests/support/busybox_rootfs.h"

namespace berth::testing {

std::string CliTest::rootfs_;
std::string CliTest::base_config_;
TempDir* CliTest::suite_dir_ = nullptr;

namespace {

constexpr const char* kCgroupRoot = "/sys/fs/cgroup";

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::vector<std::string> SplitNul(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\0', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Last resort when delete --force failed: end the processes of a cgroup this test made
// (they are ours by its name) and remove it.
void KillAndRemoveCgroup(const std::string& dir) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto procs = ReadFileIfExists(dir + "/cgroup.procs").value_or("");
    size_t pos = 0;
    while (pos < procs.size()) {
      size_t nl = procs.find('\n', pos);
      if (nl == std::string::npos) nl = procs.size();
      pid_t pid = std::atoi(procs.substr(pos, nl - pos).c_str());
      if (pid > 0) ::kill(pid, SIGKILL);
      pos = nl + 1;
    }
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "could not remove cgroup " << dir;
}

std::string Serialize(const rapidjson::Document& doc) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return buf.GetString();
}

}  // namespace

bool ProcessAlive(pid_t pid) {
  auto stat = ReadFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  auto close = stat->rfind(')');
  return close == std::string::npos || stat->substr(close + 2, 1) != "Z";
}

std::string CliTest::Binary() { return BuildDir() + "/runtime/cli/berth-runtime"; }

void CliTest::SetUpTestSuite() {
  if (!IsRoot()) return;
  suite_dir_ = new TempDir();
  ::chmod(suite_dir_->path().c_str(), 0755);
  rootfs_ = suite_dir_->Sub("rootfs");
  BuildBusyboxRootfs(rootfs_);
  // The default spec as the CLI itself writes it.
  std::string gen = suite_dir_->Sub("spec");
  MakeDirs(gen);
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 1);
    ::execl(Binary().c_str(), "berth-runtime", "spec", "--bundle", gen.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  base_config_ = ReadFileIfExists(gen + "/config.json").value_or("");
}

void CliTest::TearDownTestSuite() {
  delete suite_dir_;
  suite_dir_ = nullptr;
}

void CliTest::SetUp() {
  if (!IsRoot()) GTEST_SKIP() << "needs root";
  ASSERT_EQ(::access(Binary().c_str(), X_OK), 0) << Binary() << " is not built";
  ASSERT_FALSE(base_config_.empty()) << "berth-runtime spec wrote no config.json";
  dir_ = std::make_unique<TempDir>();
  ::chmod(dir_->path().c_str(), 0755);
  state_root_ = dir_->Sub("state");
}

void CliTest::TearDown() {
  if (!dir_) return;
  for (const auto& id : ListDirectory(state_root_)) {
    if (!IsDir(StateDir(id))) continue;
    CliResult r = Cli({"delete", "--force", id});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "cleanup: delete --force " << id << ": " << r.err;
      // Only what this test started: the monitor named in the record.
      for (pid_t pid : Monitors(id)) ::kill(pid, SIGKILL);
    }
  }
  // Cgroups named for this test process that survived (a failed delete, a bug).
  const std::string prefix = "berth-test-" + std::to_string(::getpid()) + "-";
  for (const auto& controller : ListDirectory(kCgroupRoot)) {
    std::string hierarchy = std::string(kCgroupRoot) + "/" + controller;
    for (const auto& name : ListDirectory(hierarchy)) {
      if (name.rfind(prefix, 0) == 0 && IsDir(hierarchy + "/" + name)) {
        ADD_FAILURE() << "cleanup: cgroup left behind: " << hierarchy << "/" << name;
        KillAndRemoveCgroup(hierarchy + "/" + name);
      }
    }
  }
  dir_.reset();
}

CliResult CliTest::Cli(const std::vector<std::string>& args, int timeout_s) {
  CliResult result;
  // Unique names: calls may run side by side (a foreground run and a kill).
  const std::string n = std::to_string(cli_calls_.fetch_add(1));
  const std::string out_path = dir_->Sub("cli" + n + ".out"),
                    err_path = dir_->Sub("cli" + n + ".err");
  std::vector<std::string> argv_s = {Binary(), "--root", state_root_};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << errno;
    return result;
  }
  if (pid == 0) {
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "berth-runtime " << ::testing::PrintToString(args) << " timed out";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFileIfExists(out_path).value_or("");
  result.err = ReadFileIfExists(err_path).value_or("");
  return result;
}

std::string CliTest::CgroupName(const std::string& id) {
  return "berth-test-" + std::to_string(::getpid()) + "-" + id;
}

std::string CliTest::Bundle(const std::string& id, const std::vector<std::string>& args,
                            const ConfigEdit& edit) {
  rapidjson::Document doc;
  doc.Parse(base_config_.c_str());
  EXPECT_FALSE(doc.HasParseError()) << "default spec does not parse";
  auto& a = doc.GetAllocator();
  rapidjson::Value argv(rapidjson::kArrayType);
  for (const auto& s : args) argv.PushBack(rapidjson::Value(s.c_str(), a), a);
  rapidjson::Pointer("/process/args").Set(doc, argv);
  rapidjson::Pointer("/process/terminal").Set(doc, false);
  rapidjson::Pointer("/root/path").Set(doc, rootfs_.c_str());
  rapidjson::Pointer("/root/readonly").Set(doc, false);
  rapidjson::Pointer("/hostname").Set(doc, "berth-test");
  rapidjson::Pointer("/linux/cgroupsPath").Set(doc, CgroupName(id).c_str());
  if (edit) edit(doc);
  return RawBundle(id, Serialize(doc));
}

std::string CliTest::RawBundle(const std::string& id, const std::string& text) {
  std::string bundle = dir_->Sub("bundle-" + id);
  MakeDirs(bundle);
  WriteFileAtomic(bundle + "/config.json", text);
  return bundle;
}

std::vector<std::string> CliTest::CgroupDirs(const std::string& id) {
  std::vector<std::string> found;
  for (const auto& controller : ListDirectory(kCgroupRoot)) {
    for (const std::string& rel : {CgroupName(id), "berth/" + id}) {
      std::string dir = std::string(kCgroupRoot) + "/" + controller + "/" + rel;
      if (IsDir(dir)) found.push_back(dir);
    }
  }
  return found;
}

std::vector<pid_t> CliTest::Monitors(const std::string& id) const {
  std::vector<pid_t> found;
  const std::string dir = StateDir(id);
  for (const auto& entry : ListDirectory("/proc")) {
    pid_t pid = std::atoi(entry.c_str());
    if (pid <= 0 || !ProcessAlive(pid)) continue;
    std::string cmdline;
    try {
      cmdline = ReadFileIfExists("/proc/" + entry + "/cmdline").value_or("");
    } catch (const std::exception&) {
      continue;  // exited meanwhile
    }
    auto words = SplitNul(cmdline);
    if (words.empty() || words[0].find("berth-monitor") == std::string::npos) continue;
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      if (words[i] == "--state-dir" && words[i + 1] == dir) found.push_back(pid);
    }
  }
  return found;
}

void CliTest::ExpectNothingLeft(const std::string& id) const {
  EXPECT_FALSE(PathExists(StateDir(id))) << "state entry left: " << StateDir(id);
  EXPECT_EQ(CgroupDirs(id), std::vector<std::string>{}) << "cgroups left for " << id;
  // A monitor that is on its way out may need a moment to be reaped.
  std::vector<pid_t> monitors;
  for (int i = 0; i < 100; ++i) {
    monitors = Monitors(id);
    if (monitors.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(monitors, std::vector<pid_t>{}) << "berth-monitor left for " << id;
}

rapidjson::Document CliTest::State(const std::string& id) {
  rapidjson::Document doc;
  CliResult r = Cli({"state", id});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  doc.Parse(r.out.c_str());
  EXPECT_FALSE(doc.HasParseError()) << "state output is not JSON: " << r.out;
  if (doc.HasParseError() || !doc.IsObject()) doc.SetObject();
  return doc;
}

std::string CliTest::WaitForStatus(const std::string& id, const std::string& status,
                                   int timeout_ms) {
  // Tolerates "does not exist" while the container is still being created.
  std::string last;
  for (int waited = 0; waited <= timeout_ms; waited += 20) {
    CliResult r = Cli({"state", id});
    rapidjson::Document doc;
    if (r.exit_code == 0) doc.Parse(r.out.c_str());
    if (r.exit_code == 0 && !doc.HasParseError() && doc.IsObject() && doc.HasMember("status") &&
        doc["status"].IsString()) {
      last = doc["status"].GetString();
      if (last == status) return last;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return last;
}

}  // namespace berth::testing
