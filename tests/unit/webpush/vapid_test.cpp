#include "webpushd/webpush/vapid.hpp"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"

namespace wp = webpushd::webpush;
namespace fs = std::filesystem;
using webpushd::as_bytes;
using webpushd::base64url_decode;
using webpushd::base64url_encode;
using webpushd::byte_view;
using webpushd::bytes;
using wp::test::b64;
namespace rfc8291 = wp::test::rfc8291;

namespace {

constexpr std::string_view rfc_ua_private = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
constexpr std::string_view rfc_ua_public =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";

/// Verifies a JOSE ES256 signature (raw r ‖ s) with OpenSSL alone: rebuild
/// the DER form and check it against a public key imported from its point.
bool es256_verifies(byte_view public_point, byte_view message, byte_view raw_signature) {
  if (raw_signature.size() != 64) return false;
  const std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig{ECDSA_SIG_new(), &ECDSA_SIG_free};
  BIGNUM* r = BN_bin2bn(raw_signature.data(), 32, nullptr);
  BIGNUM* s = BN_bin2bn(raw_signature.data() + 32, 32, nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) return false;
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  const std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner{der,
                                                                           [](unsigned char* p) { OPENSSL_free(p); }};
  if (der_len <= 0) return false;

  const std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> kctx{
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr), &EVP_PKEY_CTX_free};
  char group[] = "prime256v1";
  bytes point(public_point.begin(), public_point.end());
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("group", group, 0),
                               OSSL_PARAM_construct_octet_string("pub", point.data(), point.size()),
                               OSSL_PARAM_construct_end()};
  EVP_PKEY* raw = nullptr;
  if (!kctx || EVP_PKEY_fromdata_init(kctx.get()) != 1 ||
      EVP_PKEY_fromdata(kctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM*>(params)) != 1)
    return false;
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{raw, &EVP_PKEY_free};
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  return md && EVP_DigestVerifyInit_ex(md.get(), nullptr, "SHA256", nullptr, nullptr, pkey.get(), nullptr) == 1 &&
         EVP_DigestVerify(md.get(), der, static_cast<std::size_t>(der_len), message.data(), message.size()) == 1;
}

/// A temporary directory removed at scope exit.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("webpushd-vapid-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

std::string pem_of_new_key(const char* curve, bool traditional) {
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve),
                                                                 &EVP_PKEY_free};
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), &BIO_free};
  REQUIRE(pkey);
  REQUIRE(bio);
  const int ok =
      traditional ? PEM_write_bio_PrivateKey_traditional(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr)
                  : PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
  REQUIRE(ok == 1);
  std::string pem(BIO_ctrl_pending(bio.get()), '\0');
  BIO_read(bio.get(), pem.data(), static_cast<int>(pem.size()));
  return pem;
}

/// A JWT split into its decoded parts.
struct decoded_jwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signing_input;
  bytes signature;
};

decoded_jwt decode_jwt(const std::string& token) {
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  REQUIRE(dot1 != std::string::npos);
  REQUIRE(dot2 != std::string::npos);
  REQUIRE(token.find('.', dot2 + 1) == std::string::npos);
  const auto header = base64url_decode(token.substr(0, dot1));
  const auto claims = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const auto sig = base64url_decode(token.substr(dot2 + 1));
  REQUIRE(header);
  REQUIRE(claims);
  REQUIRE(sig);
  return {nlohmann::json::parse(webpushd::to_string(*header)), nlohmann::json::parse(webpushd::to_string(*claims)),
          token.substr(0, dot2), *sig};
}

std::string jwt_of(const std::string& authorization) {
  // "vapid t=<jwt>, k=<key>"
  REQUIRE(authorization.rfind("vapid t=", 0) == 0);
  const auto comma = authorization.find(", k=");
  REQUIRE(comma != std::string::npos);
  return authorization.substr(8, comma - 8);
}

}  // namespace

TEST_CASE("vapid_key: generated keys have an uncompressed public point") {
  const auto key = wp::vapid_key::generate();
  REQUIRE(key);
  CHECK(key->public_key()[0] == 0x04);
  CHECK(key->public_key_b64url().size() == 87);
  CHECK(b64(key->public_key_b64url()) == bytes(key->public_key().begin(), key->public_key().end()));
  const auto other = wp::vapid_key::generate();
  CHECK(other->public_key() != key->public_key());
}

