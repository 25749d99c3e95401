// Backoff between attempts.
#include "webpushd/delivery/retry.hpp"

#include <algorithm>
#include <cmath>

namespace webpushd::delivery {

std::chrono::milliseconds retry_policy::delay_after(int attempts_made, random_source& rng) const {
  const double cap_ms = static_cast<double>(std::max<std::int64_t>(cap.count(), 0));
  const double base_ms = static_cast<double>(std::max<std::int64_t>(base.count(), 0));
  // Doubling in floating point and clamping to cap avoids integer overflow for
  // large attempt counts (2^62 ms would wrap).
  const int exponent = std::clamp(attempts_made - 1, 0, 62);
  const double full = std::min(cap_ms, base_ms * std::ldexp(1.0, exponent));
  const double j = std::clamp(jitter, 0.0, 1.0);
  const double u = std::clamp(rng.uniform(), 0.0, 1.0);
  const double delay = full * (1.0 - j * u);
  return std::chrono::milliseconds{static_cast<std::int64_t>(std::floor(delay))};
}

std::chrono::milliseconds retry_policy::delay_for(const classification& c, int attempts_made,
                                                  random_source& rng) const {
  if (c.retry_after) return std::chrono::duration_cast<std::chrono::milliseconds>(*c.retry_after);
  return delay_after(attempts_made, rng);
}

bool is_retryable(outcome o) noexcept { return o == outcome::rate_limited || o == outcome::temporary_failure; }

}  // namespace webpushd::delivery
