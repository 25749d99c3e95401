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
