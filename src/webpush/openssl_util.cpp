#include "openssl_util.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/params.h>

#include <stdexcept>

namespace webpushd::webpush::detail {

const EC_GROUP* p256_group() {
  // Built on first use and kept for the life of the process; a failure here
  // means OpenSSL lacks P-256, which no caller can recover from.
  static const ec_group_ptr group{EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)};
  if (!group) throw std::runtime_error("OpenSSL provides no P-256 group");
  return group.get();
}

bool decode_p256_point(byte_view encoded, EC_POINT* out, BN_CTX* bn_ctx) {
  if (encoded.size() != p256_point_size || encoded[0] != 0x04) return false;
  // oct2point verifies that (X, Y) satisfies the curve equation.
  if (EC_POINT_oct2point(p256_group(), out, encoded.data(), encoded.size(), bn_ctx) != 1) {
    // Bad input is expected here; leave no stale entries on this thread's error queue.
    ERR_clear_error();
    return false;
  }
  return EC_POINT_is_at_infinity(p256_group(), out) == 0;
}

bool load_p256_scalar(byte_view d, BIGNUM* out) {
  if (d.size() != p256_scalar_size) return false;
  if (BN_bin2bn(d.data(), static_cast<int>(d.size()), out) == nullptr) return false;
  return BN_is_zero(out) == 0 && BN_cmp(out, EC_GROUP_get0_order(p256_group())) < 0;
}

hmac_sha256::hmac_sha256() : mac_(EVP_MAC_fetch(nullptr, "HMAC", nullptr)) {
  if (!mac_) throw std::runtime_error("OpenSSL provides no HMAC");
  ctx_.reset(EVP_MAC_CTX_new(mac_.get()));
  if (!ctx_) throw std::runtime_error("cannot allocate an HMAC context");
  // The digest is set once; each compute() only re-keys the context.
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(ctx_.get(), params) != 1) throw std::runtime_error("OpenSSL provides no HMAC-SHA256");
}

bool hmac_sha256::compute(byte_view key, byte_view data1, byte_view data2, std::array<std::uint8_t, 32>& out) {
  std::size_t len = 0;
  return EVP_MAC_init(ctx_.get(), key.data(), key.size(), nullptr) == 1 &&
         EVP_MAC_update(ctx_.get(), data1.data(), data1.size()) == 1 &&
         EVP_MAC_update(ctx_.get(), data2.data(), data2.size()) == 1 &&
         EVP_MAC_final(ctx_.get(), out.data(), &len, out.size()) == 1 && len == out.size();
}

}  // namespace webpushd::webpush::detail
