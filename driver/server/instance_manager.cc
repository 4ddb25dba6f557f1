#include "driver/server/instance_manager.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "driver/server/console_follow.h"
#include "driver/server/instance_security.h"
#include "driver/server/names.h"
#include "driver/server/test_point.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/phase_timer.h"
#include "runtime/common/scope_guard.h"
#include "runtime/common/unique_fd.h"
#include "runtime/linux/container.h"
#include "runtime/linux/idmap_mount.h"
#include "runtime/security/security.h"
#include "runtime/spec/parser.h"
#include "runtime/store/layer/mount.h"

namespace berth::server {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Invalid(const std::string& msg) { throw Error(ErrorKind::kInvalidArgument, msg); }

// Reads a file of the image's root without following its symlinks out of it: the root is
// the tenant's, so /etc/passwd may be a link to anywhere on the host.
std::string ReadInRoot(const std::string& root, const char* rel) {
  UniqueFd dir(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return "";
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  UniqueFd fd(static_cast<int>(::syscall(SYS_openat2, dir.get(), rel, &how, sizeof how)));
  if (!fd) return "";
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0 && out.size() < (1 << 20)) out.append(buf, n);
  return out;
}

void AllowTraverse(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) ThrowErrno("stat", dir);
  if ((st.st_mode & 0011) != 0011 && ::chmod(dir.c_str(), (st.st_mode & 07777) | 0011) != 0) {
    ThrowErrno("chmod", dir);
  }
}

// berthd makes its own directories searchable (AllowTraverse); it does not change the
// modes of directories above state_dir, which are the operator's. One that others cannot
// search would make every spawn fail with EACCES at the mount: refuse to start instead.
void CheckAncestorsSearchable(const std::string& dir) {
  std::string path = dir;
  while (true) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return;
    path.resize(slash);
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) ThrowErrno("stat", path);
    if ((st.st_mode & 0001) == 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  "[security] userns: " + path + " (above state_dir " + dir +
                      ") is not searchable by others, so an instance's root in its user "
                      "namespace cannot reach its rootfs: chmod o+x " +
                      path + ", move state_dir, or set [security] userns = false");
    }
  }
}

// Where a root's idmapped lower layers are mounted while its overlay is being made.
std::string IdmapScratch(const std::string& instance_dir) {
  return JoinPath(instance_dir, "idmap-scratch");
}

bool IsMountPoint(const std::string& path) {
  auto points = store::MountPoints();
  return std::find(points.begin(), points.end(), path) != points.end();
}

std::string ReadFd(int fd, uint64_t max, bool* truncated) {
  std::string out;
  if (::lseek(fd, 0, SEEK_SET) < 0) ThrowErrno("lseek", "exec output");
  char buf[16384];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    size_t room = max - std::min<uint64_t>(max, out.size());
    if (static_cast<size_t>(n) > room) {
      out.append(buf, room);
      *truncated = true;
      break;
    }
    out.append(buf, n);
  }
  return out;
}

bool PowerStateAllows(PowerState s, std::initializer_list<PowerState> allowed) {
  for (PowerState a : allowed) {
    if (s == a) return true;
  }
  return false;
}

[[noreturn]] void WrongState(const std::string& action, const std::string& uuid, PowerState s) {
  throw InvalidStateError(
      "cannot " + action + " instance " + uuid + " while it is " + PowerStateName(s), s);
}

bool SameLiveState(const InstanceView& a, const InstanceView& b) {
  return a.power_state == b.power_state && a.pid == b.pid && a.exit_code == b.exit_code &&
         a.exit_signal == b.exit_signal && a.oom_killed == b.oom_killed &&
         a.task_state == b.task_state;
}

}  // namespace

std::string SnapshotKey(const std::string& uuid) { return "instance-" + uuid; }

std::optional<PowerState> IdempotentStateOf(const std::string& action) {
  if (action == "start") return PowerState::kRunning;
  if (action == "stop") return PowerState::kShutdown;
  if (action == "pause") return PowerState::kPaused;
  if (action == "suspend") return PowerState::kSuspended;
  return std::nullopt;
}

SnapshotRequest ParseSnapshotRequest(const rapidjson::Value& body) {
  SnapshotRequest r;
  r.name = OptString(body, "name", "name").value_or("");
  r.image_id = OptString(body, "image_id", "image_id").value_or("");
  if (r.name.empty() && r.image_id.empty()) Invalid("name: missing (or give image_id)");
  if (r.name.empty()) r.name = r.image_id;
  if (r.name.size() > 255) Invalid("name: at most 255 characters");
  for (char c : r.name) {
    if (static_cast<unsigned char>(c) < 0x20) Invalid("name: control characters are not allowed");
  }
  r.do_export = OptBool(body, "export", "export").value_or(false);
  r.export_format = OptString(body, "export_format", "export_format").value_or("docker-archive");
  store::ParseExportFormat(r.export_format);  // kInvalidArgument for another
  return r;
}

void WriteInstanceJson(JsonWriter& w, const InstanceView& v) {
  const InstanceRecord& r = v.record;
  w.StartObject();
  WriteString(w, "uuid", r.uuid);
  WriteString(w, "name", r.name);
  WriteString(w, "hostname", r.hostname);
  WriteString(w, "image", r.image_id);
  WriteString(w, "image_ref", r.image_ref);
  WriteFlavor(w, "flavor", r.flavor);
  w.Key("power_state");
  w.Int(static_cast<int>(v.power_state));
  WriteString(w, "power_state_name", PowerStateName(v.power_state));
  w.Key("task_state");
  if (v.task_state.empty()) {
    w.Null();
  } else {
    w.String(v.task_state.c_str());
  }
  WriteString(w, "desired_state", DesiredStateName(r.desired));
  w.Key("pid");
  w.Int(v.pid);
  if (v.exit_code) {
    w.Key("exit_code");
    w.Int(*v.exit_code);
  }
  if (v.exit_signal) {
    w.Key("exit_signal");
    w.Int(*v.exit_signal);
  }
  w.Key("oom_killed");
  w.Bool(v.oom_killed);
  WriteNetworkJson(w, v.network);
  WriteStringArray(w, "command", r.command);
  WriteStringMap(w, "metadata", r.metadata);
  WriteString(w, "created_at", r.created_at);
  WriteString(w, "launched_at", r.launched_at);
  w.EndObject();
}

