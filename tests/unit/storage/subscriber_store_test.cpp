#include <doctest/doctest.h>
#include <sqlite3.h>

#include <string>
#include <vector>

#include "test_support.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/storage/consent_ledger_store.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using namespace std::chrono_literals;

namespace {

// A stand-in token hash (the consent module stores SHA-256 of the token;
// the store only keeps and compares 32 bytes).
ledger_hash hash_of(std::string_view token) {
  ledger_hash h{};
  for (std::size_t i = 0; i < token.size() && i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(token[i]);
  return h;
}

struct fixture : webpushd::storage::testing::stores {
  std::unique_ptr<subscriber_store> subscribers = make_sqlite_subscriber_store(db);

  subscriber_fields fields(const std::string& name, std::vector<std::string> categories = {"promotions"}) {
    subscriber_fields f;
    f.endpoint = "https://push.example/" + name;
    f.p256dh = "p256dh-" + name;
    f.auth = "auth-" + name;
    f.timezone = "Europe/Warsaw";
    f.locale = "pl-PL";
    f.text_version = "v1";
    f.categories = std::move(categories);
    f.new_public_id = "sub_" + name;
    f.token_hash = hash_of(name);
    return f;
  }

  subscriber_record upsert(const subscriber_fields& f) {
    auto r = subscribers->upsert(f, clock.now());
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return r->subscriber;
  }

  std::int64_t message(std::int64_t sub, const std::string& category) {
    new_outbox_message m;
    m.subscription_id = sub;
    m.payload = bytes{'h', 'i'};
    m.ttl_seconds = 3600;
    m.category = category;
    auto ids = outbox->enqueue({m}, clock.now());
    REQUIRE_MESSAGE(ids.has_value(), (ids ? "" : ids.error().message));
    return ids->front();
  }

  std::string scalar(const std::string& sql) { return testing::scalar(db, sql); }
};

}  // namespace

TEST_CASE("schema v2 adds subscribers, categories, the ledger and the outbox category") {
  webpushd::storage::testing::temp_dir dir;
  auto db = webpushd::storage::testing::open_ok(dir.db_file());
  CHECK(latest_schema_version() >= 2);
  CHECK(db.schema_version() == latest_schema_version());
  auto f = make_sqlite_subscription_store(db);  // v1 stores still work on v2
  CHECK(f->upsert("https://push.example/v1", "p", "a", {}));
}

TEST_CASE_FIXTURE(fixture, "upsert creates, then updates the same endpoint keeping id and public id") {
  auto f = fields("a", {"promotions", "cart_reminders"});
  const auto first = upsert(f);
  CHECK(first.public_id == "sub_a");
  CHECK(first.categories == std::vector<std::string>{"cart_reminders", "promotions"});
  CHECK(first.timezone == "Europe/Warsaw");
  CHECK(first.last_seen_at == clock.now());

  clock.advance(1h);
  f.categories = {"promotions"};
  f.new_public_id = "sub_other";  // ignored: the row has a public id already
  f.p256dh = "new-key";
  auto again = subscribers->upsert(f, clock.now());
  REQUIRE(again);
  CHECK_FALSE(again->created);
  CHECK(again->was_active);
  CHECK(again->categories_before == std::vector<std::string>{"cart_reminders", "promotions"});
  CHECK(again->subscriber.id == first.id);
  CHECK(again->subscriber.public_id == "sub_a");
  CHECK(again->subscriber.p256dh == "new-key");
  CHECK(again->subscriber.categories == std::vector<std::string>{"promotions"});
  CHECK(again->subscriber.updated_at == clock.now());
}

TEST_CASE_FIXTURE(fixture, "enqueue in a category the subscriber does not grant is refused") {
  const auto s = upsert(fields("a", {"promotions"}));
  new_outbox_message m;
  m.subscription_id = s.id;
  m.category = "cart_reminders";
  auto r = outbox->enqueue({m}, clock.now());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "consent_missing");
  CHECK(r.error().field == "category");
  CHECK(outbox->counts()->queued == 0);
  message(s.id, "promotions");
  message(s.id, "");  // an operator's one-off needs no category
  CHECK(outbox->counts()->queued == 2);
}

TEST_CASE_FIXTURE(fixture, "claim_due cancels a message whose category was withdrawn after it was queued") {
  const auto s = upsert(fields("a", {"cart_reminders", "promotions"}));
  const auto promo = message(s.id, "promotions");
  const auto cart = message(s.id, "cart_reminders");
  const auto plain = message(s.id, "");
  REQUIRE(subscribers->set_categories(s.id, {"cart_reminders"}, "v1", clock.now()));
  auto claimed = outbox->claim_due(clock.now(), 10);
  REQUIRE(claimed);
  REQUIRE(claimed->size() == 2);
  CHECK((*claimed)[0].id == cart);
  CHECK((*claimed)[0].category == "cart_reminders");
  CHECK((*claimed)[1].id == plain);
  const auto row = outbox->get(promo).value().value();
  CHECK(row.state == outbox_state::cancelled);
  CHECK(row.last_reason == consent_withdrawn_reason);
}