TEST_CASE("vapid_key: a private scalar gives the known public key") {
  // RFC 8291 Appendix A's user agent pair doubles as a known P-256 key pair.
  const auto key = wp::vapid_key::from_private_scalar(b64(rfc_ua_private));
  REQUIRE(key);
  CHECK(key->public_key_b64url() == rfc_ua_public);
  CHECK(wp::vapid_key::from_private_scalar(bytes(32, 0)).error().code == "invalid_key");
  CHECK(wp::vapid_key::from_private_scalar(bytes(31, 1)).error().code == "invalid_key");
  CHECK(wp::vapid_key::from_private_scalar(bytes(32, 0xff)).error().code == "invalid_key");  // >= n
}

TEST_CASE("vapid_key: ES256 signatures are raw r||s and verify independently") {
  const auto key = wp::vapid_key::generate();
  REQUIRE(key);
  for (const std::string_view msg : {std::string_view{""}, std::string_view{"eyJ0eXAiOiJKV1QifQ.e30"}}) {
    const bytes sig = key->sign_es256(as_bytes(msg));
    REQUIRE(sig.size() == 64);
    CHECK(es256_verifies(key->public_key(), as_bytes(msg), sig));
    bytes bad = sig;
    bad[10] ^= 0x01;
    CHECK_FALSE(es256_verifies(key->public_key(), as_bytes(msg), bad));
  }
}

TEST_CASE("vapid_key: PEM save and load round-trip with mode 0600") {
  const temp_dir dir;
  const auto file = dir.path / "vapid_private.pem";
  const auto key = wp::vapid_key::generate();
  REQUIRE(key);
  REQUIRE(key->save_pem_file(file));

  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  std::ifstream in(file);
  std::string first_line;
  std::getline(in, first_line);
  CHECK(first_line == "-----BEGIN PRIVATE KEY-----");  // PKCS#8

  const auto loaded = wp::vapid_key::load_pem_file(file);
  REQUIRE(loaded);
  CHECK(loaded->public_key() == key->public_key());
  // A signature by the loaded key verifies under the original public key.
  CHECK(es256_verifies(key->public_key(), as_bytes("x"), loaded->sign_es256(as_bytes("x"))));

  SUBCASE("saving over an existing key replaces it and leaves no temp files") {
    const auto second = wp::vapid_key::generate();
    REQUIRE(second->save_pem_file(file));
    CHECK(wp::vapid_key::load_pem_file(file)->public_key() == second->public_key());
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
  }
  SUBCASE("an unwritable location is an error, not an exception") {
    const auto r = key->save_pem_file(dir.path / "no-such-dir" / "k.pem");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "key_unwritable");
  }
}

TEST_CASE("vapid_key: PEM parsing accepts SEC1 and PKCS#8 P-256, rejects the rest") {
  CHECK(wp::vapid_key::from_pem(pem_of_new_key("P-256", false)));
  const auto sec1 = pem_of_new_key("P-256", true);
  CHECK(sec1.rfind("-----BEGIN EC PRIVATE KEY-----", 0) == 0);
  CHECK(wp::vapid_key::from_pem(sec1));
  CHECK(wp::vapid_key::from_pem(pem_of_new_key("P-384", false)).error().code == "invalid_key");
  CHECK(wp::vapid_key::from_pem("").error().code == "invalid_key");
  CHECK(wp::vapid_key::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").error().code ==
        "invalid_key");
  CHECK(wp::vapid_key::load_pem_file("/nonexistent/vapid.pem").error().code == "key_unreadable");
}

