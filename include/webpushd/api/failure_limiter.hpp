#pragma once
/// @file
/// @brief Failed attempts per client address (IPv6 by its /64), for anything
/// an attacker could guess: dashboard passwords, backend API keys.

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "webpushd/core/clock.hpp"

namespace webpushd::api {

/// @brief After `max_failures` failed attempts within `window`, the address is
/// refused (whatever it presents, a right credential too) until the oldest of
/// them is `window` old. Thread-safe; keeps at most `max_addresses` (the one
/// whose latest failure is oldest is forgotten first).
class failure_limiter {
 public:
  /// @brief The limits.
  struct limits {
    unsigned max_failures = 5;
    std::chrono::seconds window{std::chrono::minutes{15}};
    std::size_t max_addresses = 10000;
  };
  explicit failure_limiter(limits l);
  failure_limiter() : failure_limiter(limits{}) {}
  /// @brief nullopt when `address` may try now, else how long until it may
  /// (at least a second: the value goes into `Retry-After`).
  std::optional<std::chrono::seconds> blocked_for(std::string_view address, time_point now) const;
  /// @brief Counts a failed attempt.
  void failed(std::string_view address, time_point now);
  /// @brief Forgets the address's failures.
  void succeeded(std::string_view address);
  /// @brief The limits it applies.
  const limits& settings() const { return limits_; }

 private:
  static std::string key_of(std::string_view address);
  limits limits_;
  mutable std::mutex mutex_;
  std::map<std::string, std::deque<time_point>, std::less<>> failures_;
};

}  // namespace webpushd::api
