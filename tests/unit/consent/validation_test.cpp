#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_support.hpp"
#include "webpushd/consent/config.hpp"
#include "webpushd/consent/validation.hpp"

using namespace webpushd;
using namespace webpushd::consent;

namespace {

using testing::auth;
using testing::p256dh;
using testing::shop_config;

template <class T>
void check_error(const result<T>& r, const std::string& code, const std::string& field) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == code);
  CHECK(r.error().field == field);
}

}  // namespace

TEST_CASE("push subscriptions: endpoint rules and keys, with field paths") {
  const auto rules = delivery::default_endpoint_rules();
  const std::string fcm = "https://fcm.googleapis.com/fcm/send/abc";
  CHECK(validate_push_subscription(fcm, p256dh, auth, rules));
  check_error(validate_push_subscription("http://fcm.googleapis.com/x", p256dh, auth, rules), "endpoint_not_allowed",
              "subscription.endpoint");
  check_error(validate_push_subscription("https://evil.example/x", p256dh, auth, rules), "endpoint_not_allowed",
              "subscription.endpoint");
  check_error(validate_push_subscription("not a url", p256dh, auth, rules), "invalid_endpoint",
              "subscription.endpoint");
  check_error(validate_push_subscription(fcm, "BAAA", auth, rules), "invalid_p256dh", "subscription.keys.p256dh");
  std::string off_curve{p256dh};
  off_curve[10] = off_curve[10] == 'A' ? 'B' : 'A';
  check_error(validate_push_subscription(fcm, off_curve, auth, rules), "invalid_p256dh", "subscription.keys.p256dh");
  check_error(validate_push_subscription(fcm, p256dh, "AAAA", rules), "invalid_auth", "subscription.keys.auth");
  check_error(validate_push_subscription("https://x.example/", p256dh, auth, rules, "new"), "endpoint_not_allowed",
              "new.endpoint");
}

TEST_CASE("categories: known, unique, sorted; the index of the bad one is the field") {
  const auto config = shop_config();
  const auto ok = validate_categories({"promotions", "cart_reminders"}, config, false);
  REQUIRE(ok);
  CHECK(*ok == std::vector<std::string>{"cart_reminders", "promotions"});
  check_error(validate_categories({"promotions", "cart_reminders", "spam"}, config, false), "unknown_category",
              "consent.categories[2]");
  check_error(validate_categories({"promotions", "promotions"}, config, false), "duplicate_category",
              "consent.categories[1]");
  check_error(validate_categories({}, config, false), "invalid_categories", "consent.categories");
  CHECK(validate_categories({}, config, true).value().empty());
  CHECK(is_valid_category_name("cart_reminders"));
  CHECK_FALSE(is_valid_category_name("Cart"));
  CHECK_FALSE(is_valid_category_name("1st"));
  CHECK_FALSE(is_valid_category_name(std::string(65, 'a')));
}

TEST_CASE("text version, timezone, locale") {
  CHECK(validate_text_version("2024-05").value() == "2024-05");
  check_error(validate_text_version(""), "invalid_text_version", "consent.text_version");
  check_error(validate_text_version(std::string(65, 'v')), "invalid_text_version", "consent.text_version");
  check_error(validate_text_version("v 1"), "invalid_text_version", "consent.text_version");

  CHECK(validate_timezone("Europe/Warsaw", "UTC").value() == "Europe/Warsaw");
  CHECK(validate_timezone("", "UTC").value() == "UTC");
  check_error(validate_timezone("Europe/Atlantis", "UTC"), "invalid_timezone", "timezone");
  check_error(validate_timezone("../../etc/passwd", "UTC"), "invalid_timezone", "timezone");
  check_error(validate_timezone("Europe/Warsaw\n", "UTC"), "invalid_timezone", "timezone");

  CHECK(validate_locale("pl-PL", "en").value() == "pl-PL");
  CHECK(validate_locale("zh-Hant-TW", "en").value() == "zh-Hant-TW");
  CHECK(validate_locale("", "en").value() == "en");
  check_error(validate_locale("p", "en"), "invalid_locale", "locale");
  check_error(validate_locale("pl_PL", "en"), "invalid_locale", "locale");
  check_error(validate_locale("pl-", "en"), "invalid_locale", "locale");
  check_error(validate_locale("pl-<script>", "en"), "invalid_locale", "locale");
}

