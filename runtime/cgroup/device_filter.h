// Device rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached
// to the group's directory. BuildDeviceFilter turns the spec's rule list into instructions
// (pure, unit tested by running the program in a small interpreter); AttachDeviceFilter
// loads them with bpf(2) and swaps them in for the group's previous program.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "runtime/spec/spec.h"

namespace berth::cgroup {

// The program sees struct bpf_cgroup_dev_ctx {access_type = (ACC << 16) | DEV, major,
// minor} and returns 1 to allow, 0 to deny. Rules follow the spec's meaning: the last rule
// that matches decides, and nothing matching means deny. An allow rule matches a request
// whose every access bit it grants; a deny rule matches a request asking for any bit it
// denies (so "deny w" also refuses an open for read+write). Rules before the last
// catch-all ("a *:* rwm") cannot matter and are dropped. Throws kInvalidArgument naming
// linux.resources.devices[i] for a bad rule.
std::vector<bpf_insn> BuildDeviceFilter(const std::vector<spec::DeviceRule>& rules);

// Loads the program and attaches it (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI) to the cgroup2
// directory, then detaches the programs that were attached there before, so a resize never
// leaves the group without a filter. Needs CAP_SYS_ADMIN and CONFIG_CGROUP_BPF.
void AttachDeviceFilter(const std::string& cgroup_dir, const std::vector<bpf_insn>& program);

// The ids of the device programs attached to the directory (for tests and diagnostics).
std::vector<uint32_t> QueryDeviceFilters(const std::string& cgroup_dir);

}  // namespace berth::cgroup
