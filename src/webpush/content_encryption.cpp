#include "webpushd/webpush/content_encryption.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <stdexcept>
#include <tuple>

#include "openssl_util.hpp"

namespace webpushd::webpush {
namespace {

using detail::p256_group;
using detail::p256_point_size;

constexpr std::size_t salt_size = 16;
constexpr std::size_t tag_size = 16;
constexpr std::size_t cek_size = 16;
constexpr std::size_t nonce_size = 12;
constexpr std::size_t auth_size = 16;
constexpr std::size_t rs_offset = salt_size;
constexpr std::size_t idlen_offset = salt_size + 4;
constexpr std::size_t keyid_offset = idlen_offset + 1;
constexpr std::uint32_t record_size = max_body_size;
constexpr std::uint8_t last_record_delimiter = 0x02;

// HKDF info strings (RFC 8291 §3.4, RFC 8188 §2.2); sizeof keeps the trailing
// NUL that both RFCs require as part of the info.
constexpr char key_info_label[] = "WebPush: info";
constexpr char cek_info[] = "Content-Encoding: aes128gcm";
constexpr char nonce_info[] = "Content-Encoding: nonce";
// HKDF-Expand's single-block counter: every output here is at most 32 bytes.
constexpr std::uint8_t expand_counter[] = {0x01};

using block = std::array<std::uint8_t, 32>;

byte_view label_bytes(const char* label, std::size_t size_with_nul) {
  return {reinterpret_cast<const std::uint8_t*>(label), size_with_nul};
}

/// Zeroes secrets when a scope ends, whichever way it ends.
template <class... Buffers>
class cleanse_on_exit {
 public:
  explicit cleanse_on_exit(Buffers&... buffers) : buffers_(buffers...) {}
  ~cleanse_on_exit() {
    std::apply([](auto&... b) { (OPENSSL_cleanse(b.data(), b.size()), ...); }, buffers_);
  }
  cleanse_on_exit(const cleanse_on_exit&) = delete;
  cleanse_on_exit& operator=(const cleanse_on_exit&) = delete;

 private:
  std::tuple<Buffers&...> buffers_;
};

/// Content-encryption keys for one message.
struct message_keys {
  block cek{};    // first cek_size bytes used
  block nonce{};  // first nonce_size bytes used
};
static_assert(cek_size <= sizeof(block) && nonce_size <= sizeof(block), "HMAC-SHA-256 output holds CEK and nonce");

/// The OpenSSL state both directions share: made once, reused per message.
class ece_engine {
 public:
  ece_engine()
      : bn_ctx_(BN_CTX_new()),
        scalar_(BN_new()),
        peer_(EC_POINT_new(p256_group())),
        own_(EC_POINT_new(p256_group())),
        shared_(EC_POINT_new(p256_group())),
        cipher_(EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr)),
        cipher_ctx_(EVP_CIPHER_CTX_new()) {
    if (!bn_ctx_ || !scalar_ || !peer_ || !own_ || !shared_ || !cipher_ctx_)
      throw std::runtime_error("cannot allocate OpenSSL state for content encryption");
    if (!cipher_) throw std::runtime_error("OpenSSL provides no AES-128-GCM");
    // Bind the cipher once; each message then only sets key and IV.
    if (EVP_EncryptInit_ex2(cipher_ctx_.get(), cipher_.get(), nullptr, nullptr, nullptr) != 1)
      throw std::runtime_error("cannot initialise AES-128-GCM");
  }

  BIGNUM* scalar() { return scalar_.get(); }
  EC_POINT* peer() { return peer_.get(); }
  BN_CTX* bn_ctx() { return bn_ctx_.get(); }

  /// A fresh ephemeral scalar in [1, n-1] from OpenSSL's private DRBG.
  bool random_scalar() {
    const BIGNUM* order = EC_GROUP_get0_order(p256_group());
    do {
      if (BN_priv_rand_range(scalar_.get(), order) != 1) return false;
    } while (BN_is_zero(scalar_.get()) == 1);
    return true;
  }

