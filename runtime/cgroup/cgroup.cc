// Backend choice and the unit conversions both backends and callers share.
#include "runtime/cgroup/cgroup.h"

#include <algorithm>

namespace berth::cgroup {

std::unique_ptr<Cgroup> OpenCgroup(const CgroupHost& host, const std::string& path) {
  if (host.version == CgroupVersion::kV2) return OpenCgroupV2(host, path);
  return OpenCgroupV1(host, path);
}

uint64_t CpuSharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;  // unset
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t BlkioWeightToIoWeight(uint64_t weight) {
  if (weight == 0) return 0;  // unset
  weight = std::clamp<uint64_t>(weight, 10, 1000);
  return 1 + ((weight - 10) * 9999) / 990;
}

}  // namespace berth::cgroup
