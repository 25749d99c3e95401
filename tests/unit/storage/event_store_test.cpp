#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::scalar;
using namespace std::chrono_literals;

namespace {

struct fixture : webpushd::storage::testing::stores {
  std::unique_ptr<event_store> events = make_sqlite_event_store(db);
  std::unique_ptr<subscriber_store> subscribers = make_sqlite_subscriber_store(db);

  void event(const std::string& id, const std::string& customer, const std::string& subscription, time_point at) {
    REQUIRE(events->insert_if_new({id, "product_viewed", customer, subscription, at, at, R"({"product_id":"p"})"})
                .value());
  }

  subscriber_record subscriber(const std::string& name, const std::string& customer = {}) {
    subscriber_fields f;
    f.endpoint = "https://push.example/" + name;
    f.p256dh = "p";
    f.auth = "a";
    f.text_version = "v1";
    f.categories = {"promotions"};
    f.new_public_id = "sub_" + name;
    auto s = subscribers->upsert(f, clock.now());
    REQUIRE(s.has_value());
    if (!customer.empty()) REQUIRE(subscribers->link_customer(s->subscriber.id, customer, clock.now()));
    return s->subscriber;
  }

  void interest(const std::string& product, const std::string& person, time_point at) {
    REQUIRE(db.exec("INSERT INTO product_interest (product_id, person, at) VALUES ('" + product + "', '" + person +
                    "', " + std::to_string(unix_millis(at)) + ")"));
  }

  std::string remaining_events() { return scalar(db, "SELECT group_concat(id, ',') FROM (SELECT id FROM events ORDER BY id)"); }
  std::string remaining_interest() {
    return scalar(db, "SELECT group_concat(person, ',') FROM (SELECT person FROM product_interest ORDER BY person)");
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "purge: everything older than the retention goes, whoever it is about") {
  const auto now = clock.now();
  subscriber("known", "cust-known");
  event("old-known", "cust-known", "", now - 181 * 24h);
  event("old-anonymous", "", "", now - 200 * 24h);
  event("recent-known", "cust-known", "", now - 179 * 24h);
  event("recent-anonymous", "", "", now - 100 * 24h);
  const auto purged = events->purge(now - 180 * 24h, now - 30 * 24h);
  REQUIRE(purged.has_value());
  CHECK(*purged == 2);
  CHECK(remaining_events() == "recent-anonymous,recent-known");
}

TEST_CASE_FIXTURE(fixture, "purge: events of people who are no subscriber go after the shorter retention") {
  const auto now = clock.now();
  const auto linked = subscriber("linked", "cust-linked");
  const auto plain = subscriber("plain");
  const auto erased = subscriber("erased", "cust-erased");
  const auto left = subscriber("left", "cust-left");
  REQUIRE(subscribers->erase(erased.id, now));
  REQUIRE(subscribers->mark_unsubscribed(left.id, now));
  const auto old = now - 31 * 24h;
  event("customer-linked", "cust-linked", "", old);
  event("subscription-known", "", plain.public_id, old);
  event("customer-unknown", "cust-nobody", "", old);
  event("subscription-unknown", "", "sub_nobody", old);
  event("both-unknown", "cust-nobody", "sub_nobody", old);
  event("customer-known-subscription-unknown", "cust-linked", "sub_nobody", old);
  event("customer-unknown-subscription-known", "cust-nobody", plain.public_id, old);
  event("erased-subscription", "", erased.public_id, old);  // sent after the erasure
  event("erased-customer", "cust-erased", "", old);         // the link went with the erasure
  event("unsubscribed-customer", "cust-left", "", old);     // may come back: a subscriber still
  event("shop-wide", "", "", old);                          // about no person: full retention
  event("unknown-but-recent", "cust-nobody", "", now - 29 * 24h);

  const auto purged = events->purge(now - 180 * 24h, now - 30 * 24h);
  REQUIRE(purged.has_value());
  CHECK(*purged == 5);
  CHECK(remaining_events() ==
        "customer-known-subscription-unknown,customer-linked,customer-unknown-subscription-known,shop-wide,"
        "subscription-known,unknown-but-recent,unsubscribed-customer");

  // A shopper who subscribes and is linked in time keeps their history.
  subscriber("late", "cust-late");
  event("browsed-before-subscribing", "cust-late", "", old);
  CHECK(events->purge(now - 180 * 24h, now - 30 * 24h).value() == 0);
  // Purging again finds nothing more.
  CHECK(events->purge(now - 180 * 24h, now - 30 * 24h).value() == 0);
}

TEST_CASE_FIXTURE(fixture, "purge: product interest by the same rules") {
  const auto now = clock.now();
  const auto plain = subscriber("plain");
  subscriber("linked", "cust-linked");
  interest("p-1", "c:cust-linked", now - 31 * 24h);
  interest("p-1", "s:" + plain.public_id, now - 31 * 24h);
  interest("p-1", "c:cust-nobody", now - 31 * 24h);
  interest("p-1", "s:sub_nobody", now - 31 * 24h);
  interest("p-2", "c:cust-nobody", now - 29 * 24h);
  interest("p-3", "c:cust-linked", now - 181 * 24h);
  REQUIRE(events->purge(now - 180 * 24h, now - 30 * 24h));
  CHECK(remaining_interest() == "c:cust-linked,c:cust-nobody,s:" + plain.public_id);
  CHECK(scalar(db, "SELECT group_concat(product_id || ' ' || person, ',') FROM (SELECT * FROM product_interest "
                   "ORDER BY product_id, person)") ==
        "p-1 c:cust-linked,p-1 s:" + plain.public_id + ",p-2 c:cust-nobody");
}

TEST_CASE_FIXTURE(fixture, "purge is one unit: inside an outer transaction it rolls back with it") {
  const auto now = clock.now();
  event("old", "", "", now - 200 * 24h);
  interest("p", "c:x", now - 200 * 24h);
  {
    transaction outer(db);
    REQUIRE(outer.begun());
    CHECK(events->purge(now - 180 * 24h, now - 30 * 24h).value() == 1);
    // not committed
  }
  CHECK(remaining_events() == "old");
  CHECK(remaining_interest() == "c:x");
}