InstanceManager::InstanceManager(const Config& config, store::ImageStore& images, Metrics& metrics)
    : config_(config), images_(images), metrics_(metrics) {
  cgroup_host_ = cgroup::DetectCgroupHost();
  if (cgroup_host_.version == cgroup::CgroupVersion::kV1) {
    auto it = cgroup_host_.v1_mounts.find("memory");
    swap_accounting_ = it != cgroup_host_.v1_mounts.end() &&
                       PathExists(it->second + "/memory.memsw.limit_in_bytes");
  }
  bounding_caps_ = security::ParseCapabilities(security::DefaultCapabilities()).bounding;
  MakeDirs(config_.instances_dir(), 0700);
  if (config_.userns) {
    ranges_ = std::make_unique<UsernsRanges>(config_.subid_dir, config_.userns_user,
                                             config_.userns_range_size, config_.instances_dir());
    // An init in a user namespace finds its root by path as an unprivileged host uid:
    // the state and instances directories must be searchable (not readable) by others.
    CheckAncestorsSearchable(config_.state_dir);
    AllowTraverse(config_.state_dir);
    AllowTraverse(config_.instances_dir());
    if (config_.storage_driver == "overlay") {
      auto support = container::ProbeIdmapSupport(config_.state_dir);
      if (!support.overlay_over_idmapped) {
        throw Error(ErrorKind::kUnsupported,
                    "[security] userns: this kernel or the filesystem of " + config_.state_dir +
                        " cannot put an overlay over idmapped layers (" + support.detail +
                        "); set [security] userns = false or use a kernel >= 5.19");
      }
    }
  }
  MakeDirs(config_.containers_dir(), 0700);
  network_ = std::make_unique<InstanceNetwork>(config_.network, config_.state_dir);
  // vfs and btrfs roots are private copies whose ownership is shifted once, on their first
  // mount, and marked so in the instance's dir: a root made elsewhere would be shifted twice.
  if (config_.rootfs_pool && config_.storage_driver == "overlay") {
    rootfs_pool_ = std::make_unique<RootfsPool>(JoinPath(config_.state_dir, "rootfs-pool"), images_,
                                                image_mu_, userns_cache_,
                                                [this] { return spawns_in_flight_.load() == 0; });
    rootfs_pool_->RemoveLeftovers();
  }
}

std::string InstanceManager::InstanceDir(const std::string& uuid) const {
  return JoinPath(config_.instances_dir(), uuid);
}
std::string InstanceManager::RootfsDir(const std::string& uuid) const {
  return JoinPath(InstanceDir(uuid), "rootfs");
}
std::string InstanceManager::RecordPath(const std::string& uuid) const {
  return JoinPath(InstanceDir(uuid), "instance.json");
}
std::string InstanceManager::CgroupPath(const std::string& uuid) const {
  return config_.cgroup_parent + "/" + uuid;
}
std::string InstanceManager::DiskKey(const std::string& uuid, const InstanceRecord* record) const {
  auto key = ReadFileIfExists(JoinPath(InstanceDir(uuid), "disk"));
  if (key && !key->empty()) return *key;
  return record && !record->disk.empty() ? record->disk : SnapshotKey(uuid);
}
bool InstanceManager::ContainerExists(const std::string& uuid) const {
  return PathExists(JoinPath(container::StateDir(config_.containers_dir(), uuid), "state.json"));
}

InstanceManager::InstancePtr InstanceManager::Find(const std::string& uuid) {
  std::shared_lock lock(map_mu_);
  auto it = instances_.find(uuid);
  if (it == instances_.end()) {
    throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  }
  return it->second;
}

void InstanceManager::SetTask(Instance& inst, const std::string& task) {
  {
    std::lock_guard lock(inst.mu);
    inst.task = task;
    ++inst.generation;
  }
  MarkListDirty();
}

void InstanceManager::SaveRecord(Instance& inst, const InstanceRecord& record) {
  WriteFileAtomic(RecordPath(record.uuid), InstanceToJson(record), 0600);
  AdoptRecord(inst, record);
}

void InstanceManager::AdoptRecord(Instance& inst, const InstanceRecord& record) {
  {
    std::lock_guard lock(inst.mu);
    inst.record = record;
    ++inst.generation;
  }
  MarkListDirty();
}

InstanceView InstanceManager::ViewOf(Instance& inst) {
  InstanceRecord record;
  std::string task;
  uint64_t generation;
  {
    std::lock_guard lock(inst.mu);
    record = inst.record;
    task = inst.task;
    generation = inst.generation;
  }
  InstanceView v = ViewOf(record, task);
  bool changed = false;
  {
    std::lock_guard lock(inst.mu);
    if (inst.generation == generation) {
      changed = !inst.cached || !SameLiveState(*inst.cached, v);
      inst.cached = v;
    }
  }
  if (changed) MarkListDirty();
  return v;
}

InstanceView InstanceManager::CachedViewOf(Instance& inst) {
  {
    std::lock_guard lock(inst.mu);
    if (inst.task == "spawning" || inst.task == "deleting") {
      return ViewOf(inst.record, inst.task);  // NOSTATE, asks nothing
    }
    if (inst.cached) {
      InstanceView v = *inst.cached;
      v.record = inst.record;
      v.task_state = inst.task;
      if (inst.record.desired == DesiredState::kStopped) {
        v.power_state = PowerState::kShutdown;
        v.pid = 0;
      }
      return v;
    }
  }
  return ViewOf(inst);  // first look at an instance
}

void InstanceManager::RefreshAll() {
  std::vector<InstancePtr> all;
  {
    std::shared_lock lock(map_mu_);
    for (const auto& [uuid, inst] : instances_) all.push_back(inst);
  }
  for (const auto& inst : all) ViewOf(*inst);
}

void InstanceManager::RefreshOne(const std::string& uuid) {
  InstancePtr inst;
  {
    std::shared_lock lock(map_mu_);
    auto it = instances_.find(uuid);
    if (it == instances_.end()) return;  // a container no instance owns (a leftover)
    inst = it->second;
  }
  ViewOf(*inst);
}

void InstanceManager::StartRefresher(int interval_ms) {
  if (!watcher_) {
    watcher_ = std::make_unique<ContainerWatcher>(
        config_.containers_dir(), [this](const std::string& id) { RefreshOne(id); },
        [this] { RefreshAll(); });
  }
  if (interval_ms <= 0 || refresher_.joinable()) return;
  refresher_ = std::thread([this, interval_ms] {
    std::unique_lock lock(refresher_mu_);
    while (!refresher_cv_.wait_for(lock, std::chrono::milliseconds(interval_ms),
                                   [this] { return refresher_stop_; })) {
      lock.unlock();
      try {
        RefreshAll();
      } catch (const std::exception& e) {
        spdlog::warn("refreshing instance states: {}", e.what());
      }
      lock.lock();
    }
  });
}

