#include "driver/server/rootfs_pool.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <vector>

#include <spdlog/spdlog.h>

#include "driver/server/instance_security.h"
#include "driver/server/names.h"
#include "driver/server/test_point.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/phase_timer.h"
#include "runtime/common/scope_guard.h"
#include "runtime/store/layer/mount.h"

namespace berth::server {
namespace {

// An image built FROM scratch has no /proc, /dev or /sys: the init would make them in the
// overlay at the spawn (a copy-up's worth of work each, ~0.2 ms here). Made here instead,
// as the init would make them: mode 0755, owned by the instance's root.
void MakeStandardMountPoints(const std::string& rootfs, const std::optional<IdRange>& range) {
  for (const char* name : {"proc", "dev", "sys"}) {
    const std::string path = JoinPath(rootfs, name);
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0) continue;  // the image's (or a link: the init decides)
    if (::mkdir(path.c_str(), 0755) != 0) ThrowErrno("mkdir", path);
    if (range && ::lchown(path.c_str(), range->uid, range->gid) != 0) ThrowErrno("lchown", path);
  }
}

}  // namespace

RootfsPool::RootfsPool(std::string dir, store::ImageStore& images, std::mutex& image_mu,
                       MappingUsernsCache& userns_cache, std::function<bool()> idle)
    : dir_(std::move(dir)),
      images_(images),
      image_mu_(image_mu),
      userns_cache_(userns_cache),
      idle_(std::move(idle)) {
  MakeDirs(dir_, 0700);
  worker_ = std::thread([this] { Run(); });
}

RootfsPool::~RootfsPool() { Stop(); }

void RootfsPool::RemoveLeftovers() {
  for (const auto& point : store::MountPointsBelow(dir_)) {
    spdlog::warn("rootfs pool: unmounting the leftover {}", point);
    if (::umount2(point.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      ThrowErrno("umount", point);
    }
  }
  for (const auto& name : ListDirectory(dir_)) RemoveTree(JoinPath(dir_, name));
}

void RootfsPool::Fill(const Target& target) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    if (ready_ && ready_->target.Matches(target)) return;
    wanted_ = target;
  }
  cv_.notify_all();
}

std::optional<RootfsPool::Root> RootfsPool::Take(const Target& target) {
  std::lock_guard lock(mu_);
  if (!ready_ || !ready_->target.Matches(target)) return std::nullopt;
  std::optional<Root> out = std::move(ready_);
  ready_.reset();
  return out;
}

bool RootfsPool::DropIf(const std::function<bool(const std::string& top_chain)>& uses) {
  std::optional<Root> dropped;
  {
    std::unique_lock lock(mu_);
    if (wanted_ && uses(wanted_->top_chain)) wanted_.reset();
    if (busy_ && uses(busy_top_chain_)) cancel_ = true;  // not made, or destroyed once made
    // A snapshot the worker holds (being mounted, or a replaced root being removed) may sit
    // on the image. The worker takes image_mu (our caller's) only while it holds none.
    cv_.wait(lock, [&] { return !busy_has_snapshot_; });
    if (ready_ && uses(ready_->target.top_chain)) {
      dropped = std::move(ready_);
      ready_.reset();
    }
  }
  if (dropped) Destroy(*dropped);
  return dropped.has_value();
}

void RootfsPool::Stop() {
  std::optional<Root> dropped;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cancel_ = true;
    wanted_.reset();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  {
    std::lock_guard lock(mu_);
    dropped = std::move(ready_);
    ready_.reset();
  }
  if (dropped) Destroy(*dropped);
}

