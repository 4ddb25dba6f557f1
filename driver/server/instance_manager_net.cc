// The InstanceManager operations around networking and the disk that are not part of the
// basic lifecycle: attach/detach_interface, the network's start-up reconcile, rebuild.
// Kept apart from instance_manager.cc so each stays readable.
#include <spdlog/spdlog.h>

#include "driver/server/instance_manager.h"
#include "driver/server/names.h"
#include "driver/server/test_point.h"
#include "runtime/common/error.h"
#include "runtime/common/file_util.h"
#include "runtime/common/scope_guard.h"
#include "runtime/linux/container.h"
#include "runtime/store/layer/mount.h"

namespace berth::server {

InterfaceView InstanceManager::AttachInterface(const std::string& uuid,
                                               const rapidjson::Value& body) {
  InstancePtr inst = Find(uuid);
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  InstanceView now = ViewOf(*inst);
  pid_t pid = 0;
  switch (now.power_state) {
    case PowerState::kRunning:
    case PowerState::kPaused:
    case PowerState::kSuspended:
      pid = now.pid;
      break;
    case PowerState::kNoState:
      throw InvalidStateError("cannot attach an interface to instance " + uuid + " while it is " +
                                  PowerStateName(now.power_state),
                              now.power_state);
    default:
      break;  // stopped: recorded, attached at the next start
  }
  InterfaceView i = network_->AttachInterface(uuid, pid, InstanceDir(uuid), body);
  ViewOf(*inst);
  MarkListDirty();
  spdlog::info("instance {}: interface {} ({}) attached", uuid, i.port_id, i.ifname);
  return i;
}

void InstanceManager::DetachInterface(const std::string& uuid, const std::string& port_id) {
  InstancePtr inst = Find(uuid);
  std::lock_guard op(inst->op_mu);
  if (inst->gone) throw Error(ErrorKind::kNotFound, "instance " + uuid + " not found");
  network_->DetachInterface(uuid, InstanceDir(uuid), port_id);
  ViewOf(*inst);
  MarkListDirty();
  spdlog::info("instance {}: interface {} detached", uuid, port_id);
}

void InstanceManager::RecoverNetwork() {
  std::map<std::string, NetworkRequest> live;
  std::map<std::string, pid_t> running;
  std::vector<std::pair<std::string, InstanceRecord>> all;
  {
    std::shared_lock lock(map_mu_);
    for (const auto& [uuid, inst] : instances_) {
      std::lock_guard l(inst->mu);
      all.emplace_back(uuid, inst->record);
    }
  }
  for (const auto& [uuid, rec] : all) {
    try {
      live[uuid] = network_->Load(InstanceDir(uuid));
    } catch (const Error& e) {
      // Kept as live (mode none): its attachments are not released on a doubt.
      spdlog::error("instance {}: network.json: {}", uuid, e.message());
      live[uuid] = NetworkRequest{};
      continue;
    }
    if (rec.desired == DesiredState::kStopped || !ContainerExists(uuid)) continue;
    try {
      auto info = container::QueryContainer(config_.containers_dir(), uuid);
      if (info.status == container::Status::kRunning || info.status == container::Status::kPaused) {
        running[uuid] = info.record.init_pid;
      }
    } catch (const Error& e) {
      spdlog::warn("instance {}: query container: {}", uuid, e.message());
    }
  }
  try {
    network_->Reconcile(live, running);
  } catch (const Error& e) {
    spdlog::error("network reconcile: {}", e.message());
  }
}

InstanceRecord InstanceManager::Rebuild(Instance& inst, InstanceRecord rec, PowerState ps,
                                        const rapidjson::Value& body) {
  const std::string& uuid = rec.uuid;
  auto image_ref = OptString(body, "image", "image");
  if (!image_ref || image_ref->empty()) {
    throw Error(ErrorKind::kInvalidArgument, "image: missing (the image to rebuild from)");
  }
  auto command = OptStringArray(body, "command", "command");
  auto timeout = OptInt(body, "timeout", "timeout");
  if (timeout && (*timeout < 0 || *timeout > 3600)) {
    throw Error(ErrorKind::kInvalidArgument, "timeout: want 0..3600 seconds");
  }
  const std::string old_key = DiskKey(rec);
  const std::string new_key = SnapshotKey(uuid) + "-r" + RandomHex(4);
  // As for a spawn: a Glance image id is synced (may download) outside image_mu_, with the
  // request's "token" and "glance" hints.
  const std::string store_ref = image_resolver_ ? image_resolver_(*image_ref, body) : *image_ref;
  store::ImageRecord image;
  {
    std::lock_guard image_lock(image_mu_);
    image = images_.Get(store_ref);
    images_.layers().Prepare(new_key, image.top_chain().str());
  }
  Rollback rollback;
  rollback.Add([this, new_key] { images_.layers().Remove(new_key); });
  ParseSignal(image.config.config.stop_signal);
  // The new disk is ready; the old one is still the instance's until the switch below.
  TestPausePoint("rebuild-after-prepare");
  const bool run = rec.desired != DesiredState::kStopped || ps == PowerState::kRunning;
  PowerOff(rec, static_cast<int>(timeout.value_or(config_.default_stop_timeout)));
  // The switch: one atomic rename. Before it a crash leaves the old disk (and the new one
  // an orphan that Recover removes); after it, the new disk (the old one the orphan).
  WriteFileAtomic(JoinPath(InstanceDir(uuid), "disk"), new_key, 0600);
  rollback.Commit();
  rec.image_id = image.id.str();
  rec.image_ref = *image_ref;
  rec.stop_signal = image.config.config.stop_signal;
  rec.disk = new_key;  // as the disk file says (which wins)
  if (command) rec.command = *command;
  rec.desired = run ? DesiredState::kRunning : DesiredState::kStopped;
  SaveRecord(inst, rec);
  try {
    images_.layers().Remove(old_key);
  } catch (const Error& e) {
    spdlog::warn("instance {}: old disk {} not removed (Recover will): {}", uuid, old_key,
                 e.message());
  }
  if (run) {
    if (ContainerExists(uuid)) container::DeleteContainer(config_.containers_dir(), uuid, true);
    EnsureRootfsMounted(rec);
    Launch(rec, image.config);
    rec.launched_at = container::NowRfc3339();
    SaveRecord(inst, rec);
  }
  spdlog::info("instance {}: rebuilt from {} (disk {})", uuid, rec.image_id, new_key);
  return rec;
}

}  // namespace berth::server
