// Bounded retries with exponential backoff for calls to OpenStack services.
#pragma once

namespace berth::glance {

struct RetryPolicy {
  int max_attempts = 4;  // the first try included
  int initial_backoff_ms = 200;
  int max_backoff_ms = 5000;
};

// The wait before attempt `next_attempt` (2 for the first retry): initial * 2^(n-2),
// capped at max_backoff_ms.
int BackoffMs(const RetryPolicy& policy, int next_attempt);

// Statuses worth another try: the service (or a proxy before it) failed or was busy.
// 501 (will never work) and the 4xx answers about the request itself are not.
bool IsRetryableStatus(long status);

}  // namespace berth::glance
