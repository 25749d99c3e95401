#include "webpushd/webpush/content_encryption.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "test_support.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/webpush/subscription_keys.hpp"

namespace wp = webpushd::webpush;
using webpushd::as_bytes;
using webpushd::base64url_encode;
using webpushd::bytes;
using webpushd::to_string;
using wp::test::b64;
namespace rfc8291 = wp::test::rfc8291;

namespace {

wp::subscription_keys rfc_keys() { return *wp::parse_subscription_keys(rfc8291::ua_public, rfc8291::auth); }

/// A fresh subscription as a browser would create it.
struct subscriber {
  wp::test::ua_key_pair pair = wp::test::make_ua_key_pair();
  bytes auth = b64("AAECAwQFBgcICQoLDA0ODw");
  wp::subscription_keys keys =
      *wp::parse_subscription_keys(base64url_encode(pair.public_point), base64url_encode(auth));

  webpushd::result<bytes> open(const bytes& body) const {
    return wp::decrypt(body, pair.private_scalar, pair.public_point, auth);
  }
};

}  // namespace

TEST_CASE("encrypt_with reproduces RFC 8291 Appendix A byte for byte") {
  wp::content_encryptor enc;
  const auto body =
      enc.encrypt_with(rfc_keys(), as_bytes(rfc8291::plaintext), b64(rfc8291::as_private), b64(rfc8291::salt));
  REQUIRE(body);
  CHECK(base64url_encode(*body) == rfc8291::body);
}

TEST_CASE("decrypt recovers the RFC 8291 example with the user agent's private key") {
  const auto plain =
      wp::decrypt(b64(rfc8291::body), b64(rfc8291::ua_private), b64(rfc8291::ua_public), b64(rfc8291::auth));
  REQUIRE(plain);
  CHECK(to_string(*plain) == rfc8291::plaintext);
}

TEST_CASE("the header block is salt, rs = 4096, idlen = 65 and the ephemeral public key") {
  wp::content_encryptor enc;
  const auto body =
      enc.encrypt_with(rfc_keys(), as_bytes(rfc8291::plaintext), b64(rfc8291::as_private), b64(rfc8291::salt));
  REQUIRE(body);
  REQUIRE(body->size() == wp::header_size + rfc8291::plaintext.size() + 1 + 16);
  CHECK(bytes(body->begin(), body->begin() + 16) == b64(rfc8291::salt));
  CHECK(bytes(body->begin() + 16, body->begin() + 21) == bytes{0x00, 0x00, 0x10, 0x00, 65});
  CHECK(bytes(body->begin() + 21, body->begin() + 86) == b64(rfc8291::as_public));
}

TEST_CASE("encrypt then decrypt round-trips text in any script") {
  const subscriber ua;
  wp::content_encryptor enc;
  for (const std::string_view text :
       {std::string_view{""}, std::string_view{"a"}, rfc8291::plaintext, std::string_view{"Zażółć gęślą jaźń"},
        std::string_view{"Привіт"}, std::string_view{"🛒 Your cart misses you 🍉👍🏽"},
        std::string_view{"{\"title\":\"Sale\",\"body\":\"-20 %\"}"}}) {
    CAPTURE(text);
    const auto body = enc.encrypt(ua.keys, as_bytes(text));
    REQUIRE(body);
    const auto plain = ua.open(*body);
    REQUIRE(plain);
    CHECK(to_string(*plain) == text);
  }
}

TEST_CASE("binary payloads with trailing zeros survive padding removal") {
  const subscriber ua;
  wp::content_encryptor enc;
  const bytes payload{0x00, 0x02, 0x00, 0xff, 0x00, 0x00};
  for (const std::size_t pad : {0u, 10u, 64u}) {
    const auto body = enc.encrypt(ua.keys, payload, pad);
    REQUIRE(body);
    CHECK(*ua.open(*body) == payload);
  }
}

TEST_CASE("padding hides the length and is removed on receipt") {
  const subscriber ua;
  wp::content_encryptor enc;
  const auto short_body = enc.encrypt(ua.keys, as_bytes("hi"), 256);
  const auto long_body = enc.encrypt(ua.keys, as_bytes(std::string(200, 'x')), 256);
  REQUIRE(short_body);
  REQUIRE(long_body);
  CHECK(short_body->size() == wp::header_size + 256 + 1 + 16);
  CHECK(long_body->size() == short_body->size());
  CHECK(to_string(*ua.open(*short_body)) == "hi");
  CHECK(ua.open(*long_body)->size() == 200);

  SUBCASE("pad_to below the payload size changes nothing") {
    const auto body = enc.encrypt(ua.keys, as_bytes("hello"), 3);
    REQUIRE(body);
    CHECK(body->size() == wp::header_size + 5 + 1 + 16);
  }
  SUBCASE("pad_to beyond one record is clamped to the 4096-byte body") {
    const auto body = enc.encrypt(ua.keys, as_bytes("hello"), 100000);
    REQUIRE(body);
    CHECK(body->size() == wp::max_body_size);
    CHECK(to_string(*ua.open(*body)) == "hello");
  }
}

