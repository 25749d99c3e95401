#include <doctest/doctest.h>

#include "webpushd/crypto/password.hpp"

using namespace webpushd;

namespace {
// Tests use the smallest N allowed: the format and the checks are the same,
// and the suite stays fast.
constexpr crypto::scrypt_params cheap{10, 8, 1};
}  // namespace

TEST_CASE("verify_password uses scrypt as RFC 7914 §12 computes it") {
  // The RFC's second test vector: "password", salt "NaCl", N = 1024, r = 8, p = 16.
  crypto::password_hash h;
  h.params = {10, 8, 16};
  h.salt = bytes{'N', 'a', 'C', 'l'};
  h.key = *hex_decode(
      "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
      "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
  CHECK(crypto::verify_password(h, "password"));
  CHECK_FALSE(crypto::verify_password(h, "Password"));
}

TEST_CASE("a hash is self-describing, salted, and verifies only its password") {
  const auto text = crypto::hash_password("correct horse battery staple", cheap);
  CHECK(text.starts_with("$scrypt$ln=10,r=8,p=1$"));
  const auto parsed = crypto::parse_password_hash(text);
  REQUIRE(parsed.has_value());
  CHECK(parsed->params.log2_n == 10);
  CHECK(parsed->salt.size() == 16);
  CHECK(parsed->key.size() == 32);
  CHECK(crypto::verify_password(*parsed, "correct horse battery staple"));
  CHECK_FALSE(crypto::verify_password(*parsed, "correct horse battery stapl"));
  CHECK_FALSE(crypto::verify_password(*parsed, ""));
  // A fresh salt each time: the same password never gives the same text.
  CHECK(crypto::hash_password("correct horse battery staple", cheap) != text);
}

TEST_CASE("the default parameters are the documented ones") {
  const auto parsed = crypto::parse_password_hash(crypto::hash_password("pw"));
  REQUIRE(parsed.has_value());
  CHECK(parsed->params.log2_n == 15);
  CHECK(parsed->params.r == 8);
  CHECK(parsed->params.p == 1);
  CHECK(crypto::verify_password(*parsed, "pw"));
}

TEST_CASE("malformed hashes are refused with a reason, never echoed") {
  const auto good = crypto::hash_password("pw", cheap);
  const auto rest = good.substr(good.find("$", 8));  // "$salt$key"
  const std::string bad[] = {
      "",
      "plaintext-password",
      "$pbkdf2$ln=10,r=8,p=1" + rest,
      "$scrypt$ln=10,r=8" + rest,
      "$scrypt$ln=9,r=8,p=1" + rest,     // N too small
      "$scrypt$ln=21,r=8,p=1" + rest,    // N too large
      "$scrypt$ln=10,r=0,p=1" + rest,
      "$scrypt$ln=10,r=8,p=17" + rest,
      "$scrypt$ln=1x,r=8,p=1" + rest,
      "$scrypt$ln=10,r=8,p=1$c2hvcnQ$" + good.substr(good.rfind('$') + 1),  // 5-byte salt
      "$scrypt$ln=10,r=8,p=1" + rest + "$extra",
      "$scrypt$ln=10,r=8,p=1" + rest.substr(0, rest.rfind('$')) + "$!!!",
  };
  for (const auto& text : bad) {
    const auto parsed = crypto::parse_password_hash(text);
    CHECK_MESSAGE(!parsed.has_value(), text);
    if (!parsed) {
      CHECK(parsed.error().code == "invalid_password_hash");
      if (text.size() > 20) CHECK(parsed.error().message.find(text) == std::string::npos);
    }
  }
}