void InstanceManager::StopRefresher() {
  watcher_.reset();
  {
    std::lock_guard lock(refresher_mu_);
    refresher_stop_ = true;
  }
  refresher_cv_.notify_all();
  if (refresher_.joinable()) refresher_.join();
}

InstanceManager::~InstanceManager() {
  StopRefresher();
  StopRootfsPool();
}

void InstanceManager::StopRootfsPool() {
  if (rootfs_pool_) rootfs_pool_->Stop();
}

void InstanceManager::DropPooledRoot(const store::ImageRecord& image) {
  if (!rootfs_pool_) return;
  std::set<std::string> chain;
  for (const auto& l : image.layers) chain.insert(l.chain_id.str());
  if (rootfs_pool_->DropIf([&](const std::string& top) { return chain.count(top) > 0; })) {
    spdlog::info("rootfs pool: the root made ahead on image {} dropped", image.id.str());
  }
}

InstanceView InstanceManager::ViewOf(const InstanceRecord& record, const std::string& task) {
  InstanceView v;
  v.record = record;
  v.task_state = task;
  v.network = network_->View(record.uuid);
  if (task == "spawning" || task == "deleting") {
    v.power_state = PowerState::kNoState;
    return v;
  }
  if (record.desired == DesiredState::kStopped) {
    v.power_state = PowerState::kShutdown;
    return v;
  }
  if (!ContainerExists(record.uuid)) {
    // The container vanished under a running instance (a host reboot, a manual delete).
    v.power_state = PowerState::kCrashed;
    return v;
  }
  container::ContainerInfo info;
  try {
    info = container::QueryContainer(config_.containers_dir(), record.uuid);
  } catch (const Error& e) {
    spdlog::warn("instance {}: query container: {}", record.uuid, e.message());
    v.power_state = PowerState::kCrashed;
    return v;
  }
  switch (info.status) {
    case container::Status::kCreated:
      v.power_state = PowerState::kNoState;
      break;
    case container::Status::kRunning:
      v.power_state = PowerState::kRunning;
      v.pid = info.record.init_pid;
      break;
    case container::Status::kPaused:
      v.power_state =
          record.desired == DesiredState::kSuspended ? PowerState::kSuspended : PowerState::kPaused;
      v.pid = info.record.init_pid;
      break;
    case container::Status::kStopped:
      // A VM that powered itself off is SHUTDOWN; one killed (by a signal or the OOM
      // killer) has CRASHED.
      v.power_state =
          (info.exit_signal || info.oom_killed) ? PowerState::kCrashed : PowerState::kShutdown;
      break;
  }
  v.exit_code = info.exit_code;
  v.exit_signal = info.exit_signal;
  v.oom_killed = info.oom_killed;
  return v;
}

void InstanceManager::EnsureRootfsMounted(const InstanceRecord& record) {
  const std::string& uuid = record.uuid;
  const std::string rootfs = RootfsDir(uuid);
  if (IsMountPoint(rootfs)) return;
  MakeDirs(rootfs, 0755);
  MountInstanceRootfs(images_.layers().Mounts(DiskKey(record)), rootfs,
                      UsernsRanges::Load(InstanceDir(uuid)), IdmapScratch(InstanceDir(uuid)),
                      userns_cache_);
}

bool InstanceManager::CreatedNotStarted(const std::string& uuid) const {
  return ContainerExists(uuid) &&
         container::QueryContainer(config_.containers_dir(), uuid).status ==
             container::Status::kCreated;
}

container::StateRecord InstanceManager::MakeContainer(container::CreateOptions& options,
                                                      std::string_view spec_json,
                                                      bool* used_shell) {
  if (spawner_ && config_.shells > 0) {
    // The shell made for this slot, held here: claimed without a request to the spawner.
    // A claim forks nothing, so it costs berthd's size nothing.
    std::unique_ptr<container::Shell> shell;
    if (auto shape = container::ShellShapeOf(options.spec)) shell = spawner_->TakeShell(*shape);
    if (shell) {
      spdlog::debug("instance {}: claims the shell held for its slot (init {})", options.id,
                    shell->init_pid());
      options.caller_reaps_monitor = true;  // the monitor is the spawner's child: it reaps it
      if (used_shell) *used_shell = true;
      return container::CreateContainer(options, std::move(shell), spec_json);
    }
  }
  if (spawner_ && spawner_->alive()) {
    // The spawner's create makes what is missing of the cgroup: none of it, once this is done.
    if (options.cgroup_made_ahead.valid()) options.cgroup_made_ahead.get();
    try {
      return spawner_->Create(options, spec_json, used_shell);
    } catch (const Error& e) {
      if (spawner_->alive()) throw;  // CreateContainer's own error: it rolled back
      spdlog::error("{}; berthd creates containers itself from now on", e.message());
      // It died mid-create: whatever it had made of this container goes.
      try {
        if (ContainerExists(options.id)) {
          container::DeleteContainer(options.state_root, options.id, true);
        }
      } catch (const Error& cleanup) {
        spdlog::error("instance {}: remove half-made container: {}", options.id, cleanup.message());
      }
      throw;
    }
  }
  return container::CreateContainer(options);
}

