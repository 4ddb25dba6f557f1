#include "runtime/linux/spawner.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "runtime/common/error.h"
#include "runtime/common/fd_io.h"
#include "runtime/common/phase_timer.h"
#include "runtime/linux/shell.h"
#include "runtime/linux/shell_zygote.h"
#include "runtime/spec/parser.h"

namespace berth::container {
namespace {

// Request on a per-create stream socket: an 8-byte length, then a JSON object with the
// CreateOptions. Reply: one line, "ok" or "err <kind> <errno> <message>". A line, not EOF,
// ends the reply: a monitor forked meanwhile may hold the spawner's end until it execs.

std::string EncodeRequest(const CreateOptions& o, std::string_view spec) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("id");
  w.String(o.id.c_str(), static_cast<rapidjson::SizeType>(o.id.size()));
  w.Key("state_root");
  w.String(o.state_root.c_str(), static_cast<rapidjson::SizeType>(o.state_root.size()));
  w.Key("bundle");
  w.String(o.bundle.c_str(), static_cast<rapidjson::SizeType>(o.bundle.size()));
  w.Key("cgroup_path");
  w.String(o.cgroup_path.c_str(), static_cast<rapidjson::SizeType>(o.cgroup_path.size()));
  w.Key("console_max");
  w.Uint64(o.console_max);
  w.Key("spec");
  w.String(spec.data(), static_cast<rapidjson::SizeType>(spec.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string StringMember(const rapidjson::Document& doc, const char* key) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd() || !it->value.IsString()) {
    throw Error(ErrorKind::kInternal, std::string("spawner request: no string ") + key);
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// A create; or (with "prepare" alone) the shape of the next one; or (with "take" alone)
// that shape, and its shell handed over once made.
struct Request {
  CreateOptions options;
  std::string spec_json;
  std::optional<ShellShape> prepare;
  std::optional<ShellShape> take;
};

Request DecodeRequest(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    throw Error(ErrorKind::kInternal, "spawner request: not a JSON object");
  }
  Request r;
  if (doc.HasMember("prepare")) {
    r.prepare = ParseShellShape(StringMember(doc, "prepare"));
    return r;
  }
  if (doc.HasMember("take")) {
    r.take = ParseShellShape(StringMember(doc, "take"));
    return r;
  }
  CreateOptions& o = r.options;
  o.id = StringMember(doc, "id");
  o.state_root = StringMember(doc, "state_root");
  o.bundle = StringMember(doc, "bundle");
  o.cgroup_path = StringMember(doc, "cgroup_path");
  auto max = doc.FindMember("console_max");
  if (max == doc.MemberEnd() || !max->value.IsUint64()) {
    throw Error(ErrorKind::kInternal, "spawner request: no console_max");
  }
  o.console_max = static_cast<unsigned long>(max->value.GetUint64());
  r.spec_json = StringMember(doc, "spec");
  o.spec = spec::ParseSpec(r.spec_json);
  o.caller_reaps_monitor = true;  // ReapChildren
  return r;
}

// Shells made ahead, for the shape the daemon says comes next. The zygote (shell_zygote.h)
// makes them, so that the spawner never forks for one; one thread asks it, one shell at a
// time. An unclaimed shell's M is our child and dies with the thread that started the
// zygote (PR_SET_PDEATHSIG): the spawner's main thread, which lives as long as we do.
class ShellPool {
 public:
  // No zygote: no shells.
  ShellPool(size_t capacity, std::unique_ptr<ShellZygote> zygote)
      : capacity_(zygote ? capacity : 0), zygote_(std::move(zygote)) {}

  void StartMaker() {
    if (zygote_) std::thread([this] { MakeWhileZygoteLives(); }).detach();
  }

  // A live shell of this shape, or null. One still being made is not waited for: it is
  // made at the lowest priority, which on a busy host may take long.
  std::unique_ptr<Shell> Take(const ShellShape& shape) {
    std::unique_lock lock(mu_);
    if (capacity_ == 0) return nullptr;
    // This shape's slot is being taken: no more shells for it until told the next one (and
    // a TakeWhenMade for it gives up).
    if (wanted_ && *wanted_ == shape) {
      wanted_.reset();
      cv_.notify_all();
    }
    for (int i = Find(shape); i >= 0; i = Find(shape)) {
      std::unique_ptr<Shell> shell = std::move(shells_[i]);
      shells_.erase(shells_.begin() + i);
      if (shell->alive()) return shell;
    }
    return nullptr;
  }

  // Want(shape), then the shell once made: null when the daemon's guess moved on meanwhile
  // (another Want, or a create took this shape's slot), no shell can be made, or none was
  // made within `timeout`.
  std::unique_ptr<Shell> TakeWhenMade(const ShellShape& shape, std::chrono::milliseconds timeout) {
    bool already_wanted;
    {
      std::lock_guard lock(mu_);
      already_wanted = wanted_ && *wanted_ == shape;
    }
    // Asked again for the same shape, the maker's quiet wait would start over.
    if (!already_wanted) Want(shape);
    std::unique_lock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (capacity_ == 0 || zygote_gone_ || !wanted_ || !(*wanted_ == shape)) return nullptr;
      if (int i = Find(shape); i >= 0) {
        std::unique_ptr<Shell> shell = std::move(shells_[i]);
        shells_.erase(shells_.begin() + i);
        if (!shell->alive()) continue;
        wanted_.reset();  // as Take: this shape's slot has its shell
        return shell;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return nullptr;
    }
  }

  // Shells of other shapes are dropped: the daemon's guess moved on.
  void Want(const ShellShape& shape) {
    std::vector<std::unique_ptr<Shell>> dropped;
    {
      std::lock_guard lock(mu_);
      if (capacity_ == 0 || zygote_gone_) return;
      wanted_ = shape;
      ++wants_;
      for (auto it = shells_.begin(); it != shells_.end();) {
        if (!((*it)->shape() == shape)) {
          dropped.push_back(std::move(*it));
          it = shells_.erase(it);
        } else {
          ++it;
        }
      }
    }
    cv_.notify_all();
  }  // dropped shells end here, outside the lock

  // From the reaper: when `pid` was the zygote, no more shells are made. Those made stay
  // good: their M are ours.
  void Reaped(pid_t pid, int status) {
    if (!zygote_ || pid != zygote_->pid()) return;
    ZygoteGone(WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                   : "exit status " + std::to_string(WEXITSTATUS(status)));
  }

  // The spawner is exiting: the zygote ends, and that is no news.
  void Stop() {
    stopping_ = true;
    if (zygote_) zygote_->Stop();
  }

 private:
  void ZygoteGone(const std::string& why) {
    std::lock_guard lock(mu_);
    if (zygote_gone_) return;
    zygote_gone_ = true;
    wanted_.reset();
    cv_.notify_all();
    if (!stopping_) {
      std::fprintf(stderr,
                   "berth-spawner: the shell zygote (pid %d) is gone (%s): no more shells are "
                   "made, creates go cold\n",
                   static_cast<int>(zygote_->pid()), why.c_str());
    }
  }

  int Find(const ShellShape& shape) const {
    for (size_t i = 0; i < shells_.size(); ++i) {
      if (shells_[i]->shape() == shape) return static_cast<int>(i);
    }
    return -1;
  }

  void MakeWhileZygoteLives() {
    // Shells are made with what the creates leave of the CPU: this thread, and the zygote
    // and the processes it makes, at nice 19. A claim puts them back to ours.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    for (;;) {
      ShellShape shape;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return zygote_gone_ || (wanted_ && shells_.size() < capacity_); });
        if (zygote_gone_) return;
        // Spawns back to back (a storm) take their slots before a shell could be ready, and
        // making one then only costs CPU: wait for a quiet moment, as a host between Nova's
        // spawns has many.
        const uint64_t seen = wants_;
        if (cv_.wait_for(lock, kQuietBeforeMaking, [&] { return wants_ != seen || !wanted_; })) {
          continue;
        }
        shape = *wanted_;
      }
      std::unique_ptr<Shell> shell;
      try {
        shell = zygote_->Make(shape);
      } catch (const std::exception& e) {
        if (!zygote_->alive()) {
          ZygoteGone(e.what());
          return;
        }
        // A shell is only a head start; the creates go cold. Do not spin on a host that
        // refuses them.
        std::lock_guard lock(mu_);
        wanted_.reset();
        cv_.notify_all();
        continue;
      }
      std::lock_guard lock(mu_);
      if (wanted_ && *wanted_ == shape) shells_.push_back(std::move(shell));
      cv_.notify_all();
    }
  }

  const size_t capacity_;
  const std::unique_ptr<ShellZygote> zygote_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  bool zygote_gone_ = false;
  std::condition_variable cv_;
  static constexpr std::chrono::milliseconds kQuietBeforeMaking{50};
  std::optional<ShellShape> wanted_;
  uint64_t wants_ = 0;  // Want calls so far
  std::vector<std::unique_ptr<Shell>> shells_;
};

