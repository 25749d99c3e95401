#include "recent_window.hpp"

#include <algorithm>
#include <cmath>

namespace webpushd::metrics::detail {
namespace {

// Bucket i holds latencies in (lowest·2^((i-1)/4), lowest·2^(i/4)]; bucket 0
// everything up to `lowest`, the last one everything beyond the one before.
constexpr double lowest = 0.001;
constexpr double steps_per_doubling = 4;

// A quantile of the distribution in `buckets` (with `total` entries), by
// linear interpolation inside the bucket it falls in, as Prometheus'
// histogram_quantile does.
double quantile(const std::array<std::uint64_t, recent_window::bucket_count>& buckets, std::uint64_t total, double q) {
  const double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0) continue;
    if (static_cast<double>(below + buckets[i]) >= rank) {
      const double lo = i == 0 ? 0.0 : recent_window::upper_bound(i - 1);
      const double hi = recent_window::upper_bound(i);
      const double within = (rank - static_cast<double>(below)) / static_cast<double>(buckets[i]);
      return lo + (hi - lo) * std::clamp(within, 0.0, 1.0);
    }
    below += buckets[i];
  }
  return recent_window::upper_bound(buckets.size() - 1);
}

}  // namespace

recent_window::recent_window(std::size_t seconds) : slots_(std::max<std::size_t>(seconds, 1)) {}

std::size_t recent_window::bucket_of(double seconds) {
  if (!(seconds > lowest)) return 0;  // also NaN
  const double i = std::ceil(std::log2(seconds / lowest) * steps_per_doubling - 1e-9);
  return static_cast<std::size_t>(std::clamp(i, 0.0, static_cast<double>(bucket_count - 1)));
}

double recent_window::upper_bound(std::size_t bucket) {
  return lowest * std::exp2(static_cast<double>(bucket) / steps_per_doubling);
}

recent_window::slot& recent_window::slot_for(std::int64_t second) {
  auto& s = slots_[static_cast<std::size_t>(second % static_cast<std::int64_t>(slots_.size()))];
  if (s.second != second) {
    // A second that has left the window: start it afresh.
    s = slot{};
    s.second = second;
  }
  return s;
}

void recent_window::record(std::int64_t now, std::size_t outcome, std::size_t service, std::optional<double> latency) {
  if (now < 0 || outcome >= outcome_count || service >= service_count) return;
  std::lock_guard lock(mutex_);
  auto& s = slot_for(now);
  ++s.counts[outcome][service];
  if (latency) ++s.latency[bucket_of(*latency)];
}

recent_window::snapshot recent_window::read(std::int64_t now) const {
  snapshot out;
  std::array<std::uint64_t, bucket_count> latency{};
  std::uint64_t answered = 0;
  {
    std::lock_guard lock(mutex_);
    const auto oldest = now - static_cast<std::int64_t>(slots_.size()) + 1;
    for (const auto& s : slots_) {
      if (s.second < oldest || s.second > now) continue;
      for (std::size_t o = 0; o < outcome_count; ++o) {
        for (std::size_t v = 0; v < service_count; ++v) out.counts[o][v] += s.counts[o][v];
      }
      for (std::size_t b = 0; b < bucket_count; ++b) {
        latency[b] += s.latency[b];
        answered += s.latency[b];
      }
    }
  }
  if (answered > 0) {
    out.p50 = quantile(latency, answered, 0.5);
    out.p99 = quantile(latency, answered, 0.99);
  }
  return out;
}

}  // namespace webpushd::metrics::detail
