#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/automation_data.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::scalar;
using namespace std::chrono_literals;

namespace {

// Rows as the engine writes them, inserted with SQL: these helpers must find
// and remove whatever is there, whoever wrote it.
struct fixture : webpushd::storage::testing::stores {
  std::int64_t journey(const std::string& scenario, const std::string& person, const std::string& state,
                       time_point started, const std::string& context = R"({"cart":{"total":120}})") {
    const auto t = std::to_string(unix_millis(started));
    const bool active = state == "active";
    REQUIRE(db.exec("INSERT INTO journeys (scenario, person, journey_key, state, next_step, anchor_at, next_at, "
                    "context, started_at, updated_at, ended_at, end_reason) VALUES ('" +
                    scenario + "', '" + person + "', 'k', '" + state + "', 1, " + t + ", " +
                    (active ? std::to_string(unix_millis(started + 1h)) : "NULL") + ", '" + context + "', " + t +
                    ", " + t + ", " + (active ? "NULL" : t) + ", " + (active ? "NULL" : "'purchase'") + ")"));
    return std::stoll(scalar(db, "SELECT max(id) FROM journeys"));
  }

  void log(std::int64_t journey_id, const std::string& person, const std::string& outcome, time_point at,
           std::optional<std::int64_t> subscription_id = std::nullopt) {
    REQUIRE(db.exec("INSERT INTO journey_log (journey_id, scenario, step, person, subscription_id, outcome, reason, "
                    "at) VALUES (" +
                    std::to_string(journey_id) + ", 's', 'first', '" + person + "', " +
                    (subscription_id ? std::to_string(*subscription_id) : "NULL") + ", '" + outcome + "', '', " +
                    std::to_string(unix_millis(at)) + ")"));
  }

  void interest(const std::string& product, const std::string& person, time_point at) {
    REQUIRE(db.exec("INSERT INTO product_interest (product_id, person, at) VALUES ('" + product + "', '" + person +
                    "', " + std::to_string(unix_millis(at)) + ")"));
  }

  std::string count(const std::string& table) { return scalar(db, "SELECT count(*) FROM " + table); }
};

}  // namespace

TEST_CASE("person keys") {
  CHECK(customer_person("cust-7") == "c:cust-7");
  CHECK(subscriber_person("sub_abc") == "s:sub_abc");
}

TEST_CASE_FIXTURE(fixture, "list_person_journeys: the persons' journeys, oldest first, each with its log") {
  const auto t0 = clock.now();
  const auto cart = journey("abandoned_cart", "c:cust-7", "exited", t0);
  log(cart, "c:cust-7", "entered", t0);
  log(cart, "c:cust-7", "sent", t0 + 1h);
  log(cart, "c:cust-7", "exited", t0 + 2h);
  const auto welcome = journey("welcome", "s:sub_a", "active", t0 - 1h, "{}");
  journey("abandoned_cart", "c:someone-else", "active", t0);

  const auto listed = list_person_journeys(db, {"c:cust-7", "s:sub_a"});
  REQUIRE(listed.has_value());
  REQUIRE(listed->size() == 2);
  const auto& first = (*listed)[0];
  CHECK(first.id == welcome);
  CHECK(first.scenario == "welcome");
  CHECK(first.person == "s:sub_a");
  CHECK(first.state == journey_state::active);
  CHECK(first.next_at == t0);
  CHECK_FALSE(first.ended_at.has_value());
  CHECK(first.end_reason.empty());
  CHECK(first.log.empty());
  const auto& second = (*listed)[1];
  CHECK(second.scenario == "abandoned_cart");
  CHECK(second.journey_key == "k");
  CHECK(second.next_step == 1);
  CHECK(second.context == R"({"cart":{"total":120}})");
  CHECK(second.started_at == t0);
  CHECK(second.ended_at == t0);
  CHECK(second.end_reason == "purchase");
  REQUIRE(second.log.size() == 3);
  CHECK(second.log[0].outcome == "entered");
  CHECK(second.log[1].outcome == "sent");
  CHECK(second.log[1].step == "first");
  CHECK(second.log[1].at == t0 + 1h);
  CHECK(second.log[1].journey_id == cart);
  CHECK(second.log[1].person == "c:cust-7");
  CHECK_FALSE(second.log[1].subscription_id.has_value());
  CHECK(list_person_journeys(db, {}).value().empty());
  CHECK(list_person_journeys(db, {"c:nobody"}).value().empty());
}

