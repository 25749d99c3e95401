#pragma once
/// @file
/// @brief The small cryptographic tools the daemon needs outside Web Push
/// itself: hashes for the consent ledger, HMAC for signed ids, unguessable
/// tokens, and constant-time comparison of secrets. Backed by OpenSSL.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"

namespace webpushd::crypto {

/// @brief A SHA-256 digest.
using digest256 = std::array<std::uint8_t, 32>;

/// @brief SHA-256 of `data`.
digest256 sha256(byte_view data);
/// @brief HMAC-SHA-256 of `data` under `key`.
digest256 hmac_sha256(byte_view key, byte_view data);
/// @brief `n` bytes from OpenSSL's CSPRNG. Aborts if the CSPRNG fails
/// (continuing without randomness would hand out guessable secrets).
bytes random_bytes(std::size_t n);
/// @brief An unguessable token: `n` random bytes in base64url (default 32 → 43 characters).
std::string random_token(std::size_t n = 32);
/// @brief Compares without leaking where the first difference is. Different
/// lengths compare unequal (the length of a secret is not secret here).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace webpushd::crypto
