#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "webpushd/app/config.hpp"

using namespace webpushd::app;
using namespace std::chrono_literals;

namespace {
webpushd::result<config> parse(const std::string& text) { return parse_config(text, "shop.yaml", "/etc/webpushd"); }
const std::string minimal = "vapid:\n  subject: mailto:ops@shop.example\n";
}  // namespace

TEST_CASE("the shipped example config is valid") {
  const auto path = std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "examples" / "shop.yaml";
  const auto c = load_config(path);
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  CHECK(c->vapid.subject == "mailto:push-admin@example-shop.com");
  CHECK(c->server.listen_port == 8080);
  CHECK(c->delivery.retry.max_attempts == 8);
  CHECK(c->delivery.endpoints.allowed_hosts.size() == 5);
  CHECK(c->data_dir == (path.parent_path() / "../data").lexically_normal());
}

TEST_CASE("defaults fill what the file leaves out") {
  const auto c = parse(minimal);
  REQUIRE(c.has_value());
  CHECK(c->server.listen_host == "127.0.0.1");
  CHECK(c->vapid.token_lifetime == 12h);
  CHECK(c->delivery.max_in_flight == 2000);
  CHECK(c->delivery.connect_timeout == 5s);
  CHECK(c->delivery.endpoints.allowed_hosts.empty());
  CHECK_FALSE(c->delivery.endpoints.allow_http);
  CHECK(c->data_dir == std::filesystem::path("/etc/webpushd/data"));
}

TEST_CASE("JSON is accepted as well as YAML") {
  const auto c = parse(R"({"vapid":{"subject":"https://shop.example/contact"},"server":{"listen":"[::1]:9000"}})");
  REQUIRE(c.has_value());
  CHECK(c->server.listen_host == "::1");
  CHECK(c->server.listen_port == 9000);
}

TEST_CASE("errors point at the file, line, column and key") {
  SUBCASE("unknown key (a typo) is named at its own line") {
    const auto c = parse(minimal + "delivery:\n  max_inflight: 10\n");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().code == "config_invalid");
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:3: delivery.max_inflight") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("wrong type") {
    const auto c = parse(minimal + "delivery:\n  retry:\n    max_attempts: many\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:5:19: delivery.retry.max_attempts") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("out of range") {
    const auto c = parse(minimal + "delivery:\n  max_in_flight: 0\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:18: delivery.max_in_flight") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("missing required key points at the parent") {
    const auto c = parse("vapid:\n  token_lifetime: 1h\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:2:3: vapid") != std::string::npos, c.error().message);
  }
  SUBCASE("a VAPID subject Apple would refuse") {
    const auto c = parse("vapid:\n  subject: http://shop.example\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:2:12: vapid.subject") != std::string::npos, c.error().message);
  }
  SUBCASE("token lifetime over a day") {
    const auto c = parse(minimal + "  token_lifetime: 25h\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:3:19: vapid.token_lifetime") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("YAML syntax error") {
    const auto c = parse("vapid: [unclosed\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.rfind("shop.yaml:", 0) == 0, c.error().message);
  }
  SUBCASE("duplicate keys are refused rather than silently overridden") {
    const auto c = parse(minimal + "vapid:\n  subject: mailto:b@shop.example\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("duplicate key 'vapid'") != std::string::npos, c.error().message);
  }
  SUBCASE("a quoted number stays a string and fails the integer type") {
    const auto c = parse(minimal + "delivery:\n  workers: \"4\"\n");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.find("delivery.workers") != std::string::npos);
  }
}

TEST_CASE("text that is not UTF-8 is refused at its first bad byte (found by fuzzing)") {
  // A run of continuation bytes in a string made valijson's maxLength check
  // read past its own table (tests/fuzz/corpus/config/regress-invalid-utf8).
  const auto c = parse(minimal + "consent:\n  text_version: \"v\xe0\x8b\x97\x93\x80\x80\x80\x80\x80\x80\x80\"\n");
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().code == "config_invalid");
  CHECK_MESSAGE(c.error().message == "shop.yaml:4:19: not valid UTF-8 (the file must be UTF-8 text)", c.error().message);
  // Well-formed multi-byte text (Polish, an em dash, an emoji) is fine.
  CHECK(parse(minimal + "automation:\n  shop:\n    name: \"Sklep \xc5\xbc\xc3\xb3\xc5\x82w \xe2\x80\x94 \xf0\x9f\x9b\x92\"\n").has_value());
  // Surrogates and overlong forms are not UTF-8 either.
  CHECK_FALSE(parse(minimal + "# \xed\xa0\x80\n").has_value());
  CHECK_FALSE(parse(minimal + "# \xc0\xaf\n").has_value());
}

TEST_CASE("a missing file is a clear error") {
  const auto c = load_config("/nonexistent/webpushd.yaml");
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error().code == "config_unreadable");
}

