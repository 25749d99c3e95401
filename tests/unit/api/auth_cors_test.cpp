#include <doctest/doctest.h>

#include "webpushd/api/auth.hpp"
#include "webpushd/api/cors.hpp"

using namespace webpushd::api;

namespace {
request with_auth(std::string value) {
  request r;
  r.headers = {{"Authorization", std::move(value)}};
  return r;
}
}  // namespace

TEST_CASE("api_key_set finds a key by value and names it") {
  const api_key_set keys({{"shop-a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, {"shop-b", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}});
  CHECK(keys.size() == 2);
  CHECK(keys.find("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") == "shop-a");
  CHECK(keys.find("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb") == "shop-b");
  CHECK_FALSE(keys.find("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab").has_value());
  CHECK_FALSE(keys.find("aaaa").has_value());
  CHECK_FALSE(keys.find("").has_value());
  CHECK_FALSE(api_key_set{}.find("").has_value());
  CHECK(api_key_set{}.empty());
}

TEST_CASE("authorization_credential reads exactly one header of one scheme") {
  CHECK(authorization_credential(with_auth("Bearer abc"), "Bearer") == "abc");
  CHECK(authorization_credential(with_auth("bEaReR   abc  "), "Bearer") == "abc");
  CHECK_FALSE(authorization_credential(with_auth("Bearerabc"), "Bearer").has_value());
  CHECK_FALSE(authorization_credential(with_auth("Bearer "), "Bearer").has_value());
  CHECK_FALSE(authorization_credential(with_auth("Basic YTpi"), "Bearer").has_value());
  CHECK_FALSE(authorization_credential(with_auth("Subscriber abc"), "Bearer").has_value());
  CHECK(authorization_credential(with_auth("Subscriber abc"), "Subscriber") == "abc");
  CHECK_FALSE(authorization_credential(request{}, "Bearer").has_value());
}

TEST_CASE("the two schemes never stand in for each other") {
  const std::string key = "0123456789abcdef0123456789abcdef";
  const api_key_set keys({{"backend", key}});
  CHECK(authenticate_backend(keys, with_auth("Bearer " + key)).value() == "backend");
  CHECK(authenticate_backend(keys, with_auth("Subscriber " + key)).error().code == "unauthorized");
  CHECK(subscriber_token(with_auth("Bearer " + key)).error().code == "unauthorized");
  CHECK(subscriber_token(with_auth("Subscriber tok")).value() == "tok");
  // With no key configured, nothing authenticates.
  CHECK_FALSE(authenticate_backend(api_key_set{}, with_auth("Bearer " + key)).has_value());
}

TEST_CASE("unauthorized_response names the scheme") {
  const auto res = unauthorized_response(webpushd::error{"unauthorized", "no", ""}, "Bearer");
  CHECK(res.status == 401);
  REQUIRE(res.headers.size() == 1);
  CHECK(res.headers[0].first == "WWW-Authenticate");
  CHECK(res.headers[0].second == "Bearer realm=\"webpushd\"");
}

TEST_CASE("cors_policy allows exactly the configured origins") {
  const cors_policy cors({"https://Shop.example", "http://localhost:3000"});
  CHECK(cors.allows("https://shop.example"));
  CHECK(cors.allows("HTTPS://SHOP.EXAMPLE"));
  CHECK(cors.allows("http://localhost:3000"));
  CHECK_FALSE(cors.allows("http://shop.example"));
  CHECK_FALSE(cors.allows("https://shop.example:443"));
  CHECK_FALSE(cors.allows("https://shop.example/"));
  CHECK_FALSE(cors.allows("https://evil.shop.example"));
  CHECK_FALSE(cors.allows("https://shop.example.evil"));
  CHECK_FALSE(cors.allows("null"));
  CHECK_FALSE(cors.allows(""));
  CHECK_FALSE(cors_policy{}.allows("https://shop.example"));

  response res;
  cors.decorate("https://shop.example", res);
  CHECK(res.headers == std::vector<std::pair<std::string, std::string>>{
                           {"Vary", "Origin"}, {"Access-Control-Allow-Origin", "https://shop.example"}});
  response refused;
  cors.decorate("https://evil.example", refused);
  CHECK(refused.headers == std::vector<std::pair<std::string, std::string>>{{"Vary", "Origin"}});
}
