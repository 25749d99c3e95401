#pragma once
/// @file
/// @brief VAPID (RFC 8292): the application server's key and the signed JWT
/// that identifies it to push services.

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::webpush {

/// @brief A P-256 private key used to sign VAPID tokens. Move-only.
class vapid_key {
 public:
  /// @brief A new random key.
  static result<vapid_key> generate();
  /// @brief Reads a PEM private key (PKCS#8 or SEC1 "EC PRIVATE KEY") from a file.
  /// Errors: `key_unreadable`, `invalid_key` (not P-256 or not a private key).
  static result<vapid_key> load_pem_file(const std::filesystem::path& path);
  /// @brief Parses a PEM private key from memory.
  static result<vapid_key> from_pem(std::string_view pem);
  /// @brief Builds a key from its raw 32-byte private scalar (tests, JWK import).
  static result<vapid_key> from_private_scalar(byte_view d);

  vapid_key(vapid_key&&) noexcept;
  vapid_key& operator=(vapid_key&&) noexcept;
  ~vapid_key();

  /// @brief Writes the key as PKCS#8 PEM, file mode 0600, atomically (temp file + rename).
  result<void> save_pem_file(const std::filesystem::path& path) const;
  /// @brief The uncompressed public point (65 bytes).
  const std::array<std::uint8_t, 65>& public_key() const;
  /// @brief The public key in base64url: the browser's `applicationServerKey`.
  std::string public_key_b64url() const;
  /// @brief ES256 signature as JOSE wants it: raw r ‖ s, 64 bytes.
  /// Throws std::runtime_error only if OpenSSL fails (resource exhaustion);
  /// the input is never the cause. Safe to call from several threads.
  bytes sign_es256(byte_view message) const;

 private:
  struct impl;
  explicit vapid_key(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// @brief Checks a VAPID `sub` claim: a `mailto:` address or an `https:` URL.
/// Apple's push service rejects anything else. Error: `invalid_vapid_subject`.
result<void> validate_subject(std::string_view subject);

/// @brief The JWT `aud` for an endpoint: its origin, `scheme://host[:port]`
/// (default ports omitted). Error: `invalid_endpoint`.
result<std::string> audience_of(std::string_view endpoint_url);

/// @brief Makes and caches VAPID `Authorization` header values.
///
/// Signing costs a P-256 signature, and Apple asks that tokens be renewed no
/// more than about once an hour, so tokens are cached per audience and renewed
/// once less than half their lifetime remains (or when the clock has moved
/// back so far that a cached `exp` lies more than the lifetime ahead).
/// Thread-safe: lookups share a lock; a renewal signs under an exclusive lock.
/// The clock must outlive the signer.
class vapid_signer {
 public:
  /// @brief Longest lifetime push services accept (Apple, Mozilla: 24 h).
  static constexpr std::chrono::seconds max_lifetime{24 * 3600};

  /// @brief Validates the subject and the lifetime (1 min .. 24 h).
  static result<std::unique_ptr<vapid_signer>> create(vapid_key key, std::string subject, const clock& clk,
                                                      std::chrono::seconds lifetime = std::chrono::hours{12});

  /// @brief `vapid t=<jwt>, k=<public key>` for this audience (cached).
  std::string authorization(std::string_view audience);
  /// @brief A freshly signed JWT (uncached), expiring at `expires`. The claims
  /// are JSON-escaped; throws only as vapid_key::sign_es256 does.
  std::string make_jwt(std::string_view audience, time_point expires) const;
  /// @brief The key's public half in base64url.
  const std::string& public_key_b64url() const { return public_key_b64url_; }
  /// @brief How many JWTs were signed so far (cache effectiveness; metrics).
  std::uint64_t tokens_signed() const;

  ~vapid_signer();

 private:
  vapid_signer(vapid_key key, std::string subject, const clock& clk, std::chrono::seconds lifetime);
  struct cache;
  vapid_key key_;
  std::string subject_;
  const clock& clock_;
  std::chrono::seconds lifetime_;
  std::string public_key_b64url_;
  std::unique_ptr<cache> cache_;
};

}  // namespace webpushd::webpush
