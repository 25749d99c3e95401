#include "webpushd/delivery/push_request.hpp"

#include <doctest/doctest.h>

using namespace webpushd::delivery;

TEST_CASE("TTL range") {
  CHECK(validate_ttl(0));
  CHECK(validate_ttl(2'592'000));
  CHECK(validate_ttl(-1).error().code == "invalid_ttl");
  CHECK(validate_ttl(2'592'001).error().field == "ttl");
}

TEST_CASE("Topic: at most 32 base64url characters") {
  CHECK(validate_topic(""));
  CHECK(validate_topic("cart-reminder_42"));
  CHECK(validate_topic(std::string(32, 'a')));
  CHECK(validate_topic(std::string(33, 'a')).error().code == "invalid_topic");
  CHECK_FALSE(validate_topic("cart reminder"));
  CHECK_FALSE(validate_topic("a+b/c="));
  CHECK_FALSE(validate_topic("caf\xc3\xa9"));
}

TEST_CASE("Urgency") {
  CHECK(parse_urgency("very-low").value() == urgency::very_low);
  CHECK(parse_urgency("high").value() == urgency::high);
  CHECK(parse_urgency("HIGH").error().code == "invalid_urgency");
  CHECK_FALSE(parse_urgency(""));
  CHECK(std::string(to_string(urgency::low)) == "low");
  CHECK(validate_urgency(""));
  CHECK(validate_urgency("normal"));
  CHECK(validate_urgency("urgent").error().field == "urgency");
}

TEST_CASE("validate checks all header values") {
  push_request r;
  r.ttl_seconds = 60;
  CHECK(validate(r));
  r.topic = "bad topic";
  CHECK(validate(r).error().code == "invalid_topic");
  r.topic = "ok";
  r.urgency = "soon";
  CHECK(validate(r).error().code == "invalid_urgency");
  r.urgency = "low";
  r.ttl_seconds = -5;
  CHECK(validate(r).error().code == "invalid_ttl");
}
