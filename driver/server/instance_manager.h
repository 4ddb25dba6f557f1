// Every instance on the host and Nova's lifecycle over them: spawn, delete, start, stop,
// reboot, pause/unpause, suspend/resume, resize, console, stats, exec, and the re-attach
// after a berthd restart.
//
// Concurrency: the map of instances is guarded by a shared_mutex (lookups shared, insert
// and erase exclusive). Each instance has an operation mutex that serialises the
// operations on it (operations on different instances run in parallel) and a small mutex
// for its record, so reads (GET) never wait behind a slow stop.
//
// Crash safety: instance.json is written atomically and only once the instance is
// complete; a directory without it is a half-made (or half-deleted: delete unlinks it
// first) instance that Recover() removes with its container, mount and snapshot.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "driver/server/config.h"
#include "driver/server/container_watcher.h"
#include "driver/server/instance.h"
#include "driver/server/instance_network.h"
#include "driver/server/json_util.h"
#include "driver/server/mapping_userns_cache.h"
#include "driver/server/metrics.h"
#include "driver/server/rootfs_pool.h"
#include "driver/server/userns_ranges.h"
#include "runtime/cgroup/cgroup.h"
#include "runtime/common/thread_cache.h"
#include "runtime/linux/spawner.h"
#include "runtime/store/image/image_store.h"

namespace berth::server {

// An instance as the API shows it: the record plus what the container says now.
struct InstanceView {
  InstanceRecord record;
  PowerState power_state = PowerState::kNoState;
  std::string task_state;  // "" when idle; "spawning", "powering-off", ...
  pid_t pid = 0;           // the init's host pid while it runs
  std::optional<int> exit_code;
  std::optional<int> exit_signal;
  bool oom_killed = false;
  NetworkView network;  // addresses and interfaces (instance_network.h)
};
void WriteInstanceJson(JsonWriter& w, const InstanceView& v);

// 409 for an action the instance's power state forbids; the REST layer adds the state to
// the error body ("power_state", "power_state_name") so a client needs no message parsing.
class InvalidStateError : public Error {
 public:
  InvalidStateError(std::string message, PowerState state)
      : Error(ErrorKind::kConflict, std::move(message)), state_(state) {}
  PowerState power_state() const { return state_; }

 private:
  PowerState state_;
};

// The power state an action leads to when the instance is already in it: then the action
// is a no-op answered 200 (Nova retries, and two callers may race). nullopt for actions
// without such a state (reboot, resize, unpause, resume: see docs/api.md).
std::optional<PowerState> IdempotentStateOf(const std::string& action);

// POST /v1/instances/{uuid}/snapshot body.
struct SnapshotRequest {
  std::string name;      // the new image's name (may be empty when image_id is given)
  std::string image_id;  // the caller's (Glance's) id for it, recorded in the comment
  bool do_export = false;
  std::string export_format = "docker-archive";
};
SnapshotRequest ParseSnapshotRequest(const rapidjson::Value& body);

struct ExecResult {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
  bool truncated = false;
};

class InstanceManager {
 public:
  InstanceManager(const Config& config, store::ImageStore& images, Metrics& metrics);
  ~InstanceManager();

  // Turns a spawn's or a rebuild's `image` into a reference the image store has (berthd
  // sets one that syncs Glance images); without one, `image` must name a local image.
  using ImageResolver =
      std::function<std::string(const std::string& image_ref, const rapidjson::Value& body)>;
  void SetImageResolver(ImageResolver resolver) { image_resolver_ = std::move(resolver); }
  // Containers are created through it while it lives; null: by this process.
  void SetSpawner(container::Spawner* spawner) { spawner_ = spawner; }

  // Starts keeping the cached views fresh: an instance's view at once when its monitor
  // records a change (ContainerWatcher: an exit, a pause by another client), and every view
  // every `interval_ms` for what no monitor records, such as a monitor killed (0: never).
  // The lifecycle operations refresh their instance anyway.
  void StartRefresher(int interval_ms);
  void StopRefresher();

  // Reads <state>/instances/*, removes half-made ones, re-attaches to the rest.
  void Recover();

