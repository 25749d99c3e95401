#pragma once
/// @file
/// @brief An injectable clock, so the same code runs in real and virtual time.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace webpushd {

/// @brief Wall-clock time as the daemon uses it (UTC, system_clock based).
using time_point = std::chrono::system_clock::time_point;
using std::chrono::milliseconds;
using std::chrono::seconds;

/// @brief Source of "now". Implementations must be thread-safe.
class clock {
 public:
  virtual ~clock() = default;
  /// @brief The current time.
  virtual time_point now() const = 0;
};

/// @brief The real clock.
class system_clock final : public clock {
 public:
  time_point now() const override { return std::chrono::system_clock::now(); }
};

/// @brief A clock that only moves when told to (tests, simulation).
class manual_clock final : public clock {
 public:
  explicit manual_clock(time_point start = time_point{std::chrono::seconds{1'700'000'000}})
      : now_ns_(start.time_since_epoch().count()) {}
  time_point now() const override { return time_point{time_point::duration{now_ns_.load()}}; }
  /// @brief Moves time forward by `d`.
  void advance(time_point::duration d) { now_ns_ += d.count(); }
  /// @brief Sets the time.
  void set(time_point t) { now_ns_ = t.time_since_epoch().count(); }

 private:
  std::atomic<time_point::duration::rep> now_ns_;
};

/// @brief Seconds since the Unix epoch.
inline std::int64_t unix_seconds(time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
/// @brief Milliseconds since the Unix epoch (the unit the database stores).
inline std::int64_t unix_millis(time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
/// @brief The inverse of unix_millis. Saturates at the ends of time_point's
/// range (about ±292 years around 1970 with nanosecond ticks), because stored
/// values may come from other tools and must never overflow.
inline time_point from_unix_millis(std::int64_t ms) {
  using ticks = time_point::duration;
  constexpr auto per_ms = std::chrono::duration_cast<ticks>(std::chrono::milliseconds{1}).count();
  constexpr auto max_ms = ticks::max().count() / per_ms;
  constexpr auto min_ms = ticks::min().count() / per_ms;
  if (ms >= max_ms) return time_point::max();
  if (ms <= min_ms) return time_point::min();
  return time_point{std::chrono::duration_cast<ticks>(std::chrono::milliseconds{ms})};
}

}  // namespace webpushd