TEST_CASE_FIXTURE(fixture, "unsubscribing cancels queued messages; claim_due cancels any it meets") {
  const auto s = upsert(fields("a"));
  const auto queued = message(s.id, "promotions");
  auto removed = subscribers->mark_unsubscribed(s.id, clock.now());
  REQUIRE(removed);
  CHECK(removed->messages_cancelled == 1);
  CHECK(removed->categories_before == std::vector<std::string>{"promotions"});
  CHECK(outbox->get(queued).value()->last_reason == unsubscribed_reason);
  const auto after = subscribers->find(s.id).value().value();
  CHECK(after.unsubscribed());
  CHECK(after.categories.empty());

  // A message that slipped in (e.g. written by a raw tool) is cancelled at send time.
  REQUIRE(db.exec("INSERT INTO outbox (subscription_id, payload, ttl_seconds, created_at, next_attempt_at, "
                  "expires_at) VALUES (" + std::to_string(s.id) + ", x'00', 60, 0, 0, 9999999999999)"));
  auto claimed = outbox->claim_due(clock.now(), 10);
  REQUIRE(claimed);
  CHECK(claimed->empty());
  CHECK(scalar("SELECT count(*) FROM outbox WHERE state = 'cancelled' AND last_reason = 'unsubscribed'") == "2");
}

TEST_CASE_FIXTURE(fixture, "verify_token answers the same for unknown id, wrong token and erased") {
  const auto s = upsert(fields("a"));
  // The stored hash is whatever the caller gave; here the test's fake one,
  // which no real token hashes to: every token is refused.
  CHECK_FALSE(subscribers->verify_token("sub_a", "a").value());
  CHECK_FALSE(subscribers->verify_token("sub_missing", "a").value());
  // Store a real SHA-256 of "secret" (computed offline) and check it.
  REQUIRE(db.exec("UPDATE subscriptions SET token_hash = "
                  "x'2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b' WHERE id = " +
                  std::to_string(s.id)));
  const auto ok = subscribers->verify_token("sub_a", "secret");
  REQUIRE(ok);
  REQUIRE(ok->has_value());
  CHECK((*ok)->id == s.id);
  CHECK_FALSE(subscribers->verify_token("sub_a", "Secret").value());
  REQUIRE(subscribers->erase(s.id, clock.now()));
  CHECK_FALSE(subscribers->verify_token("sub_a", "secret").value());
}

TEST_CASE_FIXTURE(fixture, "customers link to several subscribers") {
  const auto a = upsert(fields("a"));
  const auto b = upsert(fields("b"));
  upsert(fields("c"));
  REQUIRE(subscribers->link_customer(a.id, "cust-1", clock.now()));
  REQUIRE(subscribers->link_customer(b.id, "cust-1", clock.now()));
  const auto linked = subscribers->list_by_customer("cust-1");
  REQUIRE(linked);
  REQUIRE(linked->size() == 2);
  CHECK((*linked)[0].public_id == "sub_a");
  CHECK((*linked)[1].public_id == "sub_b");
  CHECK(subscribers->link_customer(9999, "x", clock.now()).error().code == "unknown_subscription");
}

TEST_CASE_FIXTURE(fixture, "move_endpoint keeps identity; a subscriber already on the new endpoint is retired") {
  auto a = upsert(fields("a", {"cart_reminders"}));
  auto b = upsert(fields("b", {"promotions"}));
  const auto b_msg = message(b.id, "promotions");
  auto moved = subscribers->move_endpoint(a.id, "https://push.example/b", "new-p", "new-a", clock.now());
  REQUIRE(moved);
  CHECK(moved->subscriber.id == a.id);
  CHECK(moved->subscriber.public_id == "sub_a");
  CHECK(moved->subscriber.endpoint == "https://push.example/b");
  CHECK(moved->subscriber.categories == std::vector<std::string>{"cart_reminders"});
  REQUIRE(moved->retired);
  CHECK(moved->retired->public_id == "sub_b");
  const auto retired = subscribers->find(b.id).value().value();
  CHECK(retired.state == subscription_state::gone);
  CHECK(retired.replaced_by == a.id);
  CHECK(retired.endpoint.rfind("replaced:", 0) == 0);
  CHECK(retired.categories.empty());
  CHECK(outbox->get(b_msg).value()->state == outbox_state::cancelled);
}

