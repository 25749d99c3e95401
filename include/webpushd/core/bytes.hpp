#pragma once
/// @file
/// @brief Byte buffers and base64url (RFC 4648 §5), the encoding every Web Push key uses.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace webpushd {

/// @brief An owned byte buffer.
using bytes = std::vector<std::uint8_t>;
/// @brief A read-only view of bytes.
using byte_view = std::span<const std::uint8_t>;

/// @brief Views the characters of a string as bytes.
inline byte_view as_bytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// @brief Copies bytes into a std::string (for HTTP bodies and printing).
inline std::string to_string(byte_view b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

/// @brief Encodes without padding, as RFC 8291 and RFC 8292 require.
std::string base64url_encode(byte_view data);

/// @brief Decodes base64url; trailing '=' padding is accepted (browsers never
/// send it, but some server libraries do). Returns nullopt for any character
/// outside the alphabet or an impossible length.
std::optional<bytes> base64url_decode(std::string_view text);

/// @brief Lower-case hex, for logs and test vectors.
std::string hex_encode(byte_view data);
/// @brief Decodes hex (either case); nullopt on odd length or a bad digit.
std::optional<bytes> hex_decode(std::string_view text);

}  // namespace webpushd