TEST_CASE("sources lose query and fragment; backends are labelled") {
  CHECK(normalise_source("https://shop.example/cart?email=a@b.c#top").value() == "https://shop.example/cart");
  CHECK(normalise_source("https://shop.example/#x").value() == "https://shop.example/");
  CHECK(normalise_source("").value() == "backend");
  CHECK(normalise_source("browser").value() == "browser");  // a subscriber with no page URL
  CHECK(normalise_source("backend:crm-sync").value() == "backend:crm-sync");
  check_error(normalise_source("javascript:alert(1)"), "invalid_source", "source");
  check_error(normalise_source("https://"), "invalid_source", "source");
  check_error(normalise_source("https://shop.example/a b"), "invalid_source", "source");
  check_error(normalise_source("https://shop.example/" + std::string(2048, 'a')), "invalid_source", "source");
  check_error(normalise_source("backend:"), "invalid_source", "source");
}

TEST_CASE("IP addresses are truncated to /24 and /48") {
  CHECK(truncate_ip("203.0.113.77").value() == "203.0.113.0/24");
  CHECK(truncate_ip("2001:db8:1:2:3:4:5:6").value() == "2001:db8:1::/48");
  CHECK(truncate_ip("::ffff:198.51.100.9").value() == "198.51.100.0/24");
  CHECK(truncate_ip("").value().empty());
  check_error(truncate_ip("203.0.113"), "invalid_ip", "ip");
  check_error(truncate_ip("example.com"), "invalid_ip", "ip");
}

TEST_CASE("customer and public ids") {
  CHECK(validate_customer_id("cust-42").value() == "cust-42");
  check_error(validate_customer_id(""), "invalid_customer_id", "customer_id");
  check_error(validate_customer_id("a\tb"), "invalid_customer_id", "customer_id");
  check_error(validate_customer_id(std::string(129, 'c')), "invalid_customer_id", "customer_id");
  CHECK(is_public_id("sub_AAAAAAAAAAAAAAAAAAAAAA"));
  CHECK_FALSE(is_public_id("sub_AAAA"));
  CHECK_FALSE(is_public_id("xyz_AAAAAAAAAAAAAAAAAAAAAA"));
}

TEST_CASE("the consent config is checked at start-up") {
  CHECK(validate_consent_config(shop_config()));
  auto c = shop_config();
  c.categories[1].name = "Bad Name";
  check_error(validate_consent_config(c), "config_invalid", "consent.categories[1].name");
  c = shop_config();
  c.categories[2].name = "cart_reminders";
  check_error(validate_consent_config(c), "config_invalid", "consent.categories[2].name");
  c = shop_config();
  c.categories[0].texts.erase("en");
  check_error(validate_consent_config(c), "config_invalid", "consent.categories[0].texts");
  c = shop_config();
  c.categories.clear();
  check_error(validate_consent_config(c), "config_invalid", "consent.categories");
  c = shop_config();
  c.text_version.clear();
  check_error(validate_consent_config(c), "config_invalid", "consent.text_version");
  c = shop_config();
  c.default_timezone = "Mars/Olympus";
  check_error(validate_consent_config(c), "config_invalid", "consent.default_timezone");

  const auto config = shop_config();
  const auto& promo = config.categories[2];
  CHECK(text_for(promo, "pl-PL").label == "pl promotions");
  CHECK(text_for(promo, "de").label == "promotions");
  // The shop's default language before English, and tags in any case.
  CHECK(localize(promo, "de-DE", "pl").locale == "pl");
  CHECK(localize(promo, "de-DE", "pl").text->label == "pl promotions");
  CHECK(localize(promo, "PL-pl", "en").locale == "pl");
  CHECK(localize(promo, "", "fr").locale == "en");
}
