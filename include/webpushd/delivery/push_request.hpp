#pragma once
/// @file
/// @brief One Web Push request (RFC 8030 §5) and checks on its header values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::delivery {

/// @brief Longest TTL push services accept (Mozilla autopush: 30 days).
inline constexpr std::int64_t max_ttl_seconds = 2'592'000;
/// @brief Longest Topic (RFC 8030 §5.4: at most 32 base64url characters).
inline constexpr std::size_t max_topic_length = 32;

/// @brief What a request does at the push service.
enum class push_method {
  post,     ///< delivers a message to the subscription (RFC 8030 §5)
  delete_,  ///< recalls a message not yet delivered, at its Location (RFC 8030 §7.3)
};

/// @brief What the sender sends to a push service.
struct push_request {
  push_method method = push_method::post;
  /// The URL: the subscription's endpoint for a POST, the message's Location
  /// for a DELETE. Checked with check_endpoint before submitting.
  std::string endpoint;
  std::string authorization;     ///< "vapid t=…, k=…"; empty: no Authorization header
  // A DELETE carries none of the following: it has no body, and TTL,
  // Urgency and Topic describe a message being delivered.
  bytes body;                    ///< aes128gcm-encrypted payload (may be empty)
  std::int32_t ttl_seconds = 0;  ///< TTL header, always sent with a POST (0..max_ttl_seconds)
  std::string urgency;           ///< "", "very-low", "low", "normal", "high"; "" omits the header
  std::string topic;             ///< "" omits the header; ≤ 32 base64url characters
};

/// @brief RFC 8030 §5.3 urgency levels.
enum class urgency { very_low, low, normal, high };

/// @brief Parses an Urgency value ("very-low", "low", "normal", "high"; exact,
/// lower case). Error: `invalid_urgency`, field "urgency".
result<urgency> parse_urgency(std::string_view text);
/// @brief The header text of an urgency level.
const char* to_string(urgency u) noexcept;

/// @brief Checks a TTL in seconds: 0..max_ttl_seconds. Error: `invalid_ttl`, field "ttl".
result<void> validate_ttl(std::int64_t seconds);
/// @brief Checks a Topic: empty, or 1..32 characters of the base64url
/// alphabet. Error: `invalid_topic`, field "topic".
result<void> validate_topic(std::string_view topic);
/// @brief Checks an Urgency field: empty (omitted) or a valid level.
/// Error: `invalid_urgency`, field "urgency".
result<void> validate_urgency(std::string_view text);

/// @brief Checks TTL, Urgency and Topic of a request (not the endpoint, which
/// check_endpoint covers, nor the body, which the push service judges).
result<void> validate(const push_request& req);

}  // namespace webpushd::delivery