TEST_CASE("durations") {
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("30s") == 30s);
  CHECK(parse_duration("5m") == 5min);
  CHECK(parse_duration("12h") == 12h);
  CHECK(parse_duration("7d") == 168h);
  CHECK_FALSE(parse_duration("5").has_value());
  CHECK_FALSE(parse_duration("h").has_value());
  CHECK_FALSE(parse_duration("5 s").has_value());
  CHECK_FALSE(parse_duration("1w").has_value());
}

TEST_CASE("server: HTTP limits, timeouts, CORS origins and API keys") {
  SUBCASE("defaults") {
    const auto c = parse(minimal);
    REQUIRE(c.has_value());
    CHECK(c->server.threads == 0);
    CHECK(c->server.body_limit == 1024 * 1024);
    CHECK(c->server.header_limit == 16 * 1024);
    CHECK(c->server.read_timeout == 10s);
    CHECK(c->server.idle_timeout == 60s);
    CHECK(c->server.max_connections == 10000);
    CHECK(c->server.api_key_max_failures == 10);
    CHECK(c->server.api_key_window == 5min);
    CHECK_FALSE(c->server.trust_forwarded_for);
    CHECK(c->server.cors_origins.empty());
    CHECK(c->server.api_keys.empty());
  }
  SUBCASE("all set") {
    const auto c = parse(minimal +
                         "server:\n"
                         "  listen: 0.0.0.0:0\n"
                         "  threads: 4\n"
                         "  body_limit: 65536\n"
                         "  header_limit: 8192\n"
                         "  read_timeout: 2s\n"
                         "  idle_timeout: 30s\n"
                         "  max_connections: 500\n"
                         "  api_key_limit: {max_failures: 3, window: 30s}\n"
                         "  trust_forwarded_for: true\n"
                         "  cors_origins: [https://shop.example, 'http://localhost:3000']\n"
                         "  api_keys:\n"
                         "    - name: backend\n"
                         "      key: 0123456789abcdef0123456789abcdef\n");
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    CHECK(c->server.listen_port == 0);
    CHECK(c->server.threads == 4);
    CHECK(c->server.body_limit == 65536);
    CHECK(c->server.header_limit == 8192);
    CHECK(c->server.read_timeout == 2s);
    CHECK(c->server.idle_timeout == 30s);
    CHECK(c->server.max_connections == 500);
    CHECK(c->server.api_key_max_failures == 3);
    CHECK(c->server.api_key_window == 30s);
    CHECK(c->server.trust_forwarded_for);
    CHECK(c->server.cors_origins == std::vector<std::string>{"https://shop.example", "http://localhost:3000"});
    REQUIRE(c->server.api_keys.size() == 1);
    CHECK(c->server.api_keys[0].name == "backend");
    CHECK(c->server.api_keys[0].key == "0123456789abcdef0123456789abcdef");
  }
  SUBCASE("the API key limit: a window from 1s to 1d, at least one failure, no other keys") {
    for (const char* bad : {"{window: 500ms}", "{window: 2d}", "{max_failures: 0}", "{max_failures: 3, per: 1m}"}) {
      const auto c = parse(minimal + "server:\n  api_key_limit: " + bad + "\n");
      CHECK_MESSAGE(!c.has_value(), bad);
      if (!c) CHECK_MESSAGE(c.error().message.find("api_key_limit") != std::string::npos, c.error().message);
    }
  }
  SUBCASE("an origin with a path, or upper case, is refused") {
    CHECK_FALSE(parse(minimal + "server:\n  cors_origins: [https://shop.example/]\n").has_value());
    CHECK_FALSE(parse(minimal + "server:\n  cors_origins: [https://Shop.example]\n").has_value());
    CHECK_FALSE(parse(minimal + "server:\n  cors_origins: ['*']\n").has_value());
  }
  SUBCASE("a short key is refused, and the message does not quote it") {
    const auto c = parse(minimal + "server:\n  api_keys:\n    - name: b\n      key: tooshort-secret\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("server.api_keys") != std::string::npos, c.error().message);
  }
  SUBCASE("repeated names or keys are refused without quoting the key") {
    const std::string key = "0123456789abcdef0123456789abcdef";
    auto c = parse(minimal + "server:\n  api_keys:\n    - {name: a, key: " + key + "}\n    - {name: a, key: " + key +
                   "x}\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("server.api_keys.1: name repeats entry 0") != std::string::npos,
                  c.error().message);
    c = parse(minimal + "server:\n  api_keys:\n    - {name: a, key: " + key + "}\n    - {name: b, key: " + key + "}\n");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.find(key) == std::string::npos);
  }
  SUBCASE("max_batch_events: 1000 by default, settable, at least 1") {
    CHECK(parse(minimal)->server.max_batch_events == 1000);
    const auto c = parse(minimal + "server:\n  max_batch_events: 50\n");
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    CHECK(c->server.max_batch_events == 50);
    const auto zero = parse(minimal + "server:\n  max_batch_events: 0\n");
    REQUIRE_FALSE(zero.has_value());
    CHECK_MESSAGE(zero.error().message.find("server.max_batch_events") != std::string::npos, zero.error().message);
  }
  SUBCASE("a zero timeout is refused") {
    const auto c = parse(minimal + "server:\n  read_timeout: 0s\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("server.read_timeout") != std::string::npos, c.error().message);
  }
}

TEST_CASE("consent categories come from the config, with a default when none are set") {
  const auto none = parse(minimal);
  REQUIRE(none.has_value());
  REQUIRE(none->consent.categories.size() == 1);
  CHECK(none->consent.categories[0].name == "updates");

  const auto c = parse(minimal + R"(consent:
  text_version: "2026-11"
  categories:
    - name: cart_reminders
      texts:
        en: {label: Cart reminders}
        pl: {label: Przypomnienia o koszyku, description: Najwyżej raz dziennie.}
)");
  REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
  REQUIRE(c->consent.categories.size() == 1);
  CHECK(c->consent.text_version == "2026-11");
  CHECK(c->consent.categories[0].texts.at("pl").label == "Przypomnienia o koszyku");
  CHECK(c->consent.categories[0].texts.at("en").description.empty());
}

TEST_CASE("consent errors the schema cannot see still point at their line") {
  SUBCASE("a category name used twice") {
    const auto c = parse(minimal + R"(consent:
  categories:
    - {name: promotions, texts: {en: {label: A}}}
    - {name: promotions, texts: {en: {label: B}}}
)");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:6:") != std::string::npos, c.error().message);
  }
  SUBCASE("a time zone that does not exist") {
    const auto c = parse(minimal + "consent:\n  default_timezone: Europe/Atlantis\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:21: consent.default_timezone") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("English texts are required") {
    const auto c = parse(minimal + "consent:\n  categories:\n    - {name: promotions, texts: {pl: {label: A}}}\n");
    REQUIRE_FALSE(c.has_value());
    CHECK(c.error().message.find("consent.categories") != std::string::npos);
  }
}

