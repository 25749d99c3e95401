#include "webpushd/delivery/classify.hpp"

#include <doctest/doctest.h>

using namespace webpushd;
using namespace webpushd::delivery;
using std::chrono::seconds;

namespace {

// 2026-11-23 11:00:00 UTC
const time_point now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 23}.time_since_epoch() + std::chrono::hours{11}};

http_response status(long s, std::string body = {}, std::string retry_after = {}) {
  http_response r;
  r.status = s;
  r.body = std::move(body);
  r.retry_after = std::move(retry_after);
  return r;
}

http_response transport(int code, std::string message = "Failed to connect to fcm.googleapis.com port 443") {
  http_response r;
  r.transport_error = code;
  r.transport_message = std::move(message);
  return r;
}

}  // namespace

TEST_CASE("2xx is accepted") {
  for (long s : {200L, 201L, 202L, 204L}) {
    const auto c = classify(status(s), now);
    CHECK(c.kind == outcome::accepted);
    CHECK_FALSE(c.retry_after);
  }
  CHECK(classify(status(201), now).reason == "accepted (201)");
}

TEST_CASE("404 and 410 mean the subscription is gone") {
  CHECK(classify(status(404), now).kind == outcome::gone);
  CHECK(classify(status(410, "expired"), now).kind == outcome::gone);
  CHECK(classify(status(410), now).reason == "subscription gone (410)");
}

TEST_CASE("413 is permanent and names the limit") {
  const auto c = classify(status(413), now);
  CHECK(c.kind == outcome::payload_too_large);
  CHECK(c.reason.find("4096") != std::string::npos);
}

TEST_CASE("other 4xx are permanent rejections with a body excerpt") {
  for (long s : {400L, 401L, 403L, 405L, 422L}) {
    CAPTURE(s);
    const auto c = classify(status(s, "{\"message\":\"invalid VAPID\"}\r\n"), now);
    CHECK(c.kind == outcome::rejected);
    CHECK(c.reason.find(std::to_string(s)) != std::string::npos);
    CHECK(c.reason.find("invalid VAPID") != std::string::npos);
    CHECK(c.reason.find('\r') == std::string::npos);
  }
  // Long bodies are cut, binary is made printable.
  const auto c = classify(status(400, std::string(5000, 'x') + "\x01\x02"), now);
  CHECK(c.reason.size() < 300);
  CHECK(classify(status(401), now).reason == "rejected (401)");
  CHECK(classify(status(301), now).kind == outcome::rejected);
}

TEST_CASE("429 honours Retry-After exactly, in both forms") {
  auto c = classify(status(429, {}, "120"), now);
  CHECK(c.kind == outcome::rate_limited);
  REQUIRE(c.retry_after);
  CHECK(*c.retry_after == seconds{120});
  c = classify(status(429, {}, "Mon, 23 Nov 2026 11:01:30 GMT"), now);
  REQUIRE(c.retry_after);
  CHECK(*c.retry_after == seconds{90});
  c = classify(status(429), now);
  CHECK(c.kind == outcome::rate_limited);
  CHECK_FALSE(c.retry_after);
  c = classify(status(429, {}, "soon"), now);
  CHECK_FALSE(c.retry_after);
}

TEST_CASE("5xx, 408 and transport errors are temporary") {
  for (long s : {500L, 502L, 503L, 504L, 408L}) {
    CHECK(classify(status(s), now).kind == outcome::temporary_failure);
  }
  auto c = classify(status(503, {}, "7"), now);
  CHECK(c.kind == outcome::temporary_failure);
  REQUIRE(c.retry_after);
  CHECK(*c.retry_after == seconds{7});

  for (int code : {6, 7, 28, 35, 52, 55, 56, 60, 92, 99}) {
    CAPTURE(code);
    c = classify(transport(code), now);
    CHECK(c.kind == outcome::temporary_failure);
    // curl's text names the host: it stays out of the reason.
    CHECK(c.reason.find("googleapis") == std::string::npos);
  }
  CHECK(classify(transport(28), now).reason == "timed out");
}