TEST_CASE("validate_subject") {
  struct row {
    std::string_view subject;
    bool ok;
  };
  const row rows[] = {
      {"mailto:ops@example.com", true},
      {"mailto:ops+push@shop.example.co.uk", true},
      {"https://shop.example.com", true},
      {"https://shop.example.com/contact", true},
      {"https://shop.example.com:8443/", true},
      {"", false},
      {"mailto:", false},
      {"mailto:ops", false},
      {"mailto:@example.com", false},
      {"mailto:ops@", false},
      {"mailto:a@b@c", false},
      {"mailto: ops@example.com", false},
      {"mailto:ops@example.com ", false},
      {" mailto:ops@example.com", false},
      {"mailto:ops@exa\tmple.com", false},
      {"MAILTO:ops@example.com", false},
      {"http://shop.example.com", false},
      {"https://", false},
      {"https:shop.example.com", false},
      {"https://user@shop.example.com", false},
      {"https://shop example.com", false},
      {"ftp://shop.example.com", false},
      {"ops@example.com", false},
      {"shop.example.com", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.subject);
    const auto v = wp::validate_subject(r.subject);
    CHECK(static_cast<bool>(v) == r.ok);
    if (!v) CHECK(v.error().code == "invalid_vapid_subject");
  }
}

TEST_CASE("audience_of") {
  struct row {
    std::string_view endpoint;
    std::string_view audience;  // empty: rejected
  };
  const row rows[] = {
      {"https://fcm.googleapis.com/fcm/send/abc:def", "https://fcm.googleapis.com"},
      {"https://updates.push.services.mozilla.com/wpush/v2/gAAAA", "https://updates.push.services.mozilla.com"},
      {"https://web.push.apple.com/QGuQyavXutnMH", "https://web.push.apple.com"},
      {"HTTPS://FCM.GoogleAPIs.com/x", "https://fcm.googleapis.com"},
      {"https://push.example.com:443/x", "https://push.example.com"},
      {"https://push.example.com:8443/x", "https://push.example.com:8443"},
      {"http://127.0.0.1:8090/notify/abc", "http://127.0.0.1:8090"},
      {"http://push.example.com:80/x", "http://push.example.com"},
      {"http://push.example.com:443/x", "http://push.example.com:443"},
      {"https://push.example.com", "https://push.example.com"},
      {"https://push.example.com?x=1", "https://push.example.com"},
      {"https://push.example.com:/x", "https://push.example.com"},
      {"https://[::1]:8443/x", "https://[::1]:8443"},
      {"", ""},
      {"push.example.com/x", ""},
      {"ftp://push.example.com/x", ""},
      {"wss://push.example.com/x", ""},
      {"https:///x", ""},
      {"https://user:pw@push.example.com/x", ""},
      {"https://push.example.com:0/x", ""},
      {"https://push.example.com:65536/x", ""},
      {"https://push.example.com:12a/x", ""},
      {"https://push example.com/x", ""},
      {"https://[::1/x", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.endpoint);
    const auto a = wp::audience_of(r.endpoint);
    if (r.audience.empty()) {
      REQUIRE_FALSE(a);
      CHECK(a.error().code == "invalid_endpoint");
    } else {
      REQUIRE(a);
      CHECK(*a == r.audience);
    }
  }
}