  // POST /v1/instances body (already parsed). Returns the new instance.
  InstanceView Create(const rapidjson::Value& body);
  // From the cached views: asks no monitor (see StartRefresher).
  std::vector<InstanceView> List();
  // The JSON body of GET /v1/instances, rebuilt only when a cached view changed.
  std::shared_ptr<const std::string> ListJson();
  // Live: asks the instance's monitor.
  InstanceView Get(const std::string& uuid);
  void Delete(const std::string& uuid);
  // POST /v1/instances/{uuid}/action body.
  InstanceView Action(const std::string& uuid, const rapidjson::Value& body);
  std::string Console(const std::string& uuid, size_t lines);
  // The state dir of the instance's container while it has one (its console.log is the
  // live log); nullopt when the console is the saved console.last.log.
  std::optional<std::string> LiveConsoleDir(const std::string& uuid);
  cgroup::CgroupStats Stats(const std::string& uuid);
  // What the instance changed in its disk against its image (`docker diff`).
  std::vector<store::ChangeLine> Diff(const std::string& uuid);
  ExecResult Exec(const std::string& uuid, const rapidjson::Value& body);
  // attach_interface / detach_interface (Nova's VIF on a running or stopped instance).
  InterfaceView AttachInterface(const std::string& uuid, const rapidjson::Value& body);
  void DetachInterface(const std::string& uuid, const std::string& port_id);
  // Freezes a running instance, commits its disk into a new image, thaws it.
  store::ImageRecord Snapshot(const std::string& uuid, const SnapshotRequest& request);

  // True when an instance's disk sits on the image (its snapshot has the image's layers).
  bool ImageInUse(const std::string& image_id);
  // Serialises image removal against spawns that are resolving an image.
  std::mutex& image_mutex() { return image_mu_; }
  // Drops the root made ahead on `image` (rootfs_pool.h), which would keep the image store
  // from removing it. Call with image_mutex() held, before the removal.
  void DropPooledRoot(const store::ImageRecord& image);
  // berthd's shutdown: the root made ahead goes (its snapshot, its mount).
  void StopRootfsPool();
  Flavor UsedResources();  // sum of the flavors of all instances
  std::map<std::string, int> CountByState();
  const cgroup::CgroupHost& cgroup_host() const { return cgroup_host_; }

 private:
  struct Instance {
    std::mutex op_mu;       // serialises operations on this instance
    mutable std::mutex mu;  // guards record and task
    InstanceRecord record;
    std::string task;
    bool gone = false;  // deleted while another request waited for op_mu
    // The last live view (power state, pid, exit) and the generation it was taken at;
    // generation moves on every record or task change, so a refresh that raced with an
    // operation does not overwrite the operation's newer view.
    std::optional<InstanceView> cached;
    uint64_t generation = 0;
  };
  using InstancePtr = std::shared_ptr<Instance>;

  InstancePtr Find(const std::string& uuid);
  // Live view; stores it as the instance's cached one.
  InstanceView ViewOf(Instance& inst);
  InstanceView ViewOf(const InstanceRecord& record, const std::string& task);
  InstanceView CachedViewOf(Instance& inst);
  void RefreshAll();
  // The watcher's callback: the container `uuid` changed state.
  void RefreshOne(const std::string& uuid);
  void MarkListDirty() { list_version_.fetch_add(1, std::memory_order_relaxed); }
  void SetTask(Instance& inst, const std::string& task);
  void SaveRecord(Instance& inst, const InstanceRecord& record);
  // SaveRecord's second half: `record`, already on disk, becomes the instance's.
  void AdoptRecord(Instance& inst, const InstanceRecord& record);

  std::string InstanceDir(const std::string& uuid) const;
  std::string RootfsDir(const std::string& uuid) const;
  std::string RecordPath(const std::string& uuid) const;
  std::string CgroupPath(const std::string& uuid) const;
  // The snapshot key of the instance's disk: the key named in <instance dir>/disk (a
  // rebuild's switch), else the record's (a root made ahead), else SnapshotKey(uuid).
  // record null: an instance without one (half-made or half-deleted).
  std::string DiskKey(const std::string& uuid, const InstanceRecord* record) const;
  std::string DiskKey(const InstanceRecord& record) const { return DiskKey(record.uuid, &record); }
  // Start-up: releases the network of instances that no longer exist, restores what a
  // running one is missing.
  void RecoverNetwork();
  // rebuild: a new disk from another image, same uuid and network; returns the new record.
  InstanceRecord Rebuild(Instance& inst, InstanceRecord rec, PowerState ps,
                         const rapidjson::Value& body);
  bool ContainerExists(const std::string& uuid) const;