void RootfsPool::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || wanted_.has_value(); });
    if (stop_) break;
    Target target = *wanted_;
    wanted_.reset();
    // A newer request (another spawn done) or the stop: start over.
    if (cv_.wait_for(lock, kQuiet, [&] { return stop_ || wanted_.has_value(); })) continue;
    // A spawn came meanwhile: it will ask again when it is done, if no other is in flight.
    if (idle_ && !idle_()) continue;
    if (ready_ && ready_->target.Matches(target)) continue;
    std::optional<Root> old = std::move(ready_);
    ready_.reset();
    busy_ = true;
    busy_top_chain_ = target.top_chain;
    cancel_ = false;
    busy_has_snapshot_ = old.has_value();
    lock.unlock();
    if (old) {
      Destroy(*old);
      lock.lock();
      busy_has_snapshot_ = false;
      cv_.notify_all();
      lock.unlock();
    }
    std::optional<Root> made;
    const auto started = std::chrono::steady_clock::now();
    try {
      made = Make(target);
    } catch (const std::exception& e) {
      spdlog::warn("rootfs pool: no root made ahead for {}: {}", target.top_chain, e.what());
    }
    lock.lock();
    if (made && cancel_) {
      lock.unlock();
      Destroy(*made);  // dropped meanwhile (its image is being deleted, or berthd stops)
      made.reset();
      lock.lock();
    }
    if (made) {
      // Logged once takeable (the tests wait for this line).
      spdlog::debug(
          "rootfs pool: {} made ahead for {} (ids from {}) in {:.1f} ms", made->key,
          target.top_chain, target.range ? std::to_string(target.range->uid) : "0",
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
              .count());
      ready_ = std::move(made);
    }
    busy_ = false;
    busy_has_snapshot_ = false;
    cv_.notify_all();
  }
}

std::optional<RootfsPool::Root> RootfsPool::Make(const Target& target) {
  PhaseTimer timer("pool");
  Root root;
  root.key = kKeyPrefix + RandomHex(8);
  root.target = target;
  std::vector<store::Mount> mounts;
  {
    std::lock_guard image_lock(image_mu_);
    {
      std::lock_guard lock(mu_);
      if (cancel_) return std::nullopt;
    }
    // Gone since the spawn (deleted, or replaced under its name): nothing to make.
    store::ImageRecord image = images_.Get(target.image_id);
    if (image.top_chain().str() != target.top_chain) return std::nullopt;
    mounts = images_.layers().Prepare(root.key, target.top_chain);
    std::lock_guard lock(mu_);
    busy_has_snapshot_ = true;
  }
  timer.Mark("snapshot");
  Rollback rollback;
  rollback.Add([&] { images_.layers().Remove(root.key); });
  TestPausePoint("pool-after-snapshot");
  // Made where an instance's would be made, then detached: the mount table keeps nothing
  // of it, and the staging dir goes at once.
  const std::string staging = JoinPath(dir_, root.key);
  const std::string rootfs = JoinPath(staging, "rootfs");
  MakeDirs(rootfs, 0755);
  rollback.Add([&] { RemoveTree(staging); });
  MountInstanceRootfs(mounts, rootfs, target.range, JoinPath(staging, "idmap-scratch"),
                      userns_cache_);
  timer.Mark("mount");
  ScopeGuard unmount([&] { ::umount2(rootfs.c_str(), MNT_DETACH); });
  MakeStandardMountPoints(rootfs, target.range);
  timer.Mark("mount points");
  TestPausePoint("pool-after-mount");
  root.mount = UniqueFd(static_cast<int>(
      ::syscall(SYS_open_tree, AT_FDCWD, rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
  if (!root.mount) ThrowErrno("open_tree", rootfs);
  unmount.Dismiss();
  if (::umount2(rootfs.c_str(), MNT_DETACH) != 0) ThrowErrno("umount", rootfs);
  RemoveTree(staging);
  timer.Mark("detach");
  rollback.Commit();
  return root;
}

void RootfsPool::Destroy(Root& root) {
  root.mount.reset();  // the last reference to the detached mount: unmounted with it
  try {
    images_.layers().Remove(root.key);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::kNotFound) {
      spdlog::warn("rootfs pool: snapshot {} not removed (the next start will): {}", root.key,
                   e.message());
    }
  }
}

void RootfsPool::Attach(Root& root, const std::string& rootfs) {
  if (::syscall(SYS_move_mount, root.mount.get(), "", AT_FDCWD, rootfs.c_str(),
                MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    ThrowErrno("move_mount", rootfs);
  }
  root.mount.reset();
}

}  // namespace berth::server