std::string ErrorLine(ErrorKind kind, int sys_errno, std::string message) {
  for (char& c : message) {
    if (c == '\n') c = ' ';
  }
  return "err " + std::to_string(static_cast<int>(kind)) + " " + std::to_string(sys_errno) + " " +
         message + "\n";
}

// A take waits at most this long for its shell; the daemon asks again after its next spawn.
constexpr std::chrono::seconds kLongestTakeWait{60};

// The reply to a take: the shell (Shell::SendTo, as the zygote hands shells to us), or
// "none". A shell the daemon no longer waits for ends with our copies of its sockets.
void HandOverShell(int fd, std::unique_ptr<Shell> shell) {
  try {
    if (shell) {
      shell->SendTo(fd, "spawner shell hand-over");
    } else {
      SendMessageWithFds(fd, "none", {}, "spawner shell hand-over");
    }
  } catch (const std::exception&) {
    // The daemon stopped waiting (it is stopping, or expects another shape now).
  }
}

// One create, on its own thread of the spawner.
void Serve(int fd, ShellPool* pool) {
  std::string reply;
  try {
    uint64_t len = 0;
    if (!ReadFully(fd, &len, sizeof len) || len > (64u << 20)) {
      throw Error(ErrorKind::kInternal, "spawner request: bad length");
    }
    std::string text(len, '\0');
    if (!ReadFully(fd, text.data(), text.size())) {
      throw Error(ErrorKind::kInternal, "spawner request: truncated");
    }
    PhaseTimer timer("spawner");
    Request request = DecodeRequest(text);
    if (request.prepare) {
      ::close(fd);
      pool->Want(*request.prepare);
      return;
    }
    if (request.take) {
      HandOverShell(fd, pool->TakeWhenMade(*request.take, kLongestTakeWait));
      ::close(fd);
      return;
    }
    timer.Mark("decode");  // a create's only: the mark the zygote is there for
    std::unique_ptr<Shell> shell;
    if (auto shape = ShellShapeOf(request.options.spec)) shell = pool->Take(*shape);
    timer.Mark("take shell");
    if (shell) {
      CreateContainer(request.options, std::move(shell), request.spec_json);
      reply = "ok shell\n";
    } else {
      CreateContainer(request.options);
      reply = "ok\n";
    }
  } catch (const Error& e) {
    reply = ErrorLine(e.kind(), e.sys_errno(), e.message());
  } catch (const std::exception& e) {
    reply = ErrorLine(ErrorKind::kInternal, 0, e.what());
  }
  SendFully(fd, reply.data(), reply.size());
  ::close(fd);
}