  /// own = scalar · G, written uncompressed to `out` (65 bytes).
  bool public_point(std::uint8_t* out) {
    // Fixed-base multiplication: OpenSSL's P-256 code uses its precomputed
    // generator table here and runs in constant time in the scalar.
    return EC_POINT_mul(p256_group(), own_.get(), scalar_.get(), nullptr, nullptr, bn_ctx_.get()) == 1 &&
           EC_POINT_point2oct(p256_group(), own_.get(), POINT_CONVERSION_UNCOMPRESSED, out, p256_point_size,
                              bn_ctx_.get()) == p256_point_size;
  }

  /// The ECDH shared secret: the X coordinate of scalar · peer.
  bool ecdh(block& x) {
    std::array<std::uint8_t, p256_point_size> encoded{};
    cleanse_on_exit wipe{encoded};
    if (EC_POINT_mul(p256_group(), shared_.get(), nullptr, peer_.get(), scalar_.get(), bn_ctx_.get()) != 1 ||
        EC_POINT_is_at_infinity(p256_group(), shared_.get()) == 1 ||
        EC_POINT_point2oct(p256_group(), shared_.get(), POINT_CONVERSION_UNCOMPRESSED, encoded.data(), encoded.size(),
                           bn_ctx_.get()) != encoded.size())
      return false;
    std::copy_n(encoded.begin() + 1, x.size(), x.begin());
    return true;
  }

  /// RFC 8291 §3.3–3.4 and RFC 8188 §2.2: from the ECDH secret to CEK and nonce.
  bool derive(const block& ecdh_secret, byte_view ua_public, byte_view as_public, byte_view auth, byte_view salt,
              message_keys& keys) {
    std::array<std::uint8_t, sizeof key_info_label + 2 * p256_point_size> key_info{};
    auto* p =
        std::copy_n(reinterpret_cast<const std::uint8_t*>(key_info_label), sizeof key_info_label, key_info.data());
    p = std::copy(ua_public.begin(), ua_public.end(), p);
    std::copy(as_public.begin(), as_public.end(), p);

    block prk_key{};
    block ikm{};
    block prk{};
    cleanse_on_exit wipe{prk_key, ikm, prk};
    return hmac_.compute(auth, ecdh_secret, {}, prk_key) &&          // HKDF-Extract(auth, ecdh)
           hmac_.compute(prk_key, key_info, expand_counter, ikm) &&  // HKDF-Expand(…, key_info, 32)
           hmac_.compute(salt, ikm, {}, prk) &&                      // HKDF-Extract(salt, IKM)
           hmac_.compute(prk, label_bytes(cek_info, sizeof cek_info), expand_counter, keys.cek) &&
           hmac_.compute(prk, label_bytes(nonce_info, sizeof nonce_info), expand_counter, keys.nonce);
  }

  /// AES-128-GCM in place over `data`, tag written to `tag` (16 bytes).
  bool seal(const message_keys& keys, std::uint8_t* data, std::size_t size, std::uint8_t* tag) {
    int len = 0;
    int final_len = 0;
    return EVP_EncryptInit_ex2(cipher_ctx_.get(), nullptr, keys.cek.data(), keys.nonce.data(), nullptr) == 1 &&
           EVP_EncryptUpdate(cipher_ctx_.get(), data, &len, data, static_cast<int>(size)) == 1 &&
           EVP_EncryptFinal_ex(cipher_ctx_.get(), data + len, &final_len) == 1 &&
           EVP_CIPHER_CTX_ctrl(cipher_ctx_.get(), EVP_CTRL_AEAD_GET_TAG, tag_size, tag) == 1;
  }

  /// AES-128-GCM decryption; false if the tag does not verify.
  bool open(const message_keys& keys, byte_view ciphertext, const std::uint8_t* tag, std::uint8_t* out) {
    int len = 0;
    int final_len = 0;
    std::array<std::uint8_t, tag_size> tag_copy{};
    std::copy_n(tag, tag_size, tag_copy.begin());
    return EVP_DecryptInit_ex2(cipher_ctx_.get(), cipher_.get(), keys.cek.data(), keys.nonce.data(), nullptr) == 1 &&
           EVP_DecryptUpdate(cipher_ctx_.get(), out, &len, ciphertext.data(), static_cast<int>(ciphertext.size())) ==
               1 &&
           EVP_CIPHER_CTX_ctrl(cipher_ctx_.get(), EVP_CTRL_AEAD_SET_TAG, tag_size, tag_copy.data()) == 1 &&
           EVP_DecryptFinal_ex(cipher_ctx_.get(), out + len, &final_len) == 1;
  }

