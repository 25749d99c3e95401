#pragma once
// Helpers shared by the webpush unit tests: decoding fixtures and making
// user-agent key pairs with OpenSSL directly (independently of the module).

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"

namespace webpushd::webpush::test {

/// @brief RFC 8291 Appendix A. The application server's private key is the one
/// whose public key (BP4z9KsN…) the example's header block carries.
namespace rfc8291 {
inline constexpr std::string_view plaintext = "When I grow up, I want to be a watermelon";
inline constexpr std::string_view as_private = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
inline constexpr std::string_view as_public =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
inline constexpr std::string_view ua_private = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
inline constexpr std::string_view ua_public =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
inline constexpr std::string_view auth = "BTBZMqHH6r4Tts7J_aSIgg";
inline constexpr std::string_view salt = "DGv6ra1nlYgDCS1FRnbzlw";
inline constexpr std::string_view body =
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_"
    "c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_"
    "yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
}  // namespace rfc8291

/// @brief Decodes a base64url fixture; throws on a typo in the test itself.
inline bytes b64(std::string_view text) {
  auto out = base64url_decode(text);
  if (!out) throw std::invalid_argument("bad base64url fixture: " + std::string(text));
  return *out;
}

/// @brief A user agent's P-256 key pair, as a browser would make it.
struct ua_key_pair {
  bytes private_scalar;  ///< 32 bytes
  bytes public_point;    ///< 65 bytes, uncompressed
};

/// @brief A fresh P-256 key pair made with OpenSSL's EVP keygen.
inline ua_key_pair make_ua_key_pair() {
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                                 &EVP_PKEY_free};
  if (!pkey) throw std::runtime_error("keygen failed");
  BIGNUM* d = nullptr;
  if (EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1) throw std::runtime_error("no d");
  const std::unique_ptr<BIGNUM, decltype(&BN_clear_free)> d_owner{d, &BN_clear_free};
  ua_key_pair pair{bytes(32), bytes(65)};
  if (BN_bn2binpad(d, pair.private_scalar.data(), 32) != 32) throw std::runtime_error("bad d");
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey.get(), OSSL_PKEY_PARAM_PUB_KEY, pair.public_point.data(), 65, &len) != 1 ||
      len != 65)
    throw std::runtime_error("no public key");
  return pair;
}

}  // namespace webpushd::webpush::test
