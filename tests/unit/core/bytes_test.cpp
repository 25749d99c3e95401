#include <doctest/doctest.h>

#include "webpushd/core/bytes.hpp"

using namespace webpushd;

TEST_CASE("base64url round-trips every length and uses the URL alphabet") {
  bytes data;
  for (int n = 0; n < 70; ++n) {
    const auto text = base64url_encode(data);
    CHECK(text.find_first_of("+/=") == std::string::npos);
    const auto back = base64url_decode(text);
    REQUIRE(back.has_value());
    CHECK(*back == data);
    data.push_back(static_cast<std::uint8_t>(0xF0 + n * 37));
  }
}

TEST_CASE("base64url matches RFC 4648 test vectors") {
  CHECK(base64url_encode(as_bytes("")) == "");
  CHECK(base64url_encode(as_bytes("f")) == "Zg");
  CHECK(base64url_encode(as_bytes("fo")) == "Zm8");
  CHECK(base64url_encode(as_bytes("foo")) == "Zm9v");
  CHECK(base64url_encode(as_bytes("foobar")) == "Zm9vYmFy");
  const bytes high{0xFB, 0xFF};
  CHECK(base64url_encode(high) == "-_8");
}

TEST_CASE("base64url rejects what is not base64url") {
  CHECK_FALSE(base64url_decode("Zm9v+").has_value());   // standard alphabet
  CHECK_FALSE(base64url_decode("Zm9v/").has_value());
  CHECK_FALSE(base64url_decode("Z").has_value());       // impossible length
  CHECK_FALSE(base64url_decode("Zm9 v").has_value());   // whitespace
  CHECK_FALSE(base64url_decode("Zh").has_value());      // non-zero leftover bits
  CHECK(base64url_decode("Zg==").value() == bytes{'f'});  // padding tolerated
}

TEST_CASE("hex round-trips and rejects bad digits") {
  const bytes data{0x00, 0x7f, 0xff, 0x10};
  CHECK(hex_encode(data) == "007fff10");
  CHECK(hex_decode("007FFF10").value() == data);
  CHECK_FALSE(hex_decode("0").has_value());
  CHECK_FALSE(hex_decode("zz").has_value());
}