TEST_CASE("vapid_signer: create validates subject and lifetime") {
  const webpushd::manual_clock clk;
  CHECK(wp::vapid_signer::create(*wp::vapid_key::generate(), "http://x.example", clk).error().code ==
        "invalid_vapid_subject");
  CHECK(wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:a@b.c", clk, std::chrono::seconds{59})
            .error()
            .code == "invalid_vapid_lifetime");
  CHECK_FALSE(wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:a@b.c", clk,
                                       wp::vapid_signer::max_lifetime + std::chrono::seconds{1}));
  CHECK(wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:a@b.c", clk, std::chrono::seconds{60}));
  CHECK(wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:a@b.c", clk, wp::vapid_signer::max_lifetime));
}

TEST_CASE("vapid_signer: the token decodes to the right header and claims and verifies") {
  const webpushd::manual_clock clk;
  auto key = *wp::vapid_key::generate();
  const auto public_point = key.public_key();
  auto signer = *wp::vapid_signer::create(std::move(key), "mailto:ops@shop.example", clk);
  const std::string auth = signer->authorization("https://fcm.googleapis.com");
  CHECK(auth.substr(auth.find(", k=") + 4) == signer->public_key_b64url());
  CHECK(b64(signer->public_key_b64url()) == bytes(public_point.begin(), public_point.end()));

  const auto jwt = decode_jwt(jwt_of(auth));
  CHECK(jwt.header == nlohmann::json{{"typ", "JWT"}, {"alg", "ES256"}});
  CHECK(jwt.claims.size() == 3);
  CHECK(jwt.claims["aud"] == "https://fcm.googleapis.com");
  CHECK(jwt.claims["sub"] == "mailto:ops@shop.example");
  const auto now = webpushd::unix_seconds(clk.now());
  const auto exp = jwt.claims["exp"].get<std::int64_t>();
  CHECK(exp > now);
  CHECK(exp <= now + 24 * 3600);
  CHECK(exp == now + 12 * 3600);  // the default lifetime
  CHECK(jwt.signature.size() == 64);
  CHECK(es256_verifies(public_point, as_bytes(jwt.signing_input), jwt.signature));
}

TEST_CASE("vapid_signer: claims are JSON-escaped") {
  const webpushd::manual_clock clk;
  const std::string subject = "https://shop.example/a\"b\\c";
  auto signer = *wp::vapid_signer::create(*wp::vapid_key::generate(), subject, clk);
  const auto jwt = decode_jwt(signer->make_jwt("https://x\"y", clk.now() + std::chrono::hours{1}));
  CHECK(jwt.claims["sub"] == subject);
  CHECK(jwt.claims["aud"] == "https://x\"y");
}

TEST_CASE("vapid_signer: tokens are cached per audience and renewed at half their lifetime") {
  webpushd::manual_clock clk;
  const auto lifetime = std::chrono::hours{12};
  auto signer = *wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:ops@shop.example", clk, lifetime);
  const std::string first = signer->authorization("https://fcm.googleapis.com");
  CHECK(signer->tokens_signed() == 1);

  clk.advance(std::chrono::hours{1});
  CHECK(signer->authorization("https://fcm.googleapis.com") == first);
  clk.advance(lifetime / 2 - std::chrono::hours{1} - std::chrono::seconds{1});  // 1 s before half-life
  CHECK(signer->authorization("https://fcm.googleapis.com") == first);
  CHECK(signer->tokens_signed() == 1);

  const std::string other = signer->authorization("https://updates.push.services.mozilla.com");
  CHECK(other != first);
  CHECK(decode_jwt(jwt_of(other)).claims["aud"] == "https://updates.push.services.mozilla.com");
  CHECK(signer->tokens_signed() == 2);

  clk.advance(std::chrono::seconds{1});  // exactly half the lifetime remains: renew
  const std::string renewed = signer->authorization("https://fcm.googleapis.com");
  CHECK(renewed != first);
  CHECK(signer->tokens_signed() == 3);
  CHECK(decode_jwt(jwt_of(renewed)).claims["exp"].get<std::int64_t>() == webpushd::unix_seconds(clk.now() + lifetime));
  CHECK(signer->authorization("https://fcm.googleapis.com") == renewed);

  SUBCASE("a clock that jumps back renews rather than sending exp > now + lifetime") {
    clk.advance(-std::chrono::hours{3});
    const std::string after_jump = signer->authorization("https://fcm.googleapis.com");
    CHECK(after_jump != renewed);
    CHECK(decode_jwt(jwt_of(after_jump)).claims["exp"].get<std::int64_t>() <=
          webpushd::unix_seconds(clk.now()) + 12 * 3600);
  }
}

TEST_CASE("vapid_signer: concurrent callers share one token") {
  const webpushd::manual_clock clk;
  auto signer = *wp::vapid_signer::create(*wp::vapid_key::generate(), "mailto:ops@shop.example", clk);
  std::vector<std::string> seen(4);
  {
    std::vector<std::jthread> threads;
    for (std::size_t t = 0; t < seen.size(); ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          const auto a = signer->authorization("https://fcm.googleapis.com");
          if (seen[t].empty()) seen[t] = a;
          if (a != seen[t]) seen[t] = "mismatch";
        }
      });
    }
  }
  for (const auto& s : seen) CHECK(s == seen[0]);
  CHECK(seen[0] != "mismatch");
  CHECK(signer->tokens_signed() == 1);
}