TEST_CASE("pacing: the example's defaults, nothing when the section is absent, errors at their line") {
  SUBCASE("the shipped example caps, spaces and quiets every device") {
    const auto c = load_config(std::filesystem::path(WEBPUSHD_SOURCE_DIR) / "examples" / "shop.yaml");
    REQUIRE(c.has_value());
    CHECK(c->pacing.configured);
    const auto& p = c->pacing.policy;
    CHECK(p.caps == std::vector<webpushd::pacing::cap>{{2, 24h}, {5, 7 * 24h}});
    CHECK(p.min_gap == 2h);
    CHECK(p.category_caps.at("promotions").size() == 2);
    REQUIRE(p.quiet.has_value());
    CHECK(p.quiet->from_minute == 21 * 60);
    CHECK(p.quiet->to_minute == 8 * 60);
    CHECK(p.default_timezone == c->consent.default_timezone);
    // Each scenario's own pacing joins the policy, by name.
    CHECK(p.scenarios.at("abandoned_cart").caps == std::vector<webpushd::pacing::cap>{{3, 7 * 24h}});
    CHECK(p.scenarios.at("abandoned_cart").value_field == "cart.total");
    CHECK(p.scenarios.at("abandoned_cart").adaptive.has_value());
    CHECK_FALSE(p.scenarios.at("win_back").defer);
  }
  SUBCASE("absent: nothing is capped") {
    const auto c = parse(minimal);
    REQUIRE(c.has_value());
    CHECK_FALSE(c->pacing.configured);
    CHECK(c->pacing.policy.caps.empty());
    CHECK_FALSE(c->pacing.policy.quiet.has_value());
  }
  SUBCASE("a malformed cap is named at its line") {
    const auto c = parse(minimal + "pacing:\n  caps: [\"2 per 1d\", \"twice a day\"]\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:22: pacing.caps.1") != std::string::npos, c.error().message);
  }
  SUBCASE("a zero window") {
    const auto c = parse(minimal + "pacing:\n  caps:\n    - 2 per 0s\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:5:7: the window must be longer than 0") != std::string::npos,
                  c.error().message);
  }
  SUBCASE("a category cap for a category that does not exist") {
    const auto c = parse(minimal + "pacing:\n  category_caps:\n    promo: [\"1 per 1d\"]\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:5:5: pacing.category_caps: 'promo' is not one of consent.categories") !=
                      std::string::npos,
                  c.error().message);
  }
  SUBCASE("quiet hours need both ends, as HH:MM") {
    const auto c = parse(minimal + "pacing:\n  quiet_hours:\n    from: \"9pm\"\n    to: \"08:00\"\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:5:11: pacing.quiet_hours.from") != std::string::npos,
                  c.error().message);
  }
}

