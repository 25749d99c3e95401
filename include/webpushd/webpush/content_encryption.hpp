#pragma once
/// @file
/// @brief Message encryption for Web Push: RFC 8291 keys, RFC 8188 aes128gcm.

#include <cstddef>
#include <memory>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

namespace webpushd::webpush {

/// @brief Bytes of the aes128gcm header block with a 65-byte keyid (RFC 8188 §2.1).
inline constexpr std::size_t header_size = 16 + 4 + 1 + 65;
/// @brief The largest body push services must accept (RFC 8030 §7.2; Mozilla answers 413 above it).
inline constexpr std::size_t max_body_size = 4096;
/// @brief The largest plaintext that fits one 4096-byte record: minus header, tag and the 0x02 delimiter.
inline constexpr std::size_t max_plaintext_size = max_body_size - header_size - 16 - 1;

/// @brief Encrypts payloads for subscriptions.
///
/// Holds reusable OpenSSL state (cipher and digest handles, group tables), so
/// one instance per thread avoids per-message set-up. Not thread-safe: give
/// each worker thread its own. Move-only.
class content_encryptor {
 public:
  /// @brief Prepares OpenSSL state. Throws std::runtime_error only if OpenSSL
  /// itself cannot provide P-256 or AES-128-GCM (a broken installation).
  content_encryptor();
  ~content_encryptor();
  content_encryptor(content_encryptor&&) noexcept;
  content_encryptor& operator=(content_encryptor&&) noexcept;
  content_encryptor(const content_encryptor&) = delete;
  content_encryptor& operator=(const content_encryptor&) = delete;

  /// @brief Encrypts `plaintext` with a fresh ephemeral key pair and random
  /// 16-byte salt into one aes128gcm record (header block included).
  /// @param pad_to pad the plaintext with zeros up to this many bytes (0: no
  /// padding), which hides the exact message length. Values above
  /// max_plaintext_size are clamped to it, so a body never exceeds max_body_size.
  /// Errors: `payload_too_large` (field "payload") above max_plaintext_size;
  /// `invalid_p256dh` if `keys` did not come from parse_subscription_keys and
  /// hold no curve point; `crypto_error` if OpenSSL itself fails.
  result<bytes> encrypt(const subscription_keys& keys, byte_view plaintext, std::size_t pad_to = 0);

  /// @brief Deterministic variant: the ephemeral private key (32 bytes, big
  /// endian scalar) and salt (16 bytes) are given. For test vectors only.
  /// Errors: as encrypt(), plus `invalid_argument` (field "ephemeral_private_key"
  /// or "salt") for a scalar outside [1, n-1] or a salt that is not 16 bytes.
  result<bytes> encrypt_with(const subscription_keys& keys, byte_view plaintext, byte_view ephemeral_private_key,
                             byte_view salt, std::size_t pad_to = 0);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// @brief Decrypts an aes128gcm Web Push body as the user agent would
/// (RFC 8291 §3.4 from the receiving side). Used by tests and the project's
/// own test sink; independent checking is done by an external emulator.
/// @param ua_private_key the subscription's 32-byte private scalar
/// @param ua_public_key the subscription's 65-byte public key
/// Errors: `invalid_body` (malformed header, more than one record, bad keyid,
/// no delimiter), `decryption_failed` (tag mismatch: wrong keys or tampering),
/// `invalid_argument` for malformed keys.
result<bytes> decrypt(byte_view body, byte_view ua_private_key, byte_view ua_public_key, byte_view auth_secret);

}  // namespace webpushd::webpush
