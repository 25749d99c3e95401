#pragma once
/// @file
/// @brief The keys a browser's PushSubscription carries, validated.

#include <array>
#include <cstdint>
#include <string_view>

#include "webpushd/core/error.hpp"

namespace webpushd::webpush {

/// @brief A subscription's `keys`: the user agent's P-256 public key and auth secret.
struct subscription_keys {
  std::array<std::uint8_t, 65> p256dh{};  ///< uncompressed point (0x04 ‖ X ‖ Y), verified on the curve
  std::array<std::uint8_t, 16> auth{};    ///< the 16-byte authentication secret
};

/// @brief Decodes and validates base64url `p256dh` and `auth`.
///
/// Errors (field "keys.p256dh" / "keys.auth"): `invalid_p256dh` when the text
/// is not base64url, not 65 bytes, not uncompressed, or not a point on P-256;
/// `invalid_auth` when it is not base64url or not exactly 16 bytes.
result<subscription_keys> parse_subscription_keys(std::string_view p256dh_b64url, std::string_view auth_b64url);

}  // namespace webpushd::webpush