 private:
  detail::bn_ctx_ptr bn_ctx_;
  detail::bn_ptr scalar_;
  detail::ec_point_ptr peer_;
  detail::ec_point_ptr own_;
  detail::ec_point_ptr shared_;
  detail::evp_cipher_ptr cipher_;
  detail::evp_cipher_ctx_ptr cipher_ctx_;
  detail::hmac_sha256 hmac_;
};

void put_be32(std::uint8_t* out, std::uint32_t v) {
  out[0] = static_cast<std::uint8_t>(v >> 24);
  out[1] = static_cast<std::uint8_t>(v >> 16);
  out[2] = static_cast<std::uint8_t>(v >> 8);
  out[3] = static_cast<std::uint8_t>(v);
}

std::uint32_t get_be32(const std::uint8_t* in) {
  return (std::uint32_t{in[0]} << 24) | (std::uint32_t{in[1]} << 16) | (std::uint32_t{in[2]} << 8) | in[3];
}

tl::unexpected<error> crypto_failure(const char* what) {
  ERR_clear_error();
  return fail("crypto_error", std::string("OpenSSL failed to ") + what);
}

}  // namespace

struct content_encryptor::impl {
  ece_engine engine;

  /// Encrypts with the scalar already in engine.scalar(); always clears it.
  result<bytes> seal_message(const subscription_keys& keys, byte_view plaintext, byte_view salt, std::size_t pad_to) {
    struct clear_scalar {
      BIGNUM* bn;
      ~clear_scalar() { BN_clear(bn); }
    } clear{engine.scalar()};

    if (!detail::decode_p256_point(keys.p256dh, engine.peer(), engine.bn_ctx()))
      return fail("invalid_p256dh", "p256dh is not a point on P-256", "keys.p256dh");

    // Padding is a length-hiding hint: it never pushes a record past one body.
    const std::size_t padded = std::max(plaintext.size(), std::min(pad_to, max_plaintext_size));
    bytes body(header_size + padded + 1 + tag_size);
    std::uint8_t* out = body.data();
    std::copy(salt.begin(), salt.end(), out);
    put_be32(out + rs_offset, record_size);
    out[idlen_offset] = static_cast<std::uint8_t>(p256_point_size);
    if (!engine.public_point(out + keyid_offset)) return crypto_failure("derive the ephemeral public key");

    block secret{};
    message_keys mk;
    cleanse_on_exit wipe{secret, mk.cek, mk.nonce};
    if (!engine.ecdh(secret)) return crypto_failure("compute the ECDH secret");
    if (!engine.derive(secret, keys.p256dh, byte_view{out + keyid_offset, p256_point_size}, keys.auth, salt, mk))
      return crypto_failure("derive the content encryption key");

    std::uint8_t* record = out + header_size;
    std::copy(plaintext.begin(), plaintext.end(), record);
    record[plaintext.size()] = last_record_delimiter;  // the rest is already zero padding
    if (!engine.seal(mk, record, padded + 1, record + padded + 1)) return crypto_failure("encrypt the record");
    return body;
  }
};

content_encryptor::content_encryptor() : impl_(std::make_unique<impl>()) {}
content_encryptor::~content_encryptor() = default;
content_encryptor::content_encryptor(content_encryptor&&) noexcept = default;
content_encryptor& content_encryptor::operator=(content_encryptor&&) noexcept = default;

result<bytes> content_encryptor::encrypt(const subscription_keys& keys, byte_view plaintext, std::size_t pad_to) {
  if (plaintext.size() > max_plaintext_size)
    return fail("payload_too_large", "payload exceeds " + std::to_string(max_plaintext_size) + " bytes", "payload");
  std::array<std::uint8_t, salt_size> salt{};
  if (RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) return crypto_failure("draw a random salt");
  if (!impl_->engine.random_scalar()) return crypto_failure("draw an ephemeral key");
  return impl_->seal_message(keys, plaintext, salt, pad_to);
}

