#include "webpushd/webpush/openssl_baseline.hpp"

#include <openssl/err.h>

#include <array>
#include <stdexcept>

#include "openssl_util.hpp"

namespace webpushd::webpush {

struct openssl_p256_baseline::impl {
  detail::evp_pkey_ctx_ptr keygen_ctx{EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)};
  detail::evp_pkey_ctx_ptr derive_ctx;
  detail::bn_ctx_ptr bn_ctx{BN_CTX_new()};
  detail::bn_ptr scalar{BN_new()};
  detail::ec_point_ptr point{EC_POINT_new(detail::p256_group())};
  detail::ec_point_ptr peer{EC_POINT_new(detail::p256_group())};

  impl() {
    if (!keygen_ctx || !bn_ctx || !scalar || !point || !peer || EVP_PKEY_keygen_init(keygen_ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(keygen_ctx.get(), "P-256") != 1)
      fail_openssl("prepare P-256 key generation");
    // ECDH is timed as `openssl speed ecdhp256` does: one context with our
    // key and a fixed peer, derive repeated.
    const detail::evp_pkey_ptr own{evp_keygen()};
    const detail::evp_pkey_ptr other{evp_keygen()};
    derive_ctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, own.get(), nullptr));
    if (!derive_ctx || EVP_PKEY_derive_init(derive_ctx.get()) != 1 ||
        EVP_PKEY_derive_set_peer(derive_ctx.get(), other.get()) != 1)
      fail_openssl("prepare ECDH");
    // The bare variants use a random scalar and a random peer point.
    if (BN_priv_rand_range(scalar.get(), EC_GROUP_get0_order(detail::p256_group())) != 1 ||
        EC_POINT_mul(detail::p256_group(), peer.get(), scalar.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
        BN_priv_rand_range(scalar.get(), EC_GROUP_get0_order(detail::p256_group())) != 1)
      fail_openssl("prepare bare EC operations");
  }

  [[noreturn]] static void fail_openssl(const char* what) {
    ERR_clear_error();
    throw std::runtime_error(std::string("OpenSSL failed to ") + what);
  }

  EVP_PKEY* evp_keygen() {
    EVP_PKEY* key = nullptr;
    if (EVP_PKEY_keygen(keygen_ctx.get(), &key) != 1) fail_openssl("generate a P-256 key");
    return key;
  }

  void once(operation op) {
    std::array<std::uint8_t, detail::p256_point_size> out{};
    std::size_t len = out.size();
    switch (op) {
      case operation::evp_keygen:
        EVP_PKEY_free(evp_keygen());
        return;
      case operation::evp_ecdh:
        if (EVP_PKEY_derive(derive_ctx.get(), out.data(), &len) != 1) fail_openssl("derive an ECDH secret");
        return;
      case operation::ec_keygen:
        if (BN_priv_rand_range(scalar.get(), EC_GROUP_get0_order(detail::p256_group())) != 1 ||
            EC_POINT_mul(detail::p256_group(), point.get(), scalar.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
            EC_POINT_point2oct(detail::p256_group(), point.get(), POINT_CONVERSION_UNCOMPRESSED, out.data(), out.size(),
                               bn_ctx.get()) != out.size())
          fail_openssl("multiply the generator");
        return;
      case operation::ec_ecdh:
        if (EC_POINT_mul(detail::p256_group(), point.get(), nullptr, peer.get(), scalar.get(), bn_ctx.get()) != 1 ||
            EC_POINT_point2oct(detail::p256_group(), point.get(), POINT_CONVERSION_UNCOMPRESSED, out.data(), out.size(),
                               bn_ctx.get()) != out.size())
          fail_openssl("multiply a point");
        return;
    }
  }
};

openssl_p256_baseline::openssl_p256_baseline() : impl_(std::make_unique<impl>()) {}
openssl_p256_baseline::~openssl_p256_baseline() = default;
openssl_p256_baseline::openssl_p256_baseline(openssl_p256_baseline&&) noexcept = default;
openssl_p256_baseline& openssl_p256_baseline::operator=(openssl_p256_baseline&&) noexcept = default;

openssl_p256_baseline::sample openssl_p256_baseline::run(operation op, std::chrono::nanoseconds budget) {
  using steady = std::chrono::steady_clock;
  const auto start = steady::now();
  sample s;
  do {
    impl_->once(op);
    ++s.operations;
    s.elapsed = steady::now() - start;
  } while (s.elapsed < budget);
  return s;
}

}  // namespace webpushd::webpush
