// Field-by-field equality for the spec types, for round-trip tests. spec.h has no
// operator== of its own; if it gains defaulted ones, delete this file.
#pragma once

#include <tuple>

#include "runtime/spec/spec.h"

namespace berth::spec {

#define BERTH_SPEC_EQ(Type, ...)                                       \
  inline bool operator==(const Type& a, const Type& b) {               \
    auto fields = [](const Type& x) { return std::tie(__VA_ARGS__); }; \
    return fields(a) == fields(b);                                     \
  }

BERTH_SPEC_EQ(User, x.uid, x.gid, x.umask, x.additional_gids)
BERTH_SPEC_EQ(Rlimit, x.type, x.hard, x.soft)
BERTH_SPEC_EQ(Capabilities, x.bounding, x.effective, x.inheritable, x.permitted, x.ambient)
BERTH_SPEC_EQ(ConsoleSize, x.height, x.width)
BERTH_SPEC_EQ(Process, x.terminal, x.console_size, x.user, x.args, x.env, x.cwd, x.capabilities,
              x.rlimits, x.no_new_privileges, x.oom_score_adj)
BERTH_SPEC_EQ(Root, x.path, x.readonly)
BERTH_SPEC_EQ(Mount, x.destination, x.type, x.source, x.options)
BERTH_SPEC_EQ(Namespace, x.type, x.path)
BERTH_SPEC_EQ(IdMapping, x.container_id, x.host_id, x.size)
BERTH_SPEC_EQ(Device, x.path, x.type, x.major, x.minor, x.file_mode, x.uid, x.gid)
BERTH_SPEC_EQ(DeviceRule, x.allow, x.type, x.major, x.minor, x.access)
BERTH_SPEC_EQ(MemoryResources, x.limit, x.reservation, x.swap, x.swappiness, x.disable_oom_killer)
BERTH_SPEC_EQ(CpuResources, x.shares, x.quota, x.period, x.realtime_runtime, x.realtime_period,
              x.cpus, x.mems)
BERTH_SPEC_EQ(PidsResources, x.limit)
BERTH_SPEC_EQ(BlockIoDeviceWeight, x.major, x.minor, x.weight, x.leaf_weight)
BERTH_SPEC_EQ(BlockIoDeviceRate, x.major, x.minor, x.rate)
BERTH_SPEC_EQ(BlockIoResources, x.weight, x.leaf_weight, x.weight_device,
              x.throttle_read_bps_device, x.throttle_write_bps_device, x.throttle_read_iops_device,
              x.throttle_write_iops_device)
BERTH_SPEC_EQ(Resources, x.devices, x.memory, x.cpu, x.pids, x.block_io, x.unified)
BERTH_SPEC_EQ(SeccompArg, x.index, x.value, x.value_two, x.op)
BERTH_SPEC_EQ(SeccompSyscall, x.names, x.action, x.errno_ret, x.args)
BERTH_SPEC_EQ(Seccomp, x.default_action, x.default_errno_ret, x.architectures, x.flags, x.syscalls)
BERTH_SPEC_EQ(Linux, x.namespaces, x.uid_mappings, x.gid_mappings, x.devices, x.cgroups_path,
              x.resources, x.seccomp, x.masked_paths, x.readonly_paths, x.rootfs_propagation,
              x.sysctl)
BERTH_SPEC_EQ(Spec, x.oci_version, x.process, x.root, x.hostname, x.mounts, x.linux, x.annotations)

#undef BERTH_SPEC_EQ

}  // namespace berth::spec