TEST_CASE_FIXTURE(fixture, "erase leaves no personal data in the raw tables") {
  auto a = upsert(fields("a", {"promotions"}));
  REQUIRE(subscribers->link_customer(a.id, "cust-1", clock.now()));
  const auto queued = message(a.id, "promotions");
  const auto sent = message(a.id, "promotions");
  REQUIRE(db.exec("UPDATE outbox SET state = 'sent', location = 'https://push.example/m/1' WHERE id = " +
                  std::to_string(sent)));
  auto removed = subscribers->erase(a.id, clock.now());
  REQUIRE(removed);
  CHECK(removed->messages_cancelled == 1);
  const std::string where = " FROM subscriptions WHERE id = " + std::to_string(a.id);
  CHECK(scalar("SELECT endpoint" + where).rfind("erased:", 0) == 0);
  CHECK(scalar("SELECT p256dh || auth" + where).empty());
  CHECK(scalar("SELECT count(*)" + where +
               " AND token_hash IS NULL AND customer_id IS NULL AND timezone IS NULL AND locale IS NULL") == "1");
  CHECK(scalar("SELECT state" + where) == "erased");
  CHECK(scalar("SELECT public_id" + where) == "sub_a");
  CHECK(scalar("SELECT count(*) FROM subscription_categories") == "0");
  CHECK(scalar("SELECT count(*) FROM outbox WHERE length(payload) > 0 OR location IS NOT NULL") == "0");
  CHECK(outbox->get(queued).value()->state == outbox_state::cancelled);
  CHECK(outbox->get(sent).value()->state == outbox_state::sent);
  CHECK(scalar("SELECT count(*) FROM subscriptions WHERE endpoint LIKE '%push.example/a%'") == "0");
  // The same endpoint subscribing again is somebody new.
  auto fresh = fields("a");
  fresh.new_public_id = "sub_fresh";
  auto again = subscribers->upsert(fresh, clock.now());
  REQUIRE(again);
  CHECK(again->created);
  CHECK(again->subscriber.id != a.id);
}

TEST_CASE_FIXTURE(fixture, "the ledger chains entries, verifies, and its triggers refuse UPDATE and DELETE") {
  auto ledger = make_sqlite_consent_ledger_store(db);
  CHECK(ledger->verify().value().intact());
  CHECK(ledger->verify().value().entries == 0);
  for (int i = 0; i < 3; ++i) {
    new_ledger_entry e;
    e.subscription_public_id = "sub_" + std::to_string(i % 2);
    e.at = clock.now();
    e.action = i == 0 ? consent_action::grant : consent_action::change;
    e.categories_after = {"promotions", "cart_reminders", "promotions"};
    e.source = "https://shop.example/";
    e.text_version = "v1";
    e.ip_truncated = "203.0.113.0/24";
    auto appended = ledger->append(e);
    REQUIRE(appended);
    CHECK(appended->seq == i + 1);
    CHECK(appended->categories_after == R"(["cart_reminders","promotions"])");
  }
  const auto v = ledger->verify().value();
  CHECK(v.intact());
  CHECK(v.entries == 3);
  const auto first = ledger->for_subscription("sub_0").value();
  REQUIRE(first.size() == 2);
  CHECK(first[0].prev_hash == ledger_hash{});
  CHECK(first[1].seq == 3);
  CHECK(v.head == first[1].hash);
  CHECK(compute_ledger_hash(first[0].hash, ledger->for_subscription("sub_1").value()[0]) ==
        ledger->for_subscription("sub_1").value()[0].hash);

  auto update = db.exec("UPDATE consent_ledger SET source = 'x' WHERE seq = 2");
  REQUIRE_FALSE(update);
  CHECK(update.error().message.find("append-only") != std::string::npos);
  CHECK_FALSE(db.exec("DELETE FROM consent_ledger WHERE seq = 3"));

  // Someone with file access drops the trigger and edits an entry.
  REQUIRE(db.exec("DROP TRIGGER consent_ledger_no_update"));
  REQUIRE(db.exec("UPDATE consent_ledger SET categories_after = '[\"promotions\"]' WHERE seq = 2"));
  const auto tampered = ledger->verify().value();
  CHECK_FALSE(tampered.intact());
  CHECK(tampered.first_broken_seq == 2);
  CHECK(tampered.problem.find("changed") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "verify reports a removed entry in the middle") {
  auto ledger = make_sqlite_consent_ledger_store(db);
  for (int i = 0; i < 3; ++i) {
    new_ledger_entry e;
    e.subscription_public_id = "sub_x";
    e.action = consent_action::change;
    REQUIRE(ledger->append(e));
  }
  REQUIRE(db.exec("DROP TRIGGER consent_ledger_no_delete"));
  REQUIRE(db.exec("DELETE FROM consent_ledger WHERE seq = 2"));
  const auto v = ledger->verify().value();
  CHECK(v.first_broken_seq == 3);
}

TEST_CASE_FIXTURE(fixture, "count_by_state counts active, gone (unsubscribed or 404/410) and erased subscriptions") {
  auto none = subscribers->count_by_state();
  REQUIRE(none.has_value());
  CHECK(none->active == 0);
  const auto a = upsert(fields("a"));
  upsert(fields("b"));
  const auto c = upsert(fields("c"));
  const auto d = upsert(fields("d"));
  REQUIRE(subscribers->mark_unsubscribed(a.id, clock.now()));
  REQUIRE(subs->mark_gone(c.id, "HTTP 410", clock.now()));
  REQUIRE(subscribers->erase(d.id, clock.now()));
  const auto counts = subscribers->count_by_state();
  REQUIRE(counts.has_value());
  CHECK(counts->active == 1);
  CHECK(counts->gone == 2);
  CHECK(counts->erased == 1);
}