TEST_CASE("dashboard: users with password hashes, the session lifetime, errors at their line") {
  SUBCASE("absent: no users (the daemon makes an initial admin) and 12h sessions") {
    const auto c = parse(minimal);
    REQUIRE(c.has_value());
    CHECK(c->dashboard.users.empty());
    CHECK(c->dashboard.session_lifetime == 12h);
  }
  // A real hash at the cheapest cost, as webpushctl dashboard hash-password makes them.
  const std::string hash = "$scrypt$ln=10,r=8,p=1$AAECAwQFBgcICQoLDA0ODw$AAECAwQFBgcICQoLDA0ODwABAgMEBQYHCAkKCwwNDg8";
  SUBCASE("users and lifetime") {
    const auto c = parse(minimal + "dashboard:\n  session_lifetime: 2h\n  users:\n    - name: marketing\n      password_hash: '" +
                         hash + "'\n    - {name: ops@shop, password_hash: '" + hash + "'}\n");
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    REQUIRE(c->dashboard.users.size() == 2);
    CHECK(c->dashboard.users[0].name == "marketing");
    CHECK(c->dashboard.users[0].password_hash == hash);
    CHECK(c->dashboard.users[1].name == "ops@shop");
    CHECK(c->dashboard.session_lifetime == 2h);
  }
  SUBCASE("a password where the hash belongs is refused at its line and not repeated") {
    const auto c = parse(minimal + "dashboard:\n  users:\n    - name: marketing\n      password_hash: hunter2hunter2\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:6:22: dashboard.users.0.password_hash: not a password hash made by "
                                         "'webpushctl dashboard hash-password'") != std::string::npos,
                  c.error().message);
    CHECK(c.error().message.find("hunter2") == std::string::npos);
  }
  SUBCASE("a repeated name") {
    const auto c = parse(minimal + "dashboard:\n  users:\n    - {name: a, password_hash: '" + hash +
                         "'}\n    - {name: a, password_hash: '" + hash + "'}\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:6:14: dashboard.users.1.name: 'a' repeats entry 0") !=
                      std::string::npos,
                  c.error().message);
  }
  SUBCASE("lifetime out of range, unknown key, bad name") {
    auto c = parse(minimal + "dashboard:\n  session_lifetime: 60d\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:21: dashboard.session_lifetime: must be between 5m and 30d") !=
                      std::string::npos,
                  c.error().message);
    c = parse(minimal + "dashboard:\n  user: []\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:3: dashboard.user: unknown key") != std::string::npos,
                  c.error().message);
    c = parse(minimal + "dashboard:\n  users:\n    - {name: 'a b', password_hash: '" + hash + "'}\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("dashboard.users.0.name") != std::string::npos, c.error().message);
  }
}

TEST_CASE("tracking: attribution windows of 24 h by default, settable, more than 0 and at most 30 days") {
  SUBCASE("defaults") {
    const auto c = parse(minimal);
    REQUIRE(c.has_value());
    CHECK(c->tracking.click == 24h);
    CHECK(c->tracking.view == 24h);
  }
  SUBCASE("set") {
    const auto c = parse(minimal + "tracking:\n  click_window: 7d\n  view_window: 30m\n");
    REQUIRE_MESSAGE(c.has_value(), (c ? "" : c.error().message));
    CHECK(c->tracking.click == 7 * 24h);
    CHECK(c->tracking.view == 30min);
  }
  SUBCASE("a window of 0 or longer than 30 days is named at its line") {
    auto c = parse(minimal + "tracking:\n  click_window: 0s\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:17: tracking.click_window: must be more than 0 and at most 30d") !=
                      std::string::npos,
                  c.error().message);
    c = parse(minimal + "tracking:\n  click_window: 1h\n  view_window: 31d\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:5:16: tracking.view_window: must be more than 0 and at most 30d") !=
                      std::string::npos,
                  c.error().message);
  }
  SUBCASE("unknown keys and malformed durations are the schema's") {
    auto c = parse(minimal + "tracking:\n  click_windows: 1h\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:3: tracking.click_windows: unknown key") != std::string::npos,
                  c.error().message);
    c = parse(minimal + "tracking:\n  view_window: a day\n");
    REQUIRE_FALSE(c.has_value());
    CHECK_MESSAGE(c.error().message.find("shop.yaml:4:16: tracking.view_window") != std::string::npos,
                  c.error().message);
  }
}