// The monitors are our children (one fork is cheaper than two), shells' too (made by the
// zygote as ours): they are reaped when their containers end. The zygote is the only other.
[[noreturn]] void ReapChildren(ShellPool* pool) {
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, 0);
    if (pid > 0) pool->Reaped(pid, status);
    if (pid < 0 && errno == ECHILD) ::usleep(100000);  // none yet
  }
}

// The threads that serve creates. They stay once started: a new thread's stack and malloc
// arena are fresh pages, and each first touch of a page is a fault (a trap to the
// hypervisor on a paravirtualized guest), ~1-2 ms a create. A thread is added only when
// every one is busy, so creates still run concurrently.
class Workers {
 public:
  explicit Workers(ShellPool* pool) : pool_(pool) {}

  void Submit(int fd) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(fd);
      if (idle_ > 0) {
        cv_.notify_one();
        return;
      }
    }
    try {
      std::thread([this] { Work(); }).detach();
    } catch (const std::exception&) {
      // No thread to be had: serve it here rather than leave it to a worker that may not be.
      {
        std::lock_guard lock(mu_);
        auto it = std::find(queue_.begin(), queue_.end(), fd);
        if (it == queue_.end()) return;  // a worker took it meanwhile
        queue_.erase(it);
      }
      Serve(fd, pool_);
    }
  }

 private:
  [[noreturn]] void Work() {
    for (;;) {
      int fd;
      {
        std::unique_lock lock(mu_);
        ++idle_;
        cv_.wait(lock, [this] { return !queue_.empty(); });
        --idle_;
        fd = queue_.front();
        queue_.pop_front();
      }
      Serve(fd, pool_);
    }
  }

  ShellPool* pool_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> queue_;
  int idle_ = 0;
};