TEST_CASE("each message gets a fresh salt and ephemeral key") {
  const subscriber ua;
  wp::content_encryptor enc;
  const auto a = enc.encrypt(ua.keys, as_bytes(rfc8291::plaintext));
  const auto b = enc.encrypt(ua.keys, as_bytes(rfc8291::plaintext));
  REQUIRE(a);
  REQUIRE(b);
  CHECK(bytes(a->begin(), a->begin() + 16) != bytes(b->begin(), b->begin() + 16));
  CHECK(bytes(a->begin() + 21, a->begin() + 86) != bytes(b->begin() + 21, b->begin() + 86));
}

TEST_CASE("payload size limit: max_plaintext_size fits 4096 bytes, one more does not") {
  const subscriber ua;
  wp::content_encryptor enc;
  const bytes max_payload(wp::max_plaintext_size, 'm');
  const auto ok = enc.encrypt(ua.keys, max_payload);
  REQUIRE(ok);
  CHECK(ok->size() == wp::max_body_size);
  CHECK(*ua.open(*ok) == max_payload);

  const bytes too_big(wp::max_plaintext_size + 1, 'm');
  const auto r = enc.encrypt(ua.keys, too_big);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "payload_too_large");
  CHECK(r.error().field == "payload");
  const auto r2 = enc.encrypt_with(ua.keys, too_big, b64(rfc8291::as_private), b64(rfc8291::salt));
  REQUIRE_FALSE(r2);
  CHECK(r2.error().code == "payload_too_large");
}

TEST_CASE("encrypt_with rejects a bad ephemeral key or salt") {
  wp::content_encryptor enc;
  const auto keys = rfc_keys();
  const auto plain = as_bytes(rfc8291::plaintext);
  CHECK(enc.encrypt_with(keys, plain, bytes(32, 0), b64(rfc8291::salt)).error().field == "ephemeral_private_key");
  CHECK(enc.encrypt_with(keys, plain, bytes(31, 1), b64(rfc8291::salt)).error().field == "ephemeral_private_key");
  // The group order n itself is out of range.
  const bytes order = webpushd::hex_decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551").value();
  CHECK(enc.encrypt_with(keys, plain, order, b64(rfc8291::salt)).error().field == "ephemeral_private_key");
  CHECK(enc.encrypt_with(keys, plain, b64(rfc8291::as_private), bytes(15, 0)).error().field == "salt");
  // The encryptor stays usable after errors.
  CHECK(base64url_encode(*enc.encrypt_with(keys, plain, b64(rfc8291::as_private), b64(rfc8291::salt))) ==
        rfc8291::body);
}

TEST_CASE("a moved encryptor keeps working") {
  wp::content_encryptor a;
  wp::content_encryptor b = std::move(a);
  CHECK(base64url_encode(*b.encrypt_with(rfc_keys(), as_bytes(rfc8291::plaintext), b64(rfc8291::as_private),
                                         b64(rfc8291::salt))) == rfc8291::body);
}

TEST_CASE("decrypt refuses tampered, truncated or misaddressed bodies") {
  const bytes body = b64(rfc8291::body);
  const bytes ua_private = b64(rfc8291::ua_private);
  const bytes ua_public = b64(rfc8291::ua_public);
  const bytes auth = b64(rfc8291::auth);

  SUBCASE("a flipped ciphertext bit") {
    bytes t = body;
    t[100] ^= 0x01;
    CHECK(wp::decrypt(t, ua_private, ua_public, auth).error().code == "decryption_failed");
  }
  SUBCASE("a flipped salt bit") {
    bytes t = body;
    t[0] ^= 0x01;
    CHECK(wp::decrypt(t, ua_private, ua_public, auth).error().code == "decryption_failed");
  }
  SUBCASE("the wrong auth secret") {
    bytes wrong = auth;
    wrong[0] ^= 0x01;
    CHECK_FALSE(wp::decrypt(body, ua_private, ua_public, wrong));
  }
  SUBCASE("truncations of every length") {
    for (std::size_t n = 0; n < body.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(
          wp::decrypt(bytes(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(n)), ua_private, ua_public, auth));
    }
  }
  SUBCASE("a keyid that is not a P-256 point") {
    bytes t = body;
    t[21 + 64] ^= 0x01;
    CHECK(wp::decrypt(t, ua_private, ua_public, auth).error().code == "invalid_body");
  }
  SUBCASE("a record larger than rs") {
    bytes t = body;
    t[18] = 0x00;  // rs = 0x00000000 + small
    t[19] = 20;
    CHECK(wp::decrypt(t, ua_private, ua_public, auth).error().code == "invalid_body");
  }
}
