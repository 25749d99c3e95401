#pragma once
/// @file
/// @brief What a push service's answer means for the message and the subscription.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "webpushd/core/clock.hpp"
#include "webpushd/delivery/sender.hpp"

namespace webpushd::delivery {

/// @brief The decision a response leads to.
enum class outcome {
  accepted,           ///< 2xx: the push service took the message (keep Location)
  gone,               ///< 404/410: the subscription no longer exists; stop using it
  payload_too_large,  ///< 413: permanent for this message
  rejected,           ///< other 4xx, 3xx, or a refused endpoint: permanent for this message
  rate_limited,       ///< 429: retry after `retry_after` (or backoff)
  temporary_failure,  ///< 5xx, 408, timeouts, connection errors: retry with backoff
};

/// @brief Text form ("accepted", "gone", …) for logs and the CLI.
const char* to_string(outcome o) noexcept;

/// @brief The outcome, how long the service asked us to wait, and why.
struct classification {
  outcome kind = outcome::temporary_failure;
  /// @brief The service's Retry-After, when it sent a usable one.
  std::optional<std::chrono::seconds> retry_after;
  /// @brief Short and human-readable; never the endpoint URL or the Authorization header.
  std::string reason;
};

/// @brief Classifies one response. Pure: the same input gives the same answer.
classification classify(const http_response& response, time_point now);

/// @brief Why an attempt that may be retried failed, as a small fixed set
/// (metrics labels): "rate_limited" (429), "server_error" (5xx, 408, 425),
/// "timeout" (no answer in time) or "network" (no answer: connection
/// errors, an address the rules refuse). "" for any other answer.
const char* failure_class(const http_response& response) noexcept;

/// @brief Parses Retry-After (RFC 9110 §10.2.3): delta-seconds, or an
/// HTTP-date in IMF-fixdate, RFC 850 or asctime form, relative to `now`.
/// A date in the past gives 0 s; anything else (empty, negative, fractional,
/// trailing junk, an impossible date) gives nullopt. Very large values are
/// clamped to about 10 years so later arithmetic cannot overflow.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view value, time_point now);

}  // namespace webpushd::delivery