[[noreturn]] void SpawnerMain(int control, pid_t parent, size_t shells) {
  // Ends with the daemon, even one killed with SIGKILL; the monitors it made do not.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(0);
  ::prctl(PR_SET_NAME, "berth-spawner");
  ::signal(SIGPIPE, SIG_IGN);
  // A terminal's ^C is for the daemon, which ends us when it exits.
  ::signal(SIGINT, SIG_IGN);
  // Now, while we are as small as we will be and have no thread: the zygote's pages are
  // then few, and ours stay writable (it makes the shells; each fork write-protects the
  // forking process's pages).
  std::unique_ptr<ShellZygote> zygote;
  if (shells > 0) {
    try {
      zygote = ShellZygote::Start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "berth-spawner: no shell zygote (%s): creates go cold\n", e.what());
    }
  }
  // Never destroyed: the spawner ends with _exit, and its shells with it.
  auto* pool = new ShellPool(shells, std::move(zygote));
  try {
    std::thread(ReapChildren, pool).detach();
    pool->StartMaker();
  } catch (const std::exception&) {
    ::_exit(1);  // the daemon then creates containers itself
  }
  auto* workers = new Workers(pool);
  for (;;) {
    int fd = ReceiveFd(control);  // one per create
    if (fd < 0) {                 // the daemon closed the control socket
      pool->Stop();
      ::_exit(0);
    }
    workers->Submit(fd);
  }
}

}  // namespace

std::unique_ptr<Spawner> Spawner::Start(size_t shells) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    ThrowErrno("socketpair", "spawner control");
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) ThrowErrno("fork", "spawner");
  if (pid == 0) {
    ours.reset();
    SpawnerMain(theirs.release(), parent, shells);
  }
  return std::unique_ptr<Spawner>(new Spawner(pid, std::move(ours)));
}

Spawner::Spawner(pid_t pid, UniqueFd control) : pid_(pid), control_(std::move(control)) {}

Spawner::~Spawner() {
  {
    std::lock_guard lock(held_mu_);
    stopping_ = true;
    if (fetching_fd_ >= 0) ::shutdown(fetching_fd_, SHUT_RDWR);  // its read returns 0
  }
  held_cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
  held_.reset();
  control_.reset();  // the spawner exits on EOF
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR)) return;
    ::usleep(5000);
  }
  ::kill(pid_, SIGKILL);
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

UniqueFd Spawner::SendRequest(const std::string& body) {
  if (!alive_) return UniqueFd();
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return UniqueFd();
  UniqueFd request(pair[0]), theirs(pair[1]);
  const uint64_t len = body.size();
  // A small request is buffered in the socket: no need to wait for the spawner to read it.
  if (!SendFully(request.get(), &len, sizeof len) ||
      !SendFully(request.get(), body.data(), body.size())) {
    return UniqueFd();
  }
  std::lock_guard lock(send_mu_);
  try {
    SendFd(control_.get(), theirs.get(), "spawner control socket");
  } catch (const Error&) {
    alive_ = false;  // the next Create says so
    return UniqueFd();
  }
  return request;
}