InstanceManager::Launched InstanceManager::Launch(const InstanceRecord& record,
                                                  const store::ImageConfig& image, bool start,
                                                  const std::optional<IdRange>& next_range,
                                                  const std::function<void()>& once_created,
                                                  const SpawnInputs* spawn) {
  Launched launched;
  PhaseTimer timer("launch");
  const std::string rootfs = RootfsDir(record.uuid);
  SpecInputs in;
  in.instance = &record;
  in.image = &image.config;
  in.rootfs = rootfs;
  in.etc_passwd = ReadInRoot(rootfs, "etc/passwd");
  in.etc_group = ReadInRoot(rootfs, "etc/group");
  in.bounding_caps = bounding_caps_;
  in.swap_accounting = swap_accounting_;
  container::CreateOptions o;
  o.id = record.uuid;
  o.state_root = config_.containers_dir();
  o.bundle = InstanceDir(record.uuid);
  o.spec = BuildInstanceSpec(in);
  ApplySecurityProfile(o.spec, ParseSecurityRequest(record.flavor, config_.allow_privileged),
                       spawn ? spawn->id_range : UsernsRanges::Load(InstanceDir(record.uuid)));
  if (next_range) launched.next_shell = container::ShellShapeOf(o.spec);
  if (launched.next_shell) {
    launched.next_shell->uid_mappings = next_range->UidMappings();
    launched.next_shell->gid_mappings = next_range->GidMappings();
  }
  // exec reads the container's spec from its bundle. Written anew by every launch, from the
  // record, so a power loss costs nothing here: no fsync on the spawn path.
  const std::string spec_json = spec::SerializeSpec(o.spec);
  WriteFileAtomic(JoinPath(o.bundle, "config.json"), spec_json, 0600, Durability::kAtomicOnly);
  o.cgroup_path = CgroupPath(record.uuid);
  if (spawn) o.cgroup_made_ahead = spawn->cgroup_made;
  o.console_max = config_.console_max_bytes;
  // The namespace exists, the process has not run: the network is there before it starts.
  // A shell's init exists before its claim: its network is attached while it builds its
  // root, its record published once the container exists, and its monitor starts it once it
  // is ready. A cold create's caller learns the init's pid from the create: it does all
  // three after it.
  auto attach = [&](pid_t init_pid) {
    network_->Attach(record.uuid, init_pid, rootfs, record.hostname,
                     spawn ? spawn->network : network_->Load(InstanceDir(record.uuid)));
  };
  // From a shell claimed by this process: both hooks ran, and its monitor starts it.
  bool claimed_here = false;
  o.before_monitor_claim = [&](pid_t init_pid) {
    claimed_here = true;
    attach(init_pid);
  };
  o.once_created = once_created;
  o.start_when_ready = start;
  timer.Mark("spec");
  container::StateRecord state = MakeContainer(o, spec_json, &launched.from_shell);
  timer.Mark("create");
  Rollback rollback;
  rollback.Add([&] { container::DeleteContainer(config_.containers_dir(), record.uuid, true); });
  if (!claimed_here) {
    attach(state.init_pid);
    timer.Mark("network");
    if (once_created) once_created();
    if (start) container::StartContainer(config_.containers_dir(), record.uuid);
  }
  timer.Mark("start");
  rollback.Commit();
  return launched;
}

