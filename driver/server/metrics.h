// Counters and histograms berthd exposes at GET /metrics in Prometheus' text format.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace berth::server {

class Metrics {
 public:
  void ObserveSpawn(double seconds);
  void CountImageImport(bool ok);
  void CountRequest(const std::string& route, int status);

  // The exposition text; `instances_by_state` is filled by the caller (a gauge is read, not
  // counted).
  std::string Render(const std::map<std::string, int>& instances_by_state) const;

  // Spawn latency quantile estimate (from the raw samples kept for the last 4096 spawns);
  // -1 when there are none. For the report and the bench script.
  double SpawnQuantile(double q) const;

  static constexpr std::array<double, 12> kSpawnBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                           0.5,   1,    2.5,   5,    10,  30};

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kSpawnBuckets.size()> spawn_buckets_{};
  uint64_t spawn_count_ = 0;
  double spawn_sum_ = 0;
  std::array<double, 4096> spawn_samples_{};
  uint64_t imports_ok_ = 0, imports_failed_ = 0;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
};

}  // namespace berth::server