TEST_CASE("an endpoint refused by the rules is rejected, not retried") {
  auto r = transport(7, "connection to an internal address refused");
  r.blocked = true;
  const auto c = classify(r, now);
  CHECK(c.kind == outcome::rejected);
  CHECK(c.reason.find("internal address") != std::string::npos);
}

TEST_CASE("reasons never carry the endpoint or the Authorization header") {
  auto r = status(401, "bad token");
  r.location = "https://fcm.googleapis.com/fcm/send/secret";
  const auto c = classify(r, now);
  CHECK(c.reason.find("fcm") == std::string::npos);
  CHECK(c.reason.find("vapid") == std::string::npos);
}

TEST_CASE("parse_retry_after: delta-seconds") {
  CHECK(parse_retry_after("0", now) == seconds{0});
  CHECK(parse_retry_after("2", now) == seconds{2});
  CHECK(parse_retry_after("  30\t", now) == seconds{30});
  CHECK(parse_retry_after("99999999999999999999999", now) == seconds{10LL * 366 * 24 * 3600});
  for (const char* bad : {"", "  ", "-5", "+5", "1.5", "5s", "0x10", "5 6", "soon"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_retry_after(bad, now));
  }
}

TEST_CASE("parse_retry_after: HTTP dates in all three forms") {
  CHECK(parse_retry_after("Mon, 23 Nov 2026 11:00:10 GMT", now) == seconds{10});
  CHECK(parse_retry_after("Monday, 23-Nov-26 11:00:10 GMT", now) == seconds{10});
  CHECK(parse_retry_after("Mon Nov 23 11:00:10 2026", now) == seconds{10});
  CHECK(parse_retry_after("Tue Dec  1 11:00:00 2026", now) == seconds{8 * 24 * 3600});
  CHECK(parse_retry_after("Tue, 24 Nov 2026 11:00:00 GMT", now) == seconds{24 * 3600});
  // A date in the past means "now".
  CHECK(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == seconds{0});
  CHECK(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == seconds{0});
  CHECK(parse_retry_after("Sun Nov  6 08:49:37 1994", now) == seconds{0});
  // RFC 850: a two-digit year more than 50 years ahead is in the past century.
  CHECK(parse_retry_after("Friday, 01-Jan-99 00:00:00 GMT", now) == seconds{0});
  // ... and one less than 50 years ahead is in the future (clamped to ten years).
  CHECK(parse_retry_after("Tuesday, 01-Jan-70 00:00:00 GMT", now) == seconds{10LL * 366 * 24 * 3600});
}

TEST_CASE("parse_retry_after: malformed dates") {
  for (const char* bad : {
           "Mon, 23 Nov 2026 11:00:10 UTC",
           "Mon, 23 Nov 2026 11:00:10",
           "Mon, 23 Nov 2026 11:00 GMT",
           "Mon, 31 Feb 2026 11:00:10 GMT",
           "Mon, 23 Foo 2026 11:00:10 GMT",
           "Mon, 23 Nov 2026 25:00:10 GMT",
           "Mon, 23 Nov 2026 11:61:10 GMT",
           "mon, 23 nov 2026 11:00:10 gmt",
           "Mon,23 Nov 2026 11:00:10 GMT",
           "Mon, 23 Nov 2026 11:00:10 GMT junk",
           "2026-11-23T11:00:10Z",
           "Mon Nov 23 11:00:10 2026 GMT",
           "Monday, 23-Nov-2026 11:00:10 GMT",
       }) {
    CAPTURE(bad);
    CHECK_FALSE(parse_retry_after(bad, now));
  }
}

TEST_CASE("outcome names") {
  CHECK(std::string(to_string(outcome::rate_limited)) == "rate_limited");
  CHECK(std::string(to_string(outcome::payload_too_large)) == "payload_too_large");
}
