#include "driver/server/metrics.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace berth::server {
namespace {

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

void Metrics::ObserveSpawn(double seconds) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < kSpawnBuckets.size(); ++i) {
    if (seconds <= kSpawnBuckets[i]) ++spawn_buckets_[i];
  }
  spawn_samples_[spawn_count_ % spawn_samples_.size()] = seconds;
  ++spawn_count_;
  spawn_sum_ += seconds;
}

void Metrics::CountImageImport(bool ok) {
  std::lock_guard lock(mu_);
  ++(ok ? imports_ok_ : imports_failed_);
}

void Metrics::CountRequest(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, status}];
}

double Metrics::SpawnQuantile(double q) const {
  std::vector<double> v;
  {
    std::lock_guard lock(mu_);
    size_t n = std::min<uint64_t>(spawn_count_, spawn_samples_.size());
    v.assign(spawn_samples_.begin(), spawn_samples_.begin() + n);
  }
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t idx = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  return v[idx];
}

std::string Metrics::Render(const std::map<std::string, int>& instances_by_state) const {
  std::lock_guard lock(mu_);
  std::string out;
  out += "# HELP berth_instances Instances on this host by Nova power state.\n";
  out += "# TYPE berth_instances gauge\n";
  for (const auto& [state, n] : instances_by_state) {
    out += "berth_instances{state=\"" + state + "\"} " + std::to_string(n) + "\n";
  }
  out += "# HELP berth_spawn_seconds Time to spawn an instance, measured in berthd.\n";
  out += "# TYPE berth_spawn_seconds histogram\n";
  for (size_t i = 0; i < kSpawnBuckets.size(); ++i) {
    out += "berth_spawn_seconds_bucket{le=\"" + Num(kSpawnBuckets[i]) + "\"} " +
           std::to_string(spawn_buckets_[i]) + "\n";
  }
  out += "berth_spawn_seconds_bucket{le=\"+Inf\"} " + std::to_string(spawn_count_) + "\n";
  out += "berth_spawn_seconds_sum " + Num(spawn_sum_) + "\n";
  out += "berth_spawn_seconds_count " + std::to_string(spawn_count_) + "\n";
  out += "# HELP berth_image_imports_total Image imports by result.\n";
  out += "# TYPE berth_image_imports_total counter\n";
  out += "berth_image_imports_total{result=\"ok\"} " + std::to_string(imports_ok_) + "\n";
  out += "berth_image_imports_total{result=\"error\"} " + std::to_string(imports_failed_) + "\n";
  out += "# HELP berth_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE berth_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out += "berth_http_requests_total{route=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace berth::server