namespace {

// {"<verb>": "<shape json>"}
std::string ShapeRequest(const char* verb, const ShellShape& shape) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  const std::string json = ShellShapeJson(shape);
  w.Key(verb);
  w.String(json.c_str(), static_cast<rapidjson::SizeType>(json.size()));
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace

void Spawner::Prepare(const ShellShape& next) { SendRequest(ShapeRequest("prepare", next)); }

void Spawner::Expect(const ShellShape& next) {
  if (!alive_) return;
  std::unique_ptr<Shell> dropped;  // ends outside the lock
  bool move_guess = false;
  {
    std::lock_guard lock(held_mu_);
    if (stopping_) return;
    if ((held_ && held_->shape() == next) || (fetching_ && *fetching_ == next)) return;
    dropped = std::move(held_);
    expected_ = next;
    // A fetch still waiting for the last guess ends when the spawner hears of this one.
    move_guess = fetching_.has_value();
    if (!fetcher_.joinable()) fetcher_ = std::thread([this] { FetchShells(); });
  }
  held_cv_.notify_all();
  if (move_guess) Prepare(next);
}

std::unique_ptr<Shell> Spawner::TakeShell(const ShellShape& shape) {
  std::unique_ptr<Shell> shell;
  {
    std::lock_guard lock(held_mu_);
    if (!held_ || !(held_->shape() == shape)) return nullptr;
    shell = std::move(held_);
  }
  if (!shell->alive()) return nullptr;  // killed meanwhile: its remains end with it
  return shell;
}

void Spawner::FetchShells() {
  std::unique_lock lock(held_mu_);
  for (;;) {
    held_cv_.wait(lock, [&] { return stopping_ || expected_.has_value(); });
    if (stopping_) return;
    const ShellShape shape = *expected_;
    expected_.reset();
    fetching_ = shape;
    lock.unlock();
    UniqueFd request = SendRequest(ShapeRequest("take", shape));
    lock.lock();
    if (stopping_) return;
    if (!request) {
      fetching_.reset();
      continue;  // the spawner is gone: creates go cold, and Expect asks no more
    }
    fetching_fd_ = request.get();
    lock.unlock();
    std::string reply;
    std::vector<UniqueFd> fds;
    std::unique_ptr<Shell> shell;
    try {
      if (ReceiveMessageWithFds(request.get(), &reply, &fds, "spawner shell hand-over", 4096)) {
        shell = Shell::FromMessage(shape, reply, std::move(fds));
      }
    } catch (const std::exception&) {
      // Stopped, or a reply out of step: no shell this time; creates go through the spawner.
    }
    std::unique_ptr<Shell> dropped;  // ends outside the lock
    lock.lock();
    fetching_fd_ = -1;
    fetching_.reset();
    // Kept unless another shape is expected by now (the slot moved on meanwhile).
    if (shell && !stopping_ && !expected_) {
      dropped = std::move(held_);
      held_ = std::move(shell);
    }
    lock.unlock();
    dropped.reset();
    shell.reset();
    request.reset();
    lock.lock();
  }
}

StateRecord Spawner::Create(const CreateOptions& options, std::string_view spec_json,
                            bool* used_shell) {
  if (options.inherit_stdio || !options.console_socket.empty()) {
    throw Error(ErrorKind::kInternal,
                "spawner: inherit_stdio and console_socket are not supported");
  }
  auto gone = [this, &options](const std::string& why) {
    alive_ = false;
    return Error(ErrorKind::kSystem, "create container \"" + options.id +
                                         "\": container spawner (pid " + std::to_string(pid_) +
                                         ") is gone: " + why);
  };
  if (!alive_) throw gone("it died before");
  PhaseTimer timer("spawner client");
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    ThrowErrno("socketpair", "spawner request");
  }
  UniqueFd request(pair[0]);
  {
    UniqueFd theirs(pair[1]);
    std::lock_guard lock(send_mu_);
    try {
      SendFd(control_.get(), theirs.get(), "spawner control socket");
    } catch (const Error& e) {
      throw gone(e.message());
    }
  }
  const std::string body = spec_json.empty()
                               ? EncodeRequest(options, spec::SerializeSpec(options.spec))
                               : EncodeRequest(options, spec_json);
  const uint64_t len = body.size();
  if (!SendFully(request.get(), &len, sizeof len) ||
      !SendFully(request.get(), body.data(), body.size())) {
    throw gone("request not taken");
  }
  timer.Mark("sent");
  std::string line;
  char buf[512];
  while (line.find('\n') == std::string::npos) {
    ssize_t n = ::read(request.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw gone("no reply");
    line.append(buf, static_cast<size_t>(n));
  }
  line.resize(line.find('\n'));
  if (line == "ok" || line == "ok shell") {
    if (used_shell) *used_shell = line == "ok shell";
    timer.Mark("reply");
    return ReadStateRecord(options.state_root, options.id);
  }
  // "err <kind> <errno> <message>"
  int kind = static_cast<int>(ErrorKind::kInternal), sys_errno = 0, consumed = 0;
  if (line.rfind("err ", 0) != 0 ||
      std::sscanf(line.c_str(), "err %d %d %n", &kind, &sys_errno, &consumed) < 2) {
    throw Error(ErrorKind::kInternal, "spawner: bad reply \"" + line + "\"");
  }
  if (kind < 0 || kind > static_cast<int>(ErrorKind::kInternal)) {
    kind = static_cast<int>(ErrorKind::kInternal);
  }
  throw Error(static_cast<ErrorKind>(kind), line.substr(static_cast<size_t>(consumed)), sys_errno);
}

}  // namespace berth::container