InstanceView InstanceManager::Create(const rapidjson::Value& body) {
  auto started = Clock::now();
  spawns_in_flight_.fetch_add(1);
  ScopeGuard in_flight([this] { spawns_in_flight_.fetch_sub(1); });
  InstanceRecord rec;
  std::string uuid = OptString(body, "uuid", "uuid").value_or("");
  if (uuid.empty()) {
    uuid = GenerateUuid();
  } else if (!IsUuid(uuid)) {
    Invalid("uuid: want a uuid like 0e4f5a9c-1b2d-4c3e-8f70-123456789abc");
  }
  for (char& c : uuid) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  rec.uuid = uuid;
  rec.name = OptString(body, "name", "name").value_or("");
  if (rec.name.empty()) rec.name = GenerateName();
  if (rec.name.size() > 255) Invalid("name: at most 255 characters, as Nova allows");
  for (char c : rec.name) {
    if (static_cast<unsigned char>(c) < 0x20) Invalid("name: control characters are not allowed");
  }
  rec.hostname = OptString(body, "hostname", "hostname").value_or("");
  if (rec.hostname.empty()) {
    rec.hostname = HostnameFromName(rec.name);
  } else if (!IsValidHostname(rec.hostname)) {
    Invalid("hostname: want 1..63 of a-z, A-Z, 0-9 and '-', not starting or ending with '-'");
  }
  auto image_ref = OptString(body, "image", "image");
  if (!image_ref || image_ref->empty()) Invalid("image: missing");
  rec.image_ref = *image_ref;
  const rapidjson::Value* flavor = OptObject(body, "flavor", "flavor");
  if (flavor) rec.flavor = ParseFlavor(*flavor, "flavor");
  rec.command = OptStringArray(body, "command", "command").value_or(std::vector<std::string>{});
  rec.env = OptStringArray(body, "env", "env").value_or(std::vector<std::string>{});
  rec.metadata =
      OptStringMap(body, "metadata", "metadata").value_or(std::map<std::string, std::string>{});
  rec.user_data = OptString(body, "user_data", "user_data").value_or("");
  if (rec.user_data.size() > 65535) Invalid("user_data: at most 65535 bytes, as Nova allows");
  FlavorToResources(rec.flavor, swap_accounting_);  // extra specs checked before anything is made
  NetworkRequest net_request = ParseNetworkRequest(body, config_.network);
  const bool start_now = OptBool(body, "start", "start").value_or(true);
  network_->Check(net_request);
  const SecurityRequest security = ParseSecurityRequest(rec.flavor, config_.allow_privileged);
  rec.created_at = container::NowRfc3339();
  rec.desired = DesiredState::kRunning;

  auto inst = std::make_shared<Instance>();
  inst->record = rec;
  inst->task = "spawning";
  std::lock_guard op(inst->op_mu);
  {
    std::unique_lock lock(map_mu_);
    if (instances_.count(uuid) || PathExists(InstanceDir(uuid))) {
      throw Error(ErrorKind::kAlreadyExists, "instance " + uuid + " already exists");
    }
    instances_[uuid] = inst;
  }
  MarkListDirty();
  Rollback rollback;
  rollback.Add([this, uuid] {
    std::unique_lock lock(map_mu_);
    instances_.erase(uuid);
    MarkListDirty();
  });

  // The records made before the container (network, id range, snapshot) are synced while
  // the container is made, and before the instance's record, its commit point.
  DeferredFsyncs deferred;
  PhaseTimer timer("spawn");
  const std::string dir = InstanceDir(uuid);
  if (::mkdir(dir.c_str(), 0700) != 0) ThrowErrno("mkdir", dir);
  rollback.Add([dir] { RemoveTree(dir); });
  // The cgroup's directories (a mkdir in each hierarchy, ~0.7 ms with v1's eight) are made
  // while the rest is: the create waits for them. After the instance's directory, so that
  // a berthd killed from here on leaves a directory the next start tears down, cgroup too.
  auto make_cgroup = [host = cgroup_host_, path = CgroupPath(uuid)] {
    cgroup::OpenCgroup(host, path)->Create();
  };
  std::shared_future<void> cgroup_made = background_.Run(make_cgroup).share();
  rollback.Add([this, uuid, cgroup_made] {
    cgroup_made.wait();
    try {
      RemoveCgroup(uuid);
    } catch (const Error& e) {
      spdlog::error("instance {}: remove the cgroup of a spawn undone: {}", uuid, e.message());
    }
  });
  network_->Save(dir, net_request);
  std::optional<IdRange> id_range, next_range;
  if (ranges_ && !security.privileged) {
    ::chmod(dir.c_str(), 0711);  // the init reaches its root through here as the range's root
    timer.Mark("dir+network");
    id_range = ranges_->Allocate(dir);
    next_range = ranges_->Peek();
    // Made ahead for the slot the next spawn gets: its idmapped mounts, its shell (Prepare).
    if (next_range) userns_cache_.Prewarm(*next_range);
    timer.Mark("id range");
  }

  // May download (a Glance image): outside image_mu_, while the instance shows "spawning".
  const std::string store_ref =
      image_resolver_ ? image_resolver_(rec.image_ref, body) : rec.image_ref;
  store::ImageRecord image;
  std::vector<store::Mount> snapshot_mounts;
  std::optional<RootfsPool::Root> pooled;  // the root made ahead for this image and slot
  std::string disk = SnapshotKey(uuid);
  {
    // An image cannot be removed between being resolved and getting a snapshot on it.
    std::lock_guard image_lock(image_mu_);
    image = images_.Get(store_ref);
    timer.Mark("image");
    if (rootfs_pool_ && !security.privileged) {
      pooled = rootfs_pool_->Take({"", image.top_chain().str(), id_range});
    }
    if (pooled) {
      disk = rec.disk = pooled->key;  // the record says so: no snapshot record rewritten
    } else {
      snapshot_mounts = images_.layers().Prepare(disk, image.top_chain().str());
    }
    timer.Mark("snapshot");
  }
  rollback.Add([this, disk] { images_.layers().Remove(disk); });
  rec.image_id = image.id.str();
  rec.stop_signal = image.config.config.stop_signal;
  ParseSignal(rec.stop_signal);

  // The record, the commit point, is complete now: it is written and synced while the root
  // is mounted and the container made, under a temp name, after the files it names (a file
  // written from here on is synced at once); it is renamed into place once the container
  // exists (from a shell: while its init finishes its root; cold: while it starts), and the
  // directory's fsync overlaps that. A berthd killed after it finds a record whose container
  // is running, or created and not started with launched_at set: Recover starts it (a
  // "start": false spawn records no launched_at until its start). Should a shell's init
  // also fail its set-up in that window, the instance is listed SHUTDOWN, as one whose
  // process exited: Nova, which got no answer, deletes it.
  const std::string record_path = RecordPath(uuid);
  if (start_now) rec.launched_at = container::NowRfc3339();
  // Each fsync is a disk write (~1.5 ms here): the files the record names and the record
  // itself are synced side by side, and the record is staged once both are done, so what
  // it names is on disk before it.
  Pending<void> named_synced = background_.Start([files = deferred.Release()] {
    PhaseTimer timer("record");
    FsyncFilesAndDirs(files);
    timer.Mark("named synced");
  });
  Pending<StagedFile> staged =
      background_.Start([&record_path, &named_synced, json = InstanceToJson(rec)] {
        PhaseTimer timer("record");
        StagedFile file = StageFile(record_path, json, 0600);
        timer.Mark("staged");
        try {
          named_synced.get();
        } catch (...) {
          DiscardStagedFile(file);
          throw;
        }
        timer.Mark("both synced");
        return file;
      });

  auto prepared = Clock::now();
  const std::string rootfs = RootfsDir(uuid);
  MakeDirs(rootfs, 0755);
  if (pooled) {
    try {
      RootfsPool::Attach(*pooled, rootfs);
    } catch (const Error& e) {
      spdlog::warn("instance {}: the root made ahead did not move in ({}); mounting it anew", uuid,
                   e.message());
      pooled.reset();
      snapshot_mounts = images_.layers().Mounts(disk);
    }
  }
  if (!pooled) {
    MountInstanceRootfs(snapshot_mounts, rootfs, id_range, IdmapScratch(dir), userns_cache_);
  }
  rollback.Add([rootfs] { store::UnmountAll(rootfs, true); });
  if (pooled) TestPausePoint("spawn-after-pooled-root");
  timer.Mark("rootfs");

  auto mounted = Clock::now();
  rollback.Add([this, uuid] { network_->Detach(uuid); });
  Pending<void> recorded;
  auto publish_record = [&] {
    TestPausePoint("spawn-after-launch");
    recorded = background_.Start([&staged] {
      PhaseTimer timer("record");
      StagedFile file = staged.get();
      timer.Mark("stage waited");
      PublishStagedFile(file);
      timer.Mark("published");
    });
    if (TestPauseWanted("spawn-after-record")) {
      recorded.wait();
      TestPausePoint("spawn-after-record");
    }
  };
  // A record must not outlive what it names: it goes first when a spawn is undone.
  auto unpublish_record = [&] {
    if (recorded.valid()) {
      recorded.wait();
      ::unlink(record_path.c_str());
    } else {
      try {
        DiscardStagedFile(staged.get());
      } catch (const Error&) {
        // Not staged: nothing to remove.
      }
    }
  };
  Launched launched;
  try {
    const SpawnInputs inputs{id_range, net_request, cgroup_made};
    launched = Launch(rec, image.config, start_now, next_range, publish_record, &inputs);
  } catch (...) {
    unpublish_record();
    throw;
  }
  rollback.Add([this, uuid] { container::DeleteContainer(config_.containers_dir(), uuid, true); });
  auto launched_at = Clock::now();
  try {
    recorded.get();
  } catch (...) {
    ::unlink(record_path.c_str());
    throw;
  }
  AdoptRecord(*inst, rec);
  rollback.Commit();
  SetTask(*inst, "");
  double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  metrics_.ObserveSpawn(seconds);
  auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  spdlog::info(
      "instance {} ({}) spawned from {} in {:.1f} ms (snapshot {:.1f}, mount {:.1f}, "
      "container {:.1f}{}, record {:.1f}){}",
      uuid, rec.name, rec.image_id, seconds * 1000, ms(prepared - started), ms(mounted - prepared),
      ms(launched_at - mounted), launched.from_shell ? " from a shell" : "",
      ms(Clock::now() - launched_at), pooled ? "; root made ahead" : "");
  // Now that this spawn is done: making the next one's shell costs about a create, its
  // root a snapshot and its mounts (on the pool's thread).
  if (spawns_in_flight_.load() == 1) {
    if (launched.next_shell && spawner_ && config_.shells > 0) {
      spawner_->Expect(*launched.next_shell);
    }
    if (rootfs_pool_ && !security.privileged && (!ranges_ || next_range)) {
      rootfs_pool_->Fill({rec.image_id, image.top_chain().str(), next_range});
    }
  }
  return ViewOf(*inst);
}

std::vector<InstanceView> InstanceManager::List() {
  std::vector<InstancePtr> all;
  {
    std::shared_lock lock(map_mu_);
    for (const auto& [uuid, inst] : instances_) all.push_back(inst);
  }
  std::vector<InstanceView> out;
  out.reserve(all.size());
  for (const auto& inst : all) out.push_back(CachedViewOf(*inst));
  return out;
}

