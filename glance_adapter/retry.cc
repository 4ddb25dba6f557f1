#include "glance_adapter/retry.h"

#include <algorithm>

namespace berth::glance {

int BackoffMs(const RetryPolicy& policy, int next_attempt) {
  if (next_attempt < 2) return 0;
  long long ms = policy.initial_backoff_ms;
  for (int i = 2; i < next_attempt && ms < policy.max_backoff_ms; ++i) ms *= 2;
  return static_cast<int>(std::min<long long>(ms, policy.max_backoff_ms));
}

bool IsRetryableStatus(long status) {
  if (status == 408 || status == 429) return true;
  return status >= 500 && status <= 599 && status != 501;
}

}  // namespace berth::glance
