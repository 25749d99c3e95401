#include <doctest/doctest.h>

#include <filesystem>
#include <iterator>
#include <set>

#include "webpushd/crypto/primitives.hpp"
#include "webpushd/crypto/secret_file.hpp"

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

TEST_CASE("private files: a key is made once with mode 0600, read back, and a bad or unwritable one is refused") {
  const auto dir = std::filesystem::temp_directory_path() / ("webpushd-secret-" + webpushd::crypto::random_token(8));
  std::filesystem::create_directories(dir);
  const auto file = dir / "tracking.key";
  bool created = false;
  const auto made = webpushd::crypto::load_or_create_key(file, 32, created);
  REQUIRE(made.has_value());
  CHECK(created);
  CHECK(made->size() == 32);
  CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  const auto again = webpushd::crypto::load_or_create_key(file, 32, created);
  REQUIRE(again.has_value());
  CHECK_FALSE(created);
  CHECK(*again == *made);
  // Only the key is left in the folder: the temporary file was renamed.
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}) == 1);

  REQUIRE(webpushd::crypto::write_secret_file(file, "c2hvcnQ").has_value());
  const auto short_key = webpushd::crypto::load_or_create_key(file, 32, created);
  REQUIRE_FALSE(short_key.has_value());
  CHECK(short_key.error().code == "invalid_key");

  const auto nowhere = webpushd::crypto::write_private_file(dir / "missing" / "x", "secret");
  REQUIRE_FALSE(nowhere.has_value());
  CHECK(nowhere.error().code == "secret_unwritable");
  std::filesystem::remove_all(dir);
}