TEST_CASE_FIXTURE(fixture, "erase_person_data: journeys, their log, product interest, pacing and tracking data of exactly those persons") {
  const auto t0 = clock.now();
  const auto mine = journey("abandoned_cart", "c:cust-7", "active", t0);
  log(mine, "c:cust-7", "entered", t0);
  const auto device = journey("welcome", "s:sub_a", "completed", t0);
  log(device, "s:sub_a", "sent", t0, 41);
  const auto other = journey("abandoned_cart", "c:other", "active", t0);
  log(other, "c:other", "entered", t0);
  log(other, "c:other", "sent", t0, 41);  // a message to the erased device in a journey that stays
  log(other, "c:other", "sent", t0, 42);
  interest("p-1", "c:cust-7", t0);
  interest("p-2", "s:sub_a", t0);
  interest("p-1", "c:other", t0);

  REQUIRE(db.exec("INSERT INTO pacing_history VALUES (41, '', x'00'), (42, '', x'00')"));
  REQUIRE(db.exec("INSERT INTO unsubscribe_attributions (subscription_id, at, kind, source, step, outbox_id, sent_at) "
                  "VALUES (41, 0, 'gone', 'scenario:welcome', 'hello', 1, 0)"));
  REQUIRE(db.exec("INSERT INTO tracking_touches (subscription_id, shown_outbox_id, shown_at) VALUES (41, 1, 0), "
                  "(42, 2, 0)"));
  REQUIRE(db.exec("INSERT INTO conversions (event_id, kind, subscription_id, outbox_id, source, step, touch_at, "
                  "occurred_at, revenue, currency, attributed_at) VALUES "
                  "('o-1', 'converted', 41, 1, 'scenario:welcome', 'hello', 0, 1, 100, 'PLN', 1), "
                  "('o-2', 'converted', 42, 2, 'scenario:welcome', 'hello', 0, 1, 100, 'PLN', 1)"));

  const auto erased = erase_person_data(db, {"c:cust-7", "s:sub_a"}, {41});
  REQUIRE(erased.has_value());
  CHECK(scalar(db, "SELECT group_concat(subscription_id) FROM pacing_history") == "42");
  CHECK(scalar(db, "SELECT count(*) FROM unsubscribe_attributions") == "0");
  CHECK(scalar(db, "SELECT group_concat(subscription_id) FROM tracking_touches") == "42");
  CHECK(scalar(db, "SELECT group_concat(event_id) FROM conversions") == "o-2");
  CHECK(erased->journeys == 2);
  CHECK(erased->log_entries == 3);
  CHECK(erased->product_interest == 2);
  CHECK(scalar(db, "SELECT group_concat(person) FROM journeys") == "c:other");
  CHECK(scalar(db, "SELECT group_concat(outcome || ':' || ifnull(subscription_id, '-')) FROM journey_log") ==
        "entered:-,sent:42");
  CHECK(scalar(db, "SELECT group_concat(person) FROM product_interest") == "c:other");
  // Nothing left to erase: a repeat is a no-op.
  const auto again = erase_person_data(db, {"c:cust-7", "s:sub_a"}, {41});
  REQUIRE(again.has_value());
  CHECK(again->journeys + again->log_entries + again->product_interest == 0);
}

TEST_CASE_FIXTURE(fixture, "erase_person_data rolls back with an outer transaction") {
  journey("welcome", "s:sub_a", "active", clock.now());
  {
    transaction outer(db);
    REQUIRE(outer.begun());
    REQUIRE(erase_person_data(db, {"s:sub_a"}));
  }
  CHECK(count("journeys") == "1");
}
