#pragma once
// The recent deliveries /v1/status reports: counts by outcome and push
// service, and a latency distribution, over a sliding window of whole
// seconds. One slot per second of the window, reused as time goes on, so
// memory is fixed and recording is O(1) whatever the send rate; the
// distribution uses log-spaced buckets (four per doubling, 1 ms to about a
// day), so a quantile read from it is within about 10 % of the true value.

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

namespace webpushd::metrics::detail {

inline constexpr std::size_t outcome_count = 6;  // sent, retried, gone, failed, dead, expired
inline constexpr std::size_t service_count = 5;  // fcm, mozilla, apple, windows, other

class recent_window {
 public:
  // `seconds` ≥ 1: how far back a snapshot looks.
  explicit recent_window(std::size_t seconds);

  // One delivery at unix second `now`; `latency` in seconds (≥ 0) when the
  // push service answered.
  void record(std::int64_t now, std::size_t outcome, std::size_t service, std::optional<double> latency);

  struct snapshot {
    std::array<std::array<std::uint64_t, service_count>, outcome_count> counts{};  // [outcome][service]
    std::optional<double> p50, p99;  // seconds
  };
  // What the last `seconds` (up to and including `now`) saw.
  snapshot read(std::int64_t now) const;

  // The bucket a latency falls in, and a bucket's upper bound (seconds).
  static std::size_t bucket_of(double seconds);
  static double upper_bound(std::size_t bucket);
  static constexpr std::size_t bucket_count = 110;

 private:
  struct slot {
    std::int64_t second = -1;  // the unix second it holds; -1: never used
    std::array<std::array<std::uint32_t, service_count>, outcome_count> counts{};
    std::array<std::uint32_t, bucket_count> latency{};
  };
  slot& slot_for(std::int64_t second);

  mutable std::mutex mutex_;
  std::vector<slot> slots_;
};

}  // namespace webpushd::metrics::detail
