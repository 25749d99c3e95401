#include <doctest/doctest.h>

#include <set>

#include "webpushd/crypto/primitives.hpp"

using namespace webpushd;

TEST_CASE("sha256 matches FIPS 180-2 test vectors") {
  CHECK(hex_encode(crypto::sha256(as_bytes("abc"))) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_encode(crypto::sha256(as_bytes(""))) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("hmac_sha256 matches RFC 4231 test case 2") {
  CHECK(hex_encode(crypto::hmac_sha256(as_bytes("Jefe"), as_bytes("what do ya want for nothing?"))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("random tokens are base64url, of the asked size, and do not repeat") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto t = crypto::random_token(32);
    CHECK(t.size() == 43);
    CHECK(base64url_decode(t).has_value());
    seen.insert(t);
  }
  CHECK(seen.size() == 1000);
  CHECK(crypto::random_bytes(0).empty());
}

TEST_CASE("constant_time_equal compares contents and lengths") {
  CHECK(crypto::constant_time_equal("secret-key", "secret-key"));
  CHECK_FALSE(crypto::constant_time_equal("secret-key", "secret-kex"));
  CHECK_FALSE(crypto::constant_time_equal("secret-key", "secret-key2"));
  CHECK(crypto::constant_time_equal("", ""));
}
