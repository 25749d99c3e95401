#pragma once
// Internal to the webpush module: RAII owners for the OpenSSL handles it uses
// and the few P-256 helpers shared by key parsing, encryption and VAPID.
// OpenSSL headers stay out of the public include/ tree.

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>

#include "webpushd/core/bytes.hpp"

namespace webpushd::webpush::detail {

/// @brief A unique_ptr deleter calling the OpenSSL free function `Free`.
template <auto Free>
struct openssl_deleter {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using bn_ptr = std::unique_ptr<BIGNUM, openssl_deleter<&BN_clear_free>>;
using bn_ctx_ptr = std::unique_ptr<BN_CTX, openssl_deleter<&BN_CTX_free>>;
using ec_group_ptr = std::unique_ptr<EC_GROUP, openssl_deleter<&EC_GROUP_free>>;
using ec_point_ptr = std::unique_ptr<EC_POINT, openssl_deleter<&EC_POINT_clear_free>>;
using evp_pkey_ptr = std::unique_ptr<EVP_PKEY, openssl_deleter<&EVP_PKEY_free>>;
using evp_pkey_ctx_ptr = std::unique_ptr<EVP_PKEY_CTX, openssl_deleter<&EVP_PKEY_CTX_free>>;
using evp_md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, openssl_deleter<&EVP_MD_CTX_free>>;
using evp_cipher_ptr = std::unique_ptr<EVP_CIPHER, openssl_deleter<&EVP_CIPHER_free>>;
using evp_cipher_ctx_ptr = std::unique_ptr<EVP_CIPHER_CTX, openssl_deleter<&EVP_CIPHER_CTX_free>>;
using evp_mac_ptr = std::unique_ptr<EVP_MAC, openssl_deleter<&EVP_MAC_free>>;
using evp_mac_ctx_ptr = std::unique_ptr<EVP_MAC_CTX, openssl_deleter<&EVP_MAC_CTX_free>>;

/// @brief Bytes of an uncompressed P-256 point (0x04 ‖ X ‖ Y).
inline constexpr std::size_t p256_point_size = 65;
/// @brief Bytes of a P-256 scalar or field element.
inline constexpr std::size_t p256_scalar_size = 32;

/// @brief The P-256 group, built once per process. OpenSSL only reads a group
/// during point arithmetic, so one shared const instance is safe across threads.
const EC_GROUP* p256_group();

/// @brief Decodes a 65-byte uncompressed point into `out`, rejecting anything
/// that is not 0x04-prefixed, not on the curve, or the point at infinity.
bool decode_p256_point(byte_view encoded, EC_POINT* out, BN_CTX* bn_ctx);

/// @brief Loads a 32-byte big-endian scalar into `out` and checks 1 <= d < n.
bool load_p256_scalar(byte_view d, BIGNUM* out);

/// @brief HMAC-SHA256 with a context made once and re-keyed per call, so
/// HKDF costs no per-message fetches or allocations.
class hmac_sha256 {
 public:
  /// @brief Throws std::runtime_error if OpenSSL has no HMAC or SHA-256.
  hmac_sha256();
  /// @brief out = HMAC(key, data1 ‖ data2); false on an OpenSSL failure.
  bool compute(byte_view key, byte_view data1, byte_view data2, std::array<std::uint8_t, 32>& out);

 private:
  evp_mac_ptr mac_;
  evp_mac_ctx_ptr ctx_;
};

}  // namespace webpushd::webpush::detail