std::shared_ptr<const std::string> InstanceManager::ListJson() {
  std::lock_guard lock(list_mu_);
  // Read before building: a change during the build leaves the version newer than ours.
  uint64_t version = list_version_.load(std::memory_order_relaxed);
  if (list_json_ && list_json_version_ == version) return list_json_;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  w.Key("instances");
  w.StartArray();
  for (const auto& v : List()) WriteInstanceJson(w, v);
  w.EndArray();
  w.EndObject();
  list_json_ = std::make_shared<const std::string>(buf.GetString(), buf.GetSize());
  list_json_version_ = version;
  return list_json_;
}

InstanceView InstanceManager::Get(const std::string& uuid) { return ViewOf(*Find(uuid)); }

void InstanceManager::RemoveCgroup(const std::string& uuid) {
  auto cg = cgroup::OpenCgroup(cgroup_host_, CgroupPath(uuid));
  cg->KillAll();
  cg->Destroy();
}

void InstanceManager::TearDown(const std::string& uuid, const InstanceRecord* record) {
  if (ContainerExists(uuid)) {
    container::DeleteContainer(config_.containers_dir(), uuid, true);
  } else {
    // A container whose state vanished may still have a cgroup.
    try {
      RemoveCgroup(uuid);
    } catch (const Error&) {
    }
  }
  TestPausePoint("delete-mid-teardown");
  store::UnmountAll(RootfsDir(uuid), true);
  network_->Detach(uuid);
  std::set<std::string> keys = {DiskKey(uuid, record), SnapshotKey(uuid)};
  if (record && !record->disk.empty()) keys.insert(record->disk);
  for (const auto& key : keys) {
    try {
      images_.layers().Remove(key);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kNotFound) throw;
    }
  }
  RemoveTree(InstanceDir(uuid));
}