result<bytes> content_encryptor::encrypt_with(const subscription_keys& keys, byte_view plaintext,
                                              byte_view ephemeral_private_key, byte_view salt, std::size_t pad_to) {
  if (plaintext.size() > max_plaintext_size)
    return fail("payload_too_large", "payload exceeds " + std::to_string(max_plaintext_size) + " bytes", "payload");
  if (salt.size() != salt_size) return fail("invalid_argument", "salt must be 16 bytes", "salt");
  if (!detail::load_p256_scalar(ephemeral_private_key, impl_->engine.scalar())) {
    BN_clear(impl_->engine.scalar());
    return fail("invalid_argument", "ephemeral private key must be a 32-byte P-256 scalar", "ephemeral_private_key");
  }
  return impl_->seal_message(keys, plaintext, salt, pad_to);
}

result<bytes> decrypt(byte_view body, byte_view ua_private_key, byte_view ua_public_key, byte_view auth_secret) {
  if (auth_secret.size() != auth_size) return fail("invalid_argument", "auth secret must be 16 bytes", "auth");
  if (body.size() < keyid_offset) return fail("invalid_body", "body is shorter than an aes128gcm header", "body");
  if (body[idlen_offset] != p256_point_size)
    return fail("invalid_body", "keyid must be a 65-byte P-256 public key", "body");
  if (body.size() < header_size + 1 + tag_size) return fail("invalid_body", "body has no complete record", "body");
  const std::uint32_t rs = get_be32(body.data() + rs_offset);
  const byte_view ciphertext = body.subspan(header_size);
  // RFC 8291 §4: a Web Push message is exactly one record.
  if (rs < 1 + tag_size || ciphertext.size() > rs)
    return fail("invalid_body", "body must hold exactly one record no larger than rs", "body");

  ece_engine engine;
  struct clear_scalar {
    BIGNUM* bn;
    ~clear_scalar() { BN_clear(bn); }
  } clear{engine.scalar()};
  if (!detail::load_p256_scalar(ua_private_key, engine.scalar()))
    return fail("invalid_argument", "private key must be a 32-byte P-256 scalar", "ua_private_key");
  std::array<std::uint8_t, p256_point_size> ua_public{};
  if (ua_public_key.size() != ua_public.size())
    return fail("invalid_argument", "public key must be 65 bytes", "ua_public_key");
  std::copy(ua_public_key.begin(), ua_public_key.end(), ua_public.begin());
  const byte_view as_public = body.subspan(keyid_offset, p256_point_size);
  if (!detail::decode_p256_point(as_public, engine.peer(), engine.bn_ctx()))
    return fail("invalid_body", "keyid is not a point on P-256", "body");

  block secret{};
  message_keys mk;
  cleanse_on_exit wipe{secret, mk.cek, mk.nonce};
  if (!engine.ecdh(secret)) return crypto_failure("compute the ECDH secret");
  if (!engine.derive(secret, ua_public, as_public, auth_secret, body.first(salt_size), mk))
    return crypto_failure("derive the content encryption key");

  const std::size_t record_size_without_tag = ciphertext.size() - tag_size;
  bytes plain(record_size_without_tag);
  if (!engine.open(mk, ciphertext.first(record_size_without_tag), ciphertext.data() + record_size_without_tag,
                   plain.data())) {
    ERR_clear_error();
    return fail("decryption_failed", "authentication tag does not verify", "body");
  }
  // Strip zero padding; the last non-zero byte must be the last-record delimiter.
  const auto last = std::find_if(plain.rbegin(), plain.rend(), [](std::uint8_t b) { return b != 0; });
  if (last == plain.rend() || *last != last_record_delimiter)
    return fail("invalid_body", "record has no last-record delimiter", "body");
  plain.resize(static_cast<std::size_t>(plain.rend() - last) - 1);
  return plain;
}

}  // namespace webpushd::webpush