  // Creates and starts the container on the (mounted) rootfs; returns the init pid.
  // start=false leaves it created (namespaces and network ready, process not started):
  // the Nova driver starts it once Neutron reported the ports up.
  void PrepareFirstShell();
  struct Launched {
    bool from_shell = false;  // the container's processes were made ahead (shell.h)
    // The next spawn's shape, when `next_range` was given: its spec differs from this one,
    // as far as its processes go, by its user namespace slot.
    std::optional<container::ShellShape> next_shell;
  };
  // What a spawn has in hand and a later launch (start, reboot, rebuild) reads back from
  // the instance's directory.
  struct SpawnInputs {
    std::optional<IdRange> id_range;
    NetworkRequest network;
    std::shared_future<void> cgroup_made;  // the instance's cgroup, being made ahead
  };
  // `next_range`: the user namespace slot the next spawn likely gets. `once_created` runs
  // once the container exists and its network is attached, before it runs: from a shell
  // claimed here, while its init finishes its root (its monitor starts it once it is
  // ready); else just before the start.
  Launched Launch(const InstanceRecord& record, const store::ImageConfig& image, bool start = true,
                  const std::optional<IdRange>& next_range = std::nullopt,
                  const std::function<void()>& once_created = {},
                  const SpawnInputs* spawn = nullptr);
  // container::CreateContainer: here with the shell the spawner handed over for this slot
  // (Spawner::Expect), else through the spawner while it lives.
  // spec_json: o.spec serialized (the bundle's config.json), passed on to the shell's init.
  container::StateRecord MakeContainer(container::CreateOptions& options,
                                       std::string_view spec_json, bool* used_shell = nullptr);
  // A container created and not yet started (spawn with "start": false).
  bool CreatedNotStarted(const std::string& uuid) const;
  void EnsureRootfsMounted(const InstanceRecord& record);
  // Asks the init to stop, waits `timeout_s`, then kills; deletes the container and
  // unmounts the root (the snapshot, the instance's disk, stays).
  void PowerOff(const InstanceRecord& record, int timeout_s);
  // Removes everything of an instance; missing pieces are fine. record: as for DiskKey.
  void TearDown(const std::string& uuid, const InstanceRecord* record);
  // Kills what is left in the instance's cgroup and removes it from every hierarchy.
  void RemoveCgroup(const std::string& uuid);

  Config config_;
  ImageResolver image_resolver_;
  container::Spawner* spawner_ = nullptr;
  store::ImageStore& images_;
  Metrics& metrics_;
  cgroup::CgroupHost cgroup_host_;
  std::unique_ptr<InstanceNetwork> network_;
  bool swap_accounting_ = false;
  uint64_t bounding_caps_ = 0;
  std::unique_ptr<UsernsRanges> ranges_;  // null: [security] userns = false
  MappingUsernsCache userns_cache_;

  std::shared_mutex map_mu_;
  std::map<std::string, InstancePtr> instances_;
  std::mutex image_mu_;
  // The next spawn's root made ahead; null: [instances] rootfs_pool = false. After the
  // members it uses (image_mu_, userns_cache_): it ends before them.
  std::unique_ptr<RootfsPool> rootfs_pool_;

  std::atomic<uint64_t> list_version_{1};
  // Spawns between their request and their answer: a shell is made only when none is left
  // (on a busy host it would compete with them for the CPU, and a storm's spawns take
  // slots faster than shells can be made for them).
  std::atomic<int> spawns_in_flight_{0};
  std::mutex list_mu_;
  uint64_t list_json_version_ = 0;
  std::shared_ptr<const std::string> list_json_;

  std::unique_ptr<ContainerWatcher> watcher_;
  std::mutex refresher_mu_;
  std::condition_variable refresher_cv_;
  bool refresher_stop_ = false;
  std::thread refresher_;
  // A spawn's background work (its cgroup, its record's fsyncs). Last: it ends first,
  // waiting for its tasks while what they use is still there.
  ThreadCache background_;
};

// Snapshot key of an instance's disk.
std::string SnapshotKey(const std::string& uuid);

}  // namespace berth::server