void InstanceManager::Delete(const std::string& uuid) {
  InstancePtr inst = Find(uuid);
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  SetTask(*inst, "deleting");
  // Unlinked first: a crash from here on leaves a directory without a record, which the
  // next start removes completely.
  if (::unlink(RecordPath(uuid).c_str()) != 0 && errno != ENOENT) {
    SetTask(*inst, "");
    ThrowErrno("unlink", RecordPath(uuid));
  }
  {
    UniqueFd dir(::open(InstanceDir(uuid).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir) ::fsync(dir.get());
  }
  InstanceRecord record;
  {
    std::lock_guard lock(inst->mu);
    record = inst->record;
  }
  {
    std::unique_lock lock(map_mu_);
    instances_.erase(uuid);
    inst->gone = true;
  }
  MarkListDirty();
  TearDown(uuid, &record);
  spdlog::info("instance {} deleted", uuid);
}

void InstanceManager::PowerOff(const InstanceRecord& record, int timeout_s) {
  const std::string& uuid = record.uuid;
  const std::string root = config_.containers_dir();
  if (ContainerExists(uuid)) {
    auto info = container::QueryContainer(root, uuid);
    if (info.status == container::Status::kPaused) {
      container::ResumeContainer(root, uuid);  // a frozen init cannot act on a signal
      info.status = container::Status::kRunning;
    }
    if (info.status == container::Status::kRunning && timeout_s > 0) {
      try {
        container::KillContainer(root, uuid, ParseSignal(record.stop_signal), false);
      } catch (const Error& e) {
        if (e.kind() != ErrorKind::kConflict) throw;  // ended meanwhile
      }
      auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
      while (Clock::now() < deadline &&
             container::QueryContainer(root, uuid).status != container::Status::kStopped) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    // Keep the last console output: the container's state directory goes with it.
    std::string console;
    std::string cdir = container::StateDir(root, uuid);
    if (auto old = ReadFileIfExists(JoinPath(cdir, "console.log.1"))) console += *old;
    if (auto cur = ReadFileIfExists(JoinPath(cdir, "console.log"))) console += *cur;
    WriteFileAtomic(JoinPath(InstanceDir(uuid), "console.last.log"), console, 0600);
    container::DeleteContainer(root, uuid, true);
  }
  store::UnmountAll(RootfsDir(uuid), true);
}

InstanceView InstanceManager::Action(const std::string& uuid, const rapidjson::Value& body) {
  auto action = OptString(body, "action", "action");
  if (!action) Invalid("action: missing");
  InstancePtr inst = Find(uuid);
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  InstanceView now = ViewOf(*inst);
  InstanceRecord rec = now.record;
  const PowerState ps = now.power_state;
  const std::string root = config_.containers_dir();
  ScopeGuard clear_task([&] { SetTask(*inst, ""); });

  auto timeout = [&] {
    auto t = OptInt(body, "timeout", "timeout");
    if (t && (*t < 0 || *t > 3600)) Invalid("timeout: want 0..3600 seconds");
    return static_cast<int>(t.value_or(config_.default_stop_timeout));
  };
  // Already where the action leads: a no-op, answered with the instance as it is.
  // (A stop of an instance that powered itself off still cleans up its container.)
  if (auto target = IdempotentStateOf(*action);
      target && *target == ps && (*action != "stop" || rec.desired == DesiredState::kStopped)) {
    clear_task.Dismiss();
    spdlog::info("instance {}: {}: already {}", uuid, *action, PowerStateName(ps));
    return now;
  }

  auto start = [&] {
    if (ContainerExists(uuid)) container::DeleteContainer(root, uuid, true);  // exited leftover
    EnsureRootfsMounted(rec);
    store::ImageRecord image = images_.Get(rec.image_id);
    Launch(rec, image.config);
    rec.desired = DesiredState::kRunning;
    rec.launched_at = container::NowRfc3339();
    SaveRecord(*inst, rec);
  };

  if (*action == "start" && ps == PowerState::kNoState && CreatedNotStarted(uuid)) {
    // Spawned with "start": false: the network is attached, the process only waited.
    SetTask(*inst, "powering-on");
    container::StartContainer(root, uuid);
    rec.launched_at = container::NowRfc3339();
    SaveRecord(*inst, rec);
  } else if (*action == "start") {
    if (!PowerStateAllows(ps, {PowerState::kShutdown, PowerState::kCrashed})) {
      WrongState("start", uuid, ps);
    }
    SetTask(*inst, "powering-on");
    start();
  } else if (*action == "stop") {
    if (ps == PowerState::kNoState && !CreatedNotStarted(uuid)) WrongState("stop", uuid, ps);
    int t = timeout();
    SetTask(*inst, "powering-off");
    PowerOff(rec, t);
    rec.desired = DesiredState::kStopped;
    SaveRecord(*inst, rec);
  } else if (*action == "reboot") {
    std::string type = OptString(body, "type", "type").value_or("SOFT");
    for (char& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (type != "SOFT" && type != "HARD") Invalid("type: want SOFT or HARD");
    if (type == "SOFT" && ps != PowerState::kRunning) WrongState("soft-reboot", uuid, ps);
    if (ps == PowerState::kNoState) WrongState("reboot", uuid, ps);
    int t = type == "HARD" ? 0 : timeout();
    SetTask(*inst, type == "HARD" ? "rebooting_hard" : "rebooting");
    PowerOff(rec, t);
    start();
  } else if (*action == "pause" || *action == "suspend") {
    if (ps != PowerState::kRunning) WrongState(*action, uuid, ps);
    SetTask(*inst, *action == "pause" ? "pausing" : "suspending");
    container::PauseContainer(root, uuid);
    rec.desired = *action == "pause" ? DesiredState::kPaused : DesiredState::kSuspended;
    SaveRecord(*inst, rec);
  } else if (*action == "unpause" || *action == "resume") {
    PowerState want = *action == "unpause" ? PowerState::kPaused : PowerState::kSuspended;
    if (ps != want) WrongState(*action, uuid, ps);
    SetTask(*inst, *action == "unpause" ? "unpausing" : "resuming");
    container::ResumeContainer(root, uuid);
    rec.desired = DesiredState::kRunning;
    SaveRecord(*inst, rec);
  } else if (*action == "resize") {
    const rapidjson::Value* f = OptObject(body, "flavor", "flavor");
    if (!f) Invalid("flavor: missing");
    Flavor flavor = ParseFlavor(*f, "flavor");
    spec::Resources res = FlavorToResources(flavor, swap_accounting_);
    SetTask(*inst, "resize_migrating");
    if (PowerStateAllows(ps, {PowerState::kRunning, PowerState::kPaused, PowerState::kSuspended})) {
      auto cg = cgroup::OpenCgroup(cgroup_host_, CgroupPath(uuid));
      try {
        cg->Apply(res);
      } catch (Error& e) {
        // The kernel refuses a memory limit below what the instance uses (EBUSY).
        if (e.sys_errno() == EBUSY) throw Error(ErrorKind::kConflict, e.message());
        throw;
      }
    } else if (ps == PowerState::kNoState) {
      WrongState("resize", uuid, ps);
    }
    rec.flavor = flavor;
    SaveRecord(*inst, rec);
  } else if (*action == "rebuild") {
    if (ps == PowerState::kNoState) WrongState("rebuild", uuid, ps);
    SetTask(*inst, "rebuilding");
    rec = Rebuild(*inst, rec, ps, body);
  } else {
    Invalid("action: unknown action \"" + *action +
            "\" (start, stop, reboot, pause, unpause, suspend, resume, resize, rebuild)");
  }
  clear_task.Dismiss();
  SetTask(*inst, "");
  spdlog::info("instance {}: {} done", uuid, *action);
  return ViewOf(*inst);
}

std::string InstanceManager::Console(const std::string& uuid, size_t lines) {
  InstancePtr inst = Find(uuid);
  std::string text;
  std::string cdir = container::StateDir(config_.containers_dir(), uuid);
  if (ContainerExists(uuid)) {
    if (auto old = ReadFileIfExists(JoinPath(cdir, "console.log.1"))) text += *old;
    if (auto cur = ReadFileIfExists(JoinPath(cdir, "console.log"))) text += *cur;
  } else if (auto last = ReadFileIfExists(JoinPath(InstanceDir(uuid), "console.last.log"))) {
    text = *last;
  }
  return TailLines(text, lines);
}

std::optional<std::string> InstanceManager::LiveConsoleDir(const std::string& uuid) {
  Find(uuid);  // 404 for an unknown instance
  if (!ContainerExists(uuid)) return std::nullopt;
  return container::StateDir(config_.containers_dir(), uuid);
}

std::vector<store::ChangeLine> InstanceManager::Diff(const std::string& uuid) {
  InstancePtr inst = Find(uuid);
  // Under the operation lock: a rebuild or delete must not swap the disk mid-walk.
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  InstanceRecord record;
  {
    std::lock_guard lock(inst->mu);
    record = inst->record;
  }
  return images_.Diff(DiskKey(record));
}

cgroup::CgroupStats InstanceManager::Stats(const std::string& uuid) {
  InstancePtr inst = Find(uuid);
  InstanceView v = ViewOf(*inst);
  if (!PowerStateAllows(v.power_state,
                        {PowerState::kRunning, PowerState::kPaused, PowerState::kSuspended})) {
    WrongState("read stats of", uuid, v.power_state);
  }
  return cgroup::OpenCgroup(cgroup_host_, CgroupPath(uuid))->Stats();
}

ExecResult InstanceManager::Exec(const std::string& uuid, const rapidjson::Value& body) {
  auto args = OptStringArray(body, "command", "command");
  if (!args || args->empty()) Invalid("command: want a non-empty array of strings");
  container::ExecOptions o;
  o.args = *args;
  o.env = OptStringArray(body, "env", "env").value_or(std::vector<std::string>{});
  for (const auto& e : o.env) {
    if (e.find('=') == std::string::npos || e[0] == '=')
      Invalid("env: want KEY=value, got \"" + e + "\"");
  }
  o.cwd = OptString(body, "cwd", "cwd").value_or("");
  if (!o.cwd.empty() && o.cwd[0] != '/') Invalid("cwd: want an absolute path");
  InstancePtr inst = Find(uuid);
  InstanceView v = ViewOf(*inst);
  if (v.power_state != PowerState::kRunning) WrongState("exec in", uuid, v.power_state);
  UniqueFd in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd out(::memfd_create("berth-exec-stdout", MFD_CLOEXEC));
  UniqueFd err(::memfd_create("berth-exec-stderr", MFD_CLOEXEC));
  if (!in || !out || !err) ThrowErrno("open exec stdio");
  o.stdin_fd = in.get();
  o.stdout_fd = out.get();
  o.stderr_fd = err.get();
  int status = container::ExecInContainer(config_.containers_dir(), uuid, o);
  ExecResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.stdout_text = ReadFd(out.get(), config_.exec_max_output, &r.truncated);
  r.stderr_text = ReadFd(err.get(), config_.exec_max_output, &r.truncated);
  return r;
}

store::ImageRecord InstanceManager::Snapshot(const std::string& uuid,
                                             const SnapshotRequest& request) {
  InstancePtr inst = Find(uuid);
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  InstanceView now = ViewOf(*inst);
  if (now.power_state == PowerState::kNoState) WrongState("snapshot", uuid, now.power_state);
  const std::string root = config_.containers_dir();
  SetTask(*inst, "image_snapshot");
  ScopeGuard clear_task([&] { SetTask(*inst, ""); });
  // A running instance is frozen so the layer is one moment of its disk; a paused or
  // suspended one already is, a stopped one has no writers.
  bool frozen_here = false;
  if (now.power_state == PowerState::kRunning) {
    container::PauseContainer(root, uuid);
    frozen_here = true;
  }
  ScopeGuard thaw([&] {
    if (!frozen_here) return;
    try {
      container::ResumeContainer(root, uuid);
    } catch (const Error& e) {
      spdlog::error("instance {}: thaw after snapshot: {}", uuid, e.message());
    }
  });
  auto started = Clock::now();
  store::CommitOptions opts;
  opts.name = request.name;
  opts.created_by = "berthd snapshot of instance " + uuid;
  opts.comment = request.image_id.empty()
                     ? "snapshot of instance " + uuid
                     : "snapshot of instance " + uuid + " for image " + request.image_id;
  if (auto r = UsernsRanges::Load(InstanceDir(uuid))) opts.ids = {r->uid, r->gid, r->size};
  store::ImageRecord image = images_.Commit(DiskKey(now.record), opts);
  spdlog::info("instance {}: snapshot {} ({}) committed in {:.1f} ms", uuid, image.id.str(),
               request.name,
               std::chrono::duration<double, std::milli>(Clock::now() - started).count());
  return image;
}

bool InstanceManager::ImageInUse(const std::string& image_id) {
  std::shared_lock lock(map_mu_);
  for (const auto& [uuid, inst] : instances_) {
    std::lock_guard l(inst->mu);
    if (inst->record.image_id == image_id) return true;
  }
  return false;
}

Flavor InstanceManager::UsedResources() {
  Flavor used;
  used.vcpus = used.memory_mb = used.root_gb = 0;
  std::shared_lock lock(map_mu_);
  for (const auto& [uuid, inst] : instances_) {
    std::lock_guard l(inst->mu);
    used.vcpus += inst->record.flavor.vcpus;
    used.memory_mb += inst->record.flavor.memory_mb;
    used.root_gb += inst->record.flavor.root_gb;
  }
  return used;
}

std::map<std::string, int> InstanceManager::CountByState() {
  std::map<std::string, int> out;
  for (PowerState s : {PowerState::kNoState, PowerState::kRunning, PowerState::kPaused,
                       PowerState::kShutdown, PowerState::kCrashed, PowerState::kSuspended}) {
    out[PowerStateName(s)] = 0;
  }
  for (const auto& v : List()) ++out[PowerStateName(v.power_state)];  // cached views
  return out;
}

void InstanceManager::Recover() {
  const std::string dir = config_.instances_dir();
  const std::string root = config_.containers_dir();
  for (const auto& uuid : ListDirectory(dir)) {
    try {
      auto text = ReadFileIfExists(RecordPath(uuid));
      if (!text) {
        spdlog::warn("instance {}: half-made or half-deleted (no instance.json); removing", uuid);
        TearDown(uuid, nullptr);
        continue;
      }
      InstanceRecord rec = InstanceFromJson(*text, RecordPath(uuid));
      if (rec.uuid != uuid) Invalid("uuid \"" + rec.uuid + "\" does not match its directory");
      if (rec.desired == DesiredState::kStopped && ContainerExists(uuid)) {
        // A start that did not reach its record: undo it, the instance stays stopped.
        container::DeleteContainer(root, uuid, true);
        store::UnmountAll(RootfsDir(uuid), true);
      }
      if (rec.desired != DesiredState::kStopped) EnsureRootfsMounted(rec);
      if (rec.desired == DesiredState::kRunning && !rec.launched_at.empty() &&
          CreatedNotStarted(uuid)) {
        // Its record was written alongside its start, which a killed berthd did not reach
        // (a "start": false spawn has no launched_at): the spawn is completed.
        spdlog::warn("instance {}: created, recorded and not started; starting it", uuid);
        container::StartContainer(root, uuid);
      }
      auto inst = std::make_shared<Instance>();
      inst->record = rec;
      std::unique_lock lock(map_mu_);
      instances_[uuid] = inst;
    } catch (const Error& e) {
      spdlog::error("instance {}: not re-attached: {}", uuid, e.message());
    }
  }
  // Containers and snapshots that no instance owns are leftovers of an interrupted spawn.
  for (const auto& id : container::ListContainers(root)) {
    if (instances_.count(id)) continue;
    spdlog::warn("container {} belongs to no instance; removing", id);
    try {
      container::DeleteContainer(root, id, true);
    } catch (const Error& e) {
      spdlog::error("container {}: {}", id, e.message());
    }
  }
  std::set<std::string> disks;
  for (const auto& [uuid, inst] : instances_) disks.insert(DiskKey(inst->record));
  std::vector<std::string> orphans;
  images_.layers().Walk([&](const store::SnapshotInfo& s) {
    // A rebuild's new disk whose switch did not happen, or its old one that was not yet
    // removed, belongs to no instance too.
    // So does a root made ahead by a berthd that stopped without dropping it (killed).
    if (s.kind == store::SnapshotKind::kActive &&
        (s.name.rfind("instance-", 0) == 0 || s.name.rfind(RootfsPool::kKeyPrefix, 0) == 0) &&
        !disks.count(s.name)) {
      orphans.push_back(s.name);
    }
  });
  for (const auto& key : orphans) {
    spdlog::warn("snapshot {} belongs to no instance; removing", key);
    try {
      images_.layers().Remove(key);
    } catch (const Error& e) {
      spdlog::error("snapshot {}: {}", key, e.message());
    }
  }
  RecoverNetwork();
  auto counts = CountByState();
  spdlog::info("re-attached {} instances ({} running)", instances_.size(), counts["RUNNING"]);
  PrepareFirstShell();
}

// The first spawn after a start gets a shell too: its shape from the default instance
// spec with the next slot (a spec that differs in its namespaces simply does not use it).
void InstanceManager::PrepareFirstShell() {
  if (!spawner_ || config_.shells == 0 || !ranges_) return;
  try {
    auto next = ranges_->Peek();
    if (!next) return;
    spec::Spec s = spec::DefaultSpec();
    s.root.path = "/";
    s.process.terminal = false;
    ApplySecurityProfile(s, ParseSecurityRequest(Flavor{}, config_.allow_privileged), next);
    if (auto shape = container::ShellShapeOf(s)) spawner_->Expect(*shape);
  } catch (const Error& e) {
    spdlog::warn("no shell for the first spawn: {}", e.message());
  }
}

}  // namespace berth::server
