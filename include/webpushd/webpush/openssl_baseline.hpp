#pragma once
/// @file
/// @brief OpenSSL's own P-256 speed, measured in-process: the yardstick that
/// `webpushctl bench encrypt` compares message encryption against.
///
/// Every Web Push message needs two P-256 operations: generating an ephemeral
/// key pair (one fixed-base multiplication) and ECDH with the subscriber's key
/// (one variable-base multiplication). Timing exactly those through OpenSSL,
/// with nothing else around them, bounds how fast any encryptor built on
/// OpenSSL can go on this machine.

#include <chrono>
#include <cstdint>
#include <memory>

namespace webpushd::webpush {

/// @brief Runs OpenSSL P-256 primitives in a loop. Not thread-safe; move-only.
class openssl_p256_baseline {
 public:
  /// @brief The operation to time.
  enum class operation {
    evp_keygen,  ///< EVP_PKEY_keygen on a prepared P-256 context (a new EVP_PKEY each time)
    evp_ecdh,    ///< EVP_PKEY_derive on a prepared context with a fixed peer (as `openssl speed ecdhp256`)
    ec_keygen,   ///< BN_priv_rand_range + EC_POINT_mul(G) + encode: the bare fixed-base multiplication
    ec_ecdh,     ///< EC_POINT_mul(peer) + encode: the bare variable-base multiplication
  };
  /// @brief Operations completed and the wall time they took.
  struct sample {
    std::uint64_t operations = 0;
    std::chrono::nanoseconds elapsed{0};
  };

  /// @brief Prepares keys and contexts. Throws std::runtime_error if OpenSSL lacks P-256.
  openssl_p256_baseline();
  ~openssl_p256_baseline();
  openssl_p256_baseline(openssl_p256_baseline&&) noexcept;
  openssl_p256_baseline& operator=(openssl_p256_baseline&&) noexcept;

  /// @brief Repeats `op` until at least `budget` has passed (at least once).
  /// Throws std::runtime_error if OpenSSL reports a failure.
  sample run(operation op, std::chrono::nanoseconds budget);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::webpush
