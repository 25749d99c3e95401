#include "webpushd/webpush/subscription_keys.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "test_support.hpp"
#include "webpushd/core/bytes.hpp"

namespace wp = webpushd::webpush;
using webpushd::base64url_encode;
using webpushd::bytes;
using wp::test::b64;
namespace rfc8291 = wp::test::rfc8291;

namespace {

void check_p256dh_rejected(const std::string& p256dh) {
  const auto r = wp::parse_subscription_keys(p256dh, rfc8291::auth);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid_p256dh");
  CHECK(r.error().field == "keys.p256dh");
  CHECK_FALSE(r.error().message.empty());
}

void check_auth_rejected(const std::string& auth) {
  const auto r = wp::parse_subscription_keys(rfc8291::ua_public, auth);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid_auth");
  CHECK(r.error().field == "keys.auth");
}

}  // namespace

TEST_CASE("a browser's subscription keys parse to their bytes") {
  const auto r = wp::parse_subscription_keys(rfc8291::ua_public, rfc8291::auth);
  REQUIRE(r);
  CHECK(bytes(r->p256dh.begin(), r->p256dh.end()) == b64(rfc8291::ua_public));
  CHECK(bytes(r->auth.begin(), r->auth.end()) == b64(rfc8291::auth));
}

TEST_CASE("padded base64url from server libraries is accepted") {
  CHECK(wp::parse_subscription_keys(std::string(rfc8291::ua_public) + "=", std::string(rfc8291::auth) + "=="));
}

TEST_CASE("p256dh: every malformed class is rejected with invalid_p256dh") {
  const bytes good = b64(rfc8291::ua_public);

  SUBCASE("not base64url") {
    check_p256dh_rejected("");
    check_p256dh_rejected("!!!!");
    check_p256dh_rejected(std::string(rfc8291::ua_public).replace(10, 1, "+"));  // standard base64, not url-safe
    check_p256dh_rejected(std::string(rfc8291::ua_public) + "A");                // impossible length
  }
  SUBCASE("wrong length") {
    check_p256dh_rejected(base64url_encode(bytes(good.begin(), good.end() - 1)));
    bytes longer = good;
    longer.push_back(0);
    check_p256dh_rejected(base64url_encode(longer));
  }
  SUBCASE("compressed points (0x02 / 0x03), as 33 bytes and padded to 65") {
    for (const std::uint8_t prefix : {0x02, 0x03}) {
      bytes compressed(good.begin(), good.begin() + 33);
      compressed[0] = prefix;
      check_p256dh_rejected(base64url_encode(compressed));
      bytes relabelled = good;
      relabelled[0] = prefix;
      check_p256dh_rejected(base64url_encode(relabelled));
    }
  }
  SUBCASE("a point not on the curve") {
    bytes off = good;
    off[64] ^= 0x01;
    check_p256dh_rejected(base64url_encode(off));
  }
  SUBCASE("coordinates outside the field") {
    // X = p, the field prime: not a field element at all.
    bytes big = b64("BP____8AAAABAAAAAAAAAAAAAAAA________________AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    REQUIRE(big.size() == 65);
    check_p256dh_rejected(base64url_encode(big));
  }
  SUBCASE("all zero and the point at infinity") {
    check_p256dh_rejected(base64url_encode(bytes(65, 0)));
    bytes origin(65, 0);
    origin[0] = 0x04;  // (0, 0) is not on P-256 since b != 0
    check_p256dh_rejected(base64url_encode(origin));
    check_p256dh_rejected(base64url_encode(bytes{0x00}));  // SEC1's encoding of infinity
  }
}

TEST_CASE("auth: anything but 16 base64url bytes is rejected with invalid_auth") {
  check_auth_rejected("");
  check_auth_rejected("BTBZMqHH6r4Tts7J_aSIg");     // 15 bytes and a bit: impossible
  check_auth_rejected("BTBZMqHH6r4Tts7J_aSI");      // 15 bytes
  check_auth_rejected("BTBZMqHH6r4Tts7J_aSIggAA");  // 18 bytes
  check_auth_rejected("BTBZMqHH6r4Tts7J/aSIgg");    // '/' is not base64url
  check_auth_rejected("BTBZMqHH 6r4Tts7J_aSIgg");
}

TEST_CASE("random input never crashes and never passes") {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> len(0, 120);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : junk) c = static_cast<char>(byte(rng));
    CHECK_FALSE(wp::parse_subscription_keys(junk, rfc8291::auth));
    bytes raw(65);
    for (auto& b : raw) b = static_cast<std::uint8_t>(byte(rng));
    raw[0] = 0x04;
    // A random (X, Y) lands on the curve with probability ~2^-256.
    CHECK_FALSE(wp::parse_subscription_keys(base64url_encode(raw), rfc8291::auth));
  }
}
