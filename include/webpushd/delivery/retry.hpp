#pragma once
/// @file
/// @brief How long to wait before trying a message again.

#include <chrono>

#include "webpushd/core/random.hpp"
#include "webpushd/delivery/classify.hpp"

namespace webpushd::delivery {

/// @brief Exponential backoff with jitter, and the attempt budget.
struct retry_policy {
  int max_attempts = 8;                        ///< attempts in all, the first included
  std::chrono::milliseconds base{1000};        ///< delay after the first failed attempt (before jitter)
  std::chrono::milliseconds cap{std::chrono::hours{1}};  ///< no computed delay exceeds this
  double jitter = 0.5;                         ///< fraction of the delay removed at random, 0..1

  /// @brief Delay after `attempts_made` failed attempts (1 = after the first):
  /// d = min(cap, base·2^(attempts_made−1)), then a uniform share of up to
  /// `jitter`·d is subtracted, so the result lies in [(1−jitter)·d, d] and
  /// never exceeds cap. Spreading retries avoids herds after an outage.
  std::chrono::milliseconds delay_after(int attempts_made, random_source& rng) const;

  /// @brief Whether another attempt is allowed after `attempts_made` attempts.
  bool may_retry(int attempts_made) const noexcept { return attempts_made < max_attempts; }

  /// @brief The delay for a retryable classification: the service's
  /// Retry-After exactly when it gave one (RFC 8030 §8.4 and Mozilla ask for
  /// that), else delay_after().
  std::chrono::milliseconds delay_for(const classification& c, int attempts_made, random_source& rng) const;
};

/// @brief Whether an outcome is worth retrying (rate_limited, temporary_failure).
bool is_retryable(outcome o) noexcept;

}  // namespace webpushd::delivery
