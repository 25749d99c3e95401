#include <doctest/doctest.h>

#include <string>

#include "test_support.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscription_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::open_ok;
using webpushd::storage::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

struct fixture : webpushd::storage::testing::stores {
  subscription_record find(std::int64_t id) {
    auto r = subs->find(id);
    REQUIRE(r);
    REQUIRE(r->has_value());
    return **r;
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "upsert inserts a new active subscription") {
  const auto id = subs->upsert("https://push.example/a", "key-a", "auth-a", clock.now());
  REQUIRE(id);
  const auto s = find(*id);
  CHECK(s.id == *id);
  CHECK(s.endpoint == "https://push.example/a");
  CHECK(s.p256dh == "key-a");
  CHECK(s.auth == "auth-a");
  CHECK(s.state == subscription_state::active);
  CHECK(s.created_at == clock.now());
  CHECK(s.updated_at == clock.now());
  CHECK_FALSE(s.gone_at);
  CHECK(s.gone_reason.empty());

  const auto other = subs->upsert("https://push.example/b", "key-b", "auth-b", clock.now());
  REQUIRE(other);
  CHECK(*other != *id);
}

TEST_CASE_FIXTURE(fixture, "upsert of a known endpoint updates its keys and keeps the id") {
  const auto id = subs->upsert("https://push.example/a", "old-key", "old-auth", clock.now()).value();
  const auto created = clock.now();
  clock.advance(1h);
  CHECK(subs->upsert("https://push.example/a", "new-key", "new-auth", clock.now()).value() == id);
  const auto s = find(id);
  CHECK(s.p256dh == "new-key");
  CHECK(s.auth == "new-auth");
  CHECK(s.created_at == created);
  CHECK(s.updated_at == clock.now());
}

TEST_CASE_FIXTURE(fixture, "mark_gone marks the subscription and finishes its queue; upsert reactivates it") {
  const auto id = subs->upsert("https://push.example/a", "k", "a", clock.now()).value();
  new_outbox_message m;
  m.subscription_id = id;
  m.payload = {1, 2, 3};
  const auto ids = outbox->enqueue({m, m}, clock.now()).value();
  clock.advance(1s);
  const auto gone_time = clock.now();
  REQUIRE(subs->mark_gone(id, "410 from the push service", clock.now()));
  auto s = find(id);
  CHECK(s.state == subscription_state::gone);
  CHECK(s.gone_at == gone_time);
  CHECK(s.gone_reason == "410 from the push service");
  for (const auto mid : ids) {
    const auto r = outbox->get(mid).value().value();
    CHECK(r.state == outbox_state::gone);
    CHECK(r.last_reason == subscription_gone_reason);
  }

  // Idempotent: a second report keeps the first time and reason.
  clock.advance(1s);
  REQUIRE(subs->mark_gone(id, "404", clock.now()));
  CHECK(find(id).gone_at == gone_time);
  CHECK(find(id).gone_reason == "410 from the push service");

  // The browser subscribes again with the same endpoint.
  clock.advance(1s);
  CHECK(subs->upsert("https://push.example/a", "k2", "a2", clock.now()).value() == id);
  s = find(id);
  CHECK(s.state == subscription_state::active);
  CHECK_FALSE(s.gone_at);
  CHECK(s.gone_reason.empty());
  CHECK(s.p256dh == "k2");
  CHECK(outbox->enqueue({m}, clock.now()));
}

TEST_CASE_FIXTURE(fixture, "an erased subscription is not turned into a gone one") {
  const auto id = subs->upsert("https://push.example/a", "k", "a", clock.now()).value();
  REQUIRE(db.exec("UPDATE subscriptions SET state = 'erased' WHERE id = " + std::to_string(id)));
  REQUIRE(subs->mark_gone(id, "410", clock.now()));
  CHECK(find(id).state == subscription_state::erased);
}

TEST_CASE_FIXTURE(fixture, "unknown ids and empty input are errors, not exceptions") {
  auto missing = subs->find(12345);
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());

  auto gone = subs->mark_gone(12345, "410", clock.now());
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == "unknown_subscription");

  auto empty = subs->upsert("", "k", "a", clock.now());
  REQUIRE_FALSE(empty);
  CHECK(empty.error().code == "invalid_subscription");
  CHECK(empty.error().field == "endpoint");
  CHECK(subs->upsert("https://push.example/a", "", "a", clock.now()).error().field == "keys.p256dh");
  CHECK(subs->upsert("https://push.example/a", "k", "", clock.now()).error().field == "keys.auth");
}

TEST_CASE("subscriptions survive reopening the file") {
  temp_dir dir;
  manual_clock clock;
  std::int64_t id = 0;
  {
    auto db = open_ok(dir.db_file());
    id = make_sqlite_subscription_store(db)->upsert("https://push.example/a", "k", "a", clock.now()).value();
  }
  auto db = open_ok(dir.db_file());
  auto subs = make_sqlite_subscription_store(db);
  const auto s = subs->find(id).value();
  REQUIRE(s);
  CHECK(s->endpoint == "https://push.example/a");
  CHECK(subs->upsert("https://push.example/a", "k", "a", clock.now()).value() == id);
}
