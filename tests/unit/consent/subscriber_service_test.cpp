#include <doctest/doctest.h>

#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../storage/test_support.hpp"
#include "test_support.hpp"
#include "webpushd/consent/subscriber_service.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/tracking_store.hpp"

using namespace webpushd;
using namespace webpushd::consent;
using webpushd::storage::testing::open_ok;
using webpushd::storage::testing::scalar;
using webpushd::storage::testing::temp_dir;
using namespace std::chrono_literals;

namespace {

using testing::auth;
using testing::p256dh;
using testing::shop_config;

std::string endpoint(const std::string& name) { return "https://fcm.googleapis.com/fcm/send/" + name; }

// Calls an async operation and waits for its callback.
template <class T, class Call>
result<T> wait(Call call) {
  std::promise<result<T>> p;
  call([&p](result<T> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

struct fixture {
  temp_dir dir;
  manual_clock clock;
  storage::write_queue writer{open_ok(dir.db_file())};
  std::unique_ptr<subscriber_service> service =
      subscriber_service::create(shop_config(), delivery::default_endpoint_rules(), writer, open_ok(dir.db_file()),
                                 clock)
          .value();
  storage::database db = open_ok(dir.db_file());  // the test's own view of the raw tables

  subscribe_request request(const std::string& name, std::vector<std::string> categories = {"promotions"}) {
    subscribe_request r;
    r.endpoint = endpoint(name);
    r.p256dh = std::string{p256dh};
    r.auth = std::string{auth};
    r.categories = std::move(categories);
    r.text_version = "2024-05";
    r.timezone = "Europe/Warsaw";
    r.locale = "pl-PL";
    r.origin = {"https://shop.example/product/1?utm_source=mail", "203.0.113.77"};
    return r;
  }

  result<subscribe_outcome> subscribe(subscribe_request r) {
    return wait<subscribe_outcome>([&](auto done) { service->subscribe(std::move(r), std::move(done)); });
  }

  subscribe_outcome subscribe_ok(const std::string& name, std::vector<std::string> categories = {"promotions"}) {
    auto r = subscribe(request(name, std::move(categories)));
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().code + ": " + r.error().message));
    return *r;
  }

  result<consent_outcome> set_consent(const subscribe_outcome& s, std::vector<std::string> categories,
                                      std::string token = {}) {
    consent_request r;
    r.id = s.id;
    r.token = token.empty() ? s.token : token;
    r.categories = std::move(categories);
    r.text_version = "2024-05";
    r.origin = {"https://shop.example/settings", "2001:db8:1:2::1"};
    return wait<consent_outcome>([&](auto done) { service->set_consent(std::move(r), std::move(done)); });
  }

  std::int64_t row_id(const std::string& public_id) {
    return std::stoll(scalar(db, "SELECT id FROM subscriptions WHERE public_id = '" + public_id + "'"));
  }

  std::int64_t enqueue(const std::string& public_id, const std::string& category, std::string payload = "{\"t\":1}") {
    storage::new_outbox_message m;
    m.subscription_id = row_id(public_id);
    m.payload = bytes(payload.begin(), payload.end());
    m.category = category;
    m.source = "scenario:test";
    auto ids = storage::make_sqlite_outbox_store(db)->enqueue({m}, clock.now());
    REQUIRE_MESSAGE(ids.has_value(), (ids ? "" : ids.error().message));
    return ids->front();
  }

  std::vector<storage::ledger_entry> ledger(const std::string& public_id) {
    return storage::make_sqlite_consent_ledger_store(db)->for_subscription(public_id).value();
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "subscribe creates a subscriber; the same endpoint again is the same one, updated") {
  const auto first = subscribe_ok("a", {"promotions", "cart_reminders"});
  CHECK(first.created);
  CHECK(is_public_id(first.id));
  CHECK(first.token.size() == 43);
  // The token itself is never stored, only its hash.
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions WHERE token_hash = CAST('" + first.token + "' AS BLOB)") ==
        "0");
  CHECK(scalar(db, "SELECT length(token_hash) FROM subscriptions") == "32");

  clock.advance(1h);
  auto second_request = request("a", {"promotions"});
  second_request.timezone = "America/New_York";
  const auto second = subscribe(second_request).value();
  CHECK_FALSE(second.created);
  CHECK(second.id == first.id);
  CHECK(second.token != first.token);  // re-presenting the endpoint issues a new token
  CHECK(scalar(db, "SELECT timezone FROM subscriptions") == "America/New_York");
  CHECK(scalar(db, "SELECT group_concat(category) FROM subscription_categories") == "promotions");

  const auto entries = ledger(first.id);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].action == "grant");
  CHECK(entries[0].categories_before == "[]");
  CHECK(entries[0].categories_after == R"(["cart_reminders","promotions"])");
  CHECK(entries[0].source == "https://shop.example/product/1");
  CHECK(entries[0].ip_truncated == "203.0.113.0/24");
  CHECK(entries[0].text_version == "2024-05");
  CHECK(entries[1].action == "change");
  CHECK(entries[1].categories_before == R"(["cart_reminders","promotions"])");
  CHECK(entries[1].categories_after == R"(["promotions"])");

  // The old token no longer works; the new one does.
  CHECK(set_consent(second, {"cart_reminders"}, first.token).error().code == "not_found");
  CHECK(set_consent(second, {"cart_reminders"}).value().changed);
}

TEST_CASE_FIXTURE(fixture, "invalid requests answer the field at fault and store nothing") {
  auto bad_category = request("a", {"promotions", "cart_reminders", "casino"});
  auto r = subscribe(bad_category);
  CHECK(r.error().code == "unknown_category");
  CHECK(r.error().field == "consent.categories[2]");
  auto bad_key = request("a");
  bad_key.p256dh = "BAAA";
  CHECK(subscribe(bad_key).error().field == "subscription.keys.p256dh");
  auto bad_auth = request("a");
  bad_auth.auth = "AAAA";
  CHECK(subscribe(bad_auth).error().field == "subscription.keys.auth");
  auto bad_endpoint = request("a");
  bad_endpoint.endpoint = "https://169.254.169.254/latest";
  CHECK(subscribe(bad_endpoint).error().field == "subscription.endpoint");
  auto bad_zone = request("a");
  bad_zone.timezone = "Europe/Nowhere";
  CHECK(subscribe(bad_zone).error().field == "timezone");
  auto bad_locale = request("a");
  bad_locale.locale = "polish!";
  CHECK(subscribe(bad_locale).error().field == "locale");
  auto bad_version = request("a");
  bad_version.text_version = "";
  CHECK(subscribe(bad_version).error().field == "consent.text_version");
  auto no_categories = request("a", {});
  CHECK(subscribe(no_categories).error().field == "consent.categories");
  auto bad_ip = request("a");
  bad_ip.origin.ip = "not-an-ip";
  CHECK(subscribe(bad_ip).error().field == "ip");
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions") == "0");
  CHECK(scalar(db, "SELECT count(*) FROM consent_ledger") == "0");
}

TEST_CASE_FIXTURE(fixture, "a wrong token and an unknown id are indistinguishable") {
  const auto s = subscribe_ok("a");
  // One character changed, whatever the token starts with.
  const auto wrong = set_consent(s, {}, (s.token[0] == 'x' ? "y" : "x") + s.token.substr(1));
  subscribe_outcome unknown = s;
  unknown.id = "sub_AAAAAAAAAAAAAAAAAAAAAA";
  const auto missing = set_consent(unknown, {});
  subscribe_outcome malformed = s;
  malformed.id = "nonsense";
  const auto odd = set_consent(malformed, {});
  REQUIRE_FALSE(wrong);
  REQUIRE_FALSE(missing);
  REQUIRE_FALSE(odd);
  for (const auto* e : {&wrong.error(), &missing.error(), &odd.error()}) {
    CHECK(e->code == wrong.error().code);
    CHECK(e->message == wrong.error().message);
    CHECK(e->field == wrong.error().field);
  }
  CHECK(wrong.error().code == "not_found");
  CHECK(ledger(s.id).size() == 1);  // nothing was recorded
}

TEST_CASE_FIXTURE(fixture, "withdrawing a category cancels its queued messages when they are claimed") {
  const auto s = subscribe_ok("a", {"promotions", "cart_reminders"});
  const auto promo = enqueue(s.id, "promotions");
  const auto cart = enqueue(s.id, "cart_reminders");
  const auto changed = set_consent(s, {"cart_reminders"});
  REQUIRE(changed);
  CHECK(changed->categories == std::vector<std::string>{"cart_reminders"});
  const auto entries = ledger(s.id);
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].action == "change");
  CHECK(entries[1].categories_before == R"(["cart_reminders","promotions"])");
  CHECK(entries[1].categories_after == R"(["cart_reminders"])");
  CHECK(entries[1].ip_truncated == "2001:db8:1::/48");

  auto outbox = storage::make_sqlite_outbox_store(db);
  const auto claimed = outbox->claim_due(clock.now(), 10).value();
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].id == cart);
  CHECK(outbox->get(promo).value()->state == storage::outbox_state::cancelled);
  CHECK(outbox->get(promo).value()->last_reason == storage::consent_withdrawn_reason);

  // Withdrawing everything: a 'withdraw' entry; new messages are refused.
  CHECK(set_consent(s, {}).value().changed);
  CHECK(ledger(s.id).back().action == "withdraw");
  storage::new_outbox_message m;
  m.subscription_id = row_id(s.id);
  m.category = "cart_reminders";
  CHECK(outbox->enqueue({m}, clock.now()).error().code == "consent_missing");
  // The same consent again changes nothing and records nothing.
  CHECK_FALSE(set_consent(s, {}).value().changed);
  CHECK(ledger(s.id).size() == 3);
}

TEST_CASE_FIXTURE(fixture, "resubscribe keeps the identity, consent and history") {
  const auto s = subscribe_ok("old", {"cart_reminders"});
  const auto sent = enqueue(s.id, "cart_reminders");
  const auto id_before = row_id(s.id);
  resubscribe_request r;
  r.old_endpoint = endpoint("old");
  r.endpoint = endpoint("new");
  r.p256dh = std::string{p256dh};
  r.auth = std::string{auth};
  r.origin = {"https://shop.example/sw.js", ""};
  const auto moved = wait<subscribe_outcome>([&](auto done) { service->resubscribe(r, std::move(done)); });
  REQUIRE(moved);
  CHECK(moved->id == s.id);
  CHECK_FALSE(moved->created);
  CHECK(row_id(s.id) == id_before);
  CHECK(scalar(db, "SELECT endpoint FROM subscriptions WHERE public_id = '" + s.id + "'") == endpoint("new"));
  CHECK(scalar(db, "SELECT count(*) FROM outbox WHERE subscription_id = " + std::to_string(id_before)) == "1");
  (void)sent;
  const auto entries = ledger(s.id);
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].action == "resubscribe");
  CHECK(entries[1].categories_before == entries[1].categories_after);
  // The token still works; a retry answers the same.
  CHECK(set_consent(s, {"promotions"}).value().changed);
  const auto again = wait<subscribe_outcome>([&](auto done) { service->resubscribe(r, std::move(done)); });
  CHECK(again.value().id == s.id);
  r.old_endpoint = endpoint("never");
  r.endpoint = endpoint("unknown");
  const auto lost = wait<subscribe_outcome>([&](auto done) { service->resubscribe(r, std::move(done)); });
  CHECK(lost.error().code == "not_found");
  CHECK(lost.error().field == "old_endpoint");
}

TEST_CASE_FIXTURE(fixture, "unsubscribe needs the token, cancels queued messages and is idempotent") {
  const auto s = subscribe_ok("a");
  const auto queued = enqueue(s.id, "promotions");
  unsubscribe_request r{s.id, "wrong", {}};
  CHECK(wait<void>([&](auto done) { service->unsubscribe(r, std::move(done)); }).error().code == "not_found");
  r.token = s.token;
  REQUIRE(wait<void>([&](auto done) { service->unsubscribe(r, std::move(done)); }));
  REQUIRE(wait<void>([&](auto done) { service->unsubscribe(r, std::move(done)); }));
  CHECK(storage::make_sqlite_outbox_store(db)->get(queued).value()->state == storage::outbox_state::cancelled);
  const auto entries = ledger(s.id);
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].action == "unsubscribe");
  CHECK(entries[1].categories_after == "[]");
  CHECK(entries[1].source == "backend");
  CHECK(set_consent(s, {"promotions"}).error().code == "subscription_inactive");
  // Subscribing again with the same endpoint brings the same subscriber back.
  const auto back = subscribe_ok("a");
  CHECK(back.id == s.id);
  CHECK(ledger(s.id).back().action == "grant");
}

TEST_CASE_FIXTURE(fixture, "GDPR export holds everything about the person, never the token") {
  const auto a = subscribe_ok("a", {"promotions"});
  const auto b = subscribe_ok("b", {"cart_reminders"});
  for (const auto* s : {&a, &b}) {
    REQUIRE(wait<void>([&](auto done) { service->link_customer(s->id, "cust-7", std::move(done)); }));
  }
  enqueue(a.id, "promotions", R"({"title":"Sale"})");
  enqueue(a.id, "", std::string("\xff\x00", 2));

  const auto doc = service->export_customer("cust-7").value();
  CHECK(doc["customer_id"] == "cust-7");
  REQUIRE(doc["subscriptions"].size() == 2);
  const auto& first = doc["subscriptions"][0];
  CHECK(first["subscription"]["id"] == a.id);
  CHECK(first["subscription"]["endpoint"] == endpoint("a"));
  CHECK(first["subscription"]["keys"]["p256dh"] == p256dh);
  CHECK(first["subscription"]["keys"]["auth"] == auth);
  CHECK(first["subscription"]["customer_id"] == "cust-7");
  CHECK(first["subscription"]["categories"] == nlohmann::json::array({"promotions"}));
  CHECK(first["subscription"]["timezone"] == "Europe/Warsaw");
  CHECK(first["subscription"]["locale"] == "pl-PL");
  CHECK(first["subscription"]["created_at"].is_string());
  REQUIRE(first["consent_ledger"].size() == 1);
  CHECK(first["consent_ledger"][0]["action"] == "grant");
  CHECK(first["consent_ledger"][0]["categories_after"] == nlohmann::json::array({"promotions"}));
  REQUIRE(first["messages"].size() == 2);
  CHECK(first["messages"][0]["state"] == "queued");
  CHECK(first["messages"][0]["category"] == "promotions");
  CHECK(first["messages"][0]["payload"]["title"] == "Sale");
  CHECK(first["messages"][1]["payload_base64url"] == "_wA");
  const std::string text = doc.dump();
  CHECK(text.find("token") == std::string::npos);
  CHECK(text.find(a.token) == std::string::npos);
  CHECK(service->export_subscription(b.id).value()["subscription"]["categories"][0] == "cart_reminders");
  CHECK(service->export_subscription("sub_AAAAAAAAAAAAAAAAAAAAAA").error().code == "not_found");
  CHECK(service->export_customer("nobody").value()["subscriptions"].empty());
}

TEST_CASE_FIXTURE(fixture, "erasure removes personal data, keeps the ledger with an erase entry, and verifies") {
  const auto a = subscribe_ok("a", {"promotions"});
  const auto b = subscribe_ok("b", {"cart_reminders"});
  const auto keep = subscribe_ok("keep", {"promotions"});
  for (const auto* s : {&a, &b}) {
    REQUIRE(wait<void>([&](auto done) { service->link_customer(s->id, "cust-7", std::move(done)); }));
  }
  const auto queued = enqueue(a.id, "promotions", R"({"title":"Your cart: red shoes"})");
  enqueue(keep.id, "promotions");
  const auto erased = wait<erase_outcome>(
      [&](auto done) { service->erase_customer("cust-7", {"backend:gdpr", ""}, std::move(done)); });
  REQUIRE(erased);
  CHECK(erased->subscriptions_erased == 2);
  CHECK(erased->messages_cancelled == 1);

  // The raw tables: nothing personal left for a or b.
  const std::string ids = "(" + std::to_string(row_id(a.id)) + ", " + std::to_string(row_id(b.id)) + ")";
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions WHERE id IN " + ids +
                       " AND state = 'erased' AND endpoint LIKE 'erased:%' AND p256dh = '' AND auth = '' AND "
                       "token_hash IS NULL AND customer_id IS NULL AND timezone IS NULL AND locale IS NULL") == "2");
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions WHERE endpoint IN ('" + endpoint("a") + "', '" +
                       endpoint("b") + "')") == "0");
  CHECK(scalar(db, "SELECT count(*) FROM subscription_categories WHERE subscription_id IN " + ids) == "0");
  CHECK(scalar(db, "SELECT count(*) FROM outbox WHERE subscription_id IN " + ids + " AND length(payload) > 0") ==
        "0");
  CHECK(scalar(db, "SELECT state || ' ' || last_reason FROM outbox WHERE id = " + std::to_string(queued)) ==
        "cancelled erased");
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions WHERE customer_id = 'cust-7'") == "0");
  CHECK(scalar(db, "SELECT customer_id FROM subscriptions WHERE public_id = '" + keep.id + "'").empty());
  CHECK(scalar(db, "SELECT count(*) FROM outbox WHERE state = 'queued'") == "1");  // keep's

  // The ledger keeps the history and proves the erasure.
  const auto entries = ledger(a.id);
  REQUIRE(entries.size() == 2);
  CHECK(entries[1].action == "erase");
  CHECK(entries[1].categories_before == R"(["promotions"])");
  CHECK(entries[1].categories_after == "[]");
  CHECK(entries[1].source == "backend:gdpr");
  const auto v = service->verify_ledger().value();
  CHECK(v.intact());
  CHECK(v.entries == 5);

  // The token is dead; erasing again erases nothing; the endpoint is new again.
  CHECK(set_consent(a, {}).error().code == "not_found");
  const auto again = wait<erase_outcome>(
      [&](auto done) { service->erase_subscription(a.id, {}, std::move(done)); });
  CHECK(again.value().subscriptions_erased == 0);
  const auto fresh = subscribe_ok("a");
  CHECK(fresh.created);
  CHECK(fresh.id != a.id);
  const auto exported = service->export_subscription(a.id).value();
  CHECK(exported["subscription"]["state"] == "erased");
  CHECK(exported["subscription"]["endpoint"].is_null());
  CHECK_FALSE(exported["messages"][0].contains("payload"));
}

TEST_CASE_FIXTURE(fixture, "the export shows what tracking keeps about a device; an erasure removes it") {
  const auto a = subscribe_ok("a", {"promotions"});
  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); }));
  const auto message = enqueue(a.id, "promotions", R"({"title":"Sale"})");
  REQUIRE(db.exec("UPDATE outbox SET delivery_id = 'd_sale', source = 'campaign:cmp_1' WHERE id = " +
                  std::to_string(message)));
  const auto t = clock.now();
  auto reports = storage::make_sqlite_delivery_event_store(db);
  REQUIRE(reports->record({"d_sale", "shown", "", t}));
  REQUIRE(reports->record({"d_sale", "clicked", "shop_now", t + 1min}));
  auto tracking = storage::make_sqlite_tracking_store(db);
  REQUIRE(tracking->touch(row_id(a.id), storage::touch_kind::shown, message, t));
  REQUIRE(tracking->touch(row_id(a.id), storage::touch_kind::clicked, message, t + 1min));
  storage::conversion c;
  c.event_id = "order-1";
  c.kind = "converted";
  c.subscription_id = row_id(a.id);
  c.outbox_id = message;
  c.source = "campaign:cmp_1";
  c.touch_at = t + 1min;
  c.occurred_at = t + 1h;
  c.revenue = 12950;
  c.currency = "PLN";
  c.attributed_at = t + 1h;
  REQUIRE(tracking->record_conversion(c));

  const auto at = [](time_point when) { return format_rfc3339(when); };
  const auto doc = service->export_subscription(a.id).value();
  CHECK(doc["tracking"] == nlohmann::json{
      {"reports", {{{"message_id", message}, {"type", "shown"}, {"action", nullptr}, {"at", at(t)}},
                   {{"message_id", message}, {"type", "clicked"}, {"action", "shop_now"}, {"at", at(t + 1min)}}}},
      {"last_shown", {{"message_id", message}, {"at", at(t)}}},
      {"last_clicked", {{"message_id", message}, {"at", at(t + 1min)}}},
      {"conversions", {{{"event_id", "order-1"}, {"kind", "converted"}, {"message_id", message},
                        {"source", "campaign:cmp_1"}, {"step", nullptr}, {"variant", nullptr},
                        {"touch_at", at(t + 1min)}, {"occurred_at", at(t + 1h)}, {"revenue", 129.5},
                        {"currency", "PLN"}}}}});
  CHECK(service->export_customer("cust-7").value()["subscriptions"][0]["tracking"] == doc["tracking"]);

  REQUIRE(wait<erase_outcome>(
      [&](auto done) { service->erase_customer("cust-7", {"backend:gdpr", ""}, std::move(done)); }));
  const auto after = service->export_subscription(a.id).value()["tracking"];
  CHECK(after["last_shown"].is_null());
  CHECK(after["last_clicked"].is_null());
  CHECK(after["conversions"].empty());
}

TEST_CASE_FIXTURE(fixture, "a tampered ledger entry is reported by seq") {
  const auto s = subscribe_ok("a", {"promotions"});
  REQUIRE(set_consent(s, {"promotions", "cart_reminders"}));
  REQUIRE(set_consent(s, {}));
  CHECK(service->verify_ledger().value().entries == 3);
  CHECK_FALSE(db.exec("UPDATE consent_ledger SET categories_after = '[]' WHERE seq = 2"));
  REQUIRE(db.exec("DROP TRIGGER consent_ledger_no_update"));
  REQUIRE(db.exec("UPDATE consent_ledger SET categories_after = '[]' WHERE seq = 2"));
  const auto v = service->verify_ledger().value();
  CHECK_FALSE(v.intact());
  CHECK(v.first_broken_seq == 2);
}

TEST_CASE_FIXTURE(fixture, "concurrent subscribes from many threads all land, in few transactions") {
  constexpr int threads = 8;
  constexpr int per_thread = 25;
  std::vector<std::vector<result<subscribe_outcome>>> results(threads);
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        std::vector<std::future<result<subscribe_outcome>>> pending;
        for (int i = 0; i < per_thread; ++i) {
          auto p = std::make_shared<std::promise<result<subscribe_outcome>>>();
          pending.push_back(p->get_future());
          service->subscribe(request("t" + std::to_string(t) + "-" + std::to_string(i)),
                             [p](result<subscribe_outcome> r) { p->set_value(std::move(r)); });
        }
        for (auto& f : pending) results[t].push_back(f.get());
      });
    }
  }
  std::set<std::string> ids;
  for (const auto& per : results) {
    for (const auto& r : per) {
      REQUIRE(r.has_value());
      CHECK(r->created);
      ids.insert(r->id);
    }
  }
  CHECK(ids.size() == threads * per_thread);
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions") == std::to_string(threads * per_thread));
  const auto v = service->verify_ledger().value();
  CHECK(v.intact());
  CHECK(v.entries == threads * per_thread);
  MESSAGE("transactions: " << writer.counters().batches << " for " << threads * per_thread << " subscribes");
  CHECK(writer.counters().batches < static_cast<std::uint64_t>(threads * per_thread));
}

namespace {

// Automation rows as the engine writes them (schema v5), inserted directly.
void add_journey(storage::database& db, const std::string& scenario, const std::string& person, time_point at,
                 const std::string& state = "active") {
  const auto t = std::to_string(unix_millis(at));
  REQUIRE(db.exec("INSERT INTO journeys (scenario, person, journey_key, state, next_step, anchor_at, next_at, context, "
                  "started_at, updated_at, ended_at, end_reason) VALUES ('" +
                  scenario + "', '" + person + "', 'cart-1', '" + state + "', 1, " + t + ", " +
                  (state == "active" ? t : "NULL") + ", '{\"cart\":{\"total\":120}}', " + t + ", " + t + ", " +
                  (state == "active" ? "NULL" : t) + ", " + (state == "active" ? "NULL" : "'purchase'") + ")"));
  REQUIRE(db.exec("INSERT INTO journey_log (journey_id, scenario, step, person, outcome, at) VALUES ((SELECT max(id) "
                  "FROM journeys), '" +
                  scenario + "', 'first', '" + person + "', 'entered', " + t + ")"));
}

void add_interest(storage::database& db, const std::string& product, const std::string& person, time_point at) {
  REQUIRE(db.exec("INSERT INTO product_interest (product_id, person, at) VALUES ('" + product + "', '" + person +
                  "', " + std::to_string(unix_millis(at)) + ")"));
}

std::string persons_in(storage::database& db, const std::string& table) {
  return scalar(db, "SELECT group_concat(person, ' ') FROM (SELECT DISTINCT person FROM " + table +
                        " ORDER BY person)");
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "lifecycle hooks: subscribed when created or back, not on an update; linked with the record") {
  std::vector<std::string> subscribed;  // "<public id> <state>", written on the writer thread
  std::vector<std::string> linked;
  lifecycle_hooks hooks;
  hooks.on_subscribed = [&](storage::database& hook_db, const storage::subscriber_record& s,
                            time_point now) -> result<void> {
    CHECK(now == clock.now());
    // Inside the same transaction: the row is already there.
    auto seen = storage::make_sqlite_subscriber_store(hook_db)->find_by_public_id(s.public_id);
    CHECK(seen.value().has_value());
    subscribed.push_back(s.public_id + " " + (s.state == storage::subscription_state::active ? "active" : "other"));
    return {};
  };
  hooks.on_customer_linked = [&](storage::database&, const storage::subscriber_record& s, time_point) -> result<void> {
    linked.push_back(s.public_id + " " + s.customer_id);
    return {};
  };
  service->set_lifecycle_hooks(hooks);

  const auto a = subscribe_ok("a");
  REQUIRE(subscribed == std::vector<std::string>{a.id + " active"});
  // The same endpoint again, still active: an update, no hook.
  const auto updated = subscribe_ok("a", {"promotions", "cart_reminders"});
  CHECK(subscribed.size() == 1);
  // Unsubscribed, then back with the same endpoint: the hook again.
  unsubscribe_request r{a.id, updated.token, {}};
  REQUIRE(wait<void>([&](auto done) { service->unsubscribe(r, std::move(done)); }));
  const auto back = subscribe_ok("a");
  CHECK(back.id == a.id);
  CHECK(subscribed.size() == 2);
  // Consent changes are no subscription.
  REQUIRE(set_consent(back, {"cart_reminders"}));
  CHECK(subscribed.size() == 2);

  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); }));
  REQUIRE(linked == std::vector<std::string>{a.id + " cust-7"});
  // Linking to the same customer again changes nothing: no hook.
  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); }));
  CHECK(linked.size() == 1);
  // Another customer: the hook sees the new link.
  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-8", std::move(done)); }));
  CHECK(linked.back() == a.id + " cust-8");
}

TEST_CASE_FIXTURE(fixture, "a failing lifecycle hook fails the request and nothing of it is written") {
  lifecycle_hooks hooks;
  hooks.on_subscribed = [](storage::database&, const storage::subscriber_record&, time_point) -> result<void> {
    return fail("storage_error", "the engine could not start the welcome series");
  };
  hooks.on_customer_linked = [](storage::database&, const storage::subscriber_record&, time_point) -> result<void> {
    return fail("storage_error", "the engine could not move the journeys");
  };
  service->set_lifecycle_hooks(hooks);
  const auto refused = subscribe(request("a"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message == "the engine could not start the welcome series");
  CHECK(scalar(db, "SELECT count(*) FROM subscriptions") == "0");
  CHECK(scalar(db, "SELECT count(*) FROM consent_ledger") == "0");

  service->set_lifecycle_hooks({});  // unset hooks do nothing
  const auto a = subscribe_ok("a");
  hooks.on_subscribed = nullptr;
  service->set_lifecycle_hooks(hooks);
  const auto link = wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); });
  REQUIRE_FALSE(link.has_value());
  CHECK(link.error().message == "the engine could not move the journeys");
  CHECK(scalar(db, "SELECT ifnull(customer_id, 'none') FROM subscriptions") == "none");
  // An update of an active subscriber does not call on_subscribed at all.
  CHECK(subscribe(request("a")).has_value());
}

TEST_CASE_FIXTURE(fixture, "GDPR: erase_customer removes the customer's and the subscribers' automation data") {
  const auto a = subscribe_ok("a");
  const auto b = subscribe_ok("b");
  const auto keep = subscribe_ok("keep");
  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); }));
  const auto t = clock.now();
  add_journey(db, "abandoned_cart", "c:cust-7", t);
  add_journey(db, "welcome", "s:" + a.id, t, "completed");
  add_journey(db, "welcome", "s:" + keep.id, t);
  add_journey(db, "abandoned_cart", "c:cust-other", t);
  add_interest(db, "p-1", "c:cust-7", t);
  add_interest(db, "p-1", "s:" + a.id, t);
  add_interest(db, "p-1", "c:cust-other", t);
  // A customer with no subscriber at all (browsed, never subscribed).
  add_journey(db, "browse_abandonment", "c:cust-never", t);
  add_interest(db, "p-2", "c:cust-never", t);

  REQUIRE(wait<erase_outcome>([&](auto done) { service->erase_customer("cust-7", {}, std::move(done)); }));
  const auto others = "c:cust-never c:cust-other s:" + keep.id;
  CHECK(persons_in(db, "journeys") == others);
  CHECK(persons_in(db, "journey_log") == others);
  CHECK(persons_in(db, "product_interest") == "c:cust-never c:cust-other");

  REQUIRE(wait<erase_outcome>([&](auto done) { service->erase_customer("cust-never", {}, std::move(done)); }));
  CHECK(persons_in(db, "journeys") == "c:cust-other s:" + keep.id);
  CHECK(persons_in(db, "product_interest") == "c:cust-other");
  (void)b;
}

TEST_CASE_FIXTURE(fixture, "GDPR: erase_subscription keeps the customer's journeys while another active device remains") {
  const auto phone = subscribe_ok("phone");
  const auto laptop = subscribe_ok("laptop");
  for (const auto* s : {&phone, &laptop}) {
    REQUIRE(wait<void>([&](auto done) { service->link_customer(s->id, "cust-7", std::move(done)); }));
  }
  const auto t = clock.now();
  add_journey(db, "abandoned_cart", "c:cust-7", t);
  add_journey(db, "welcome", "s:" + phone.id, t);
  add_interest(db, "p-1", "c:cust-7", t);
  add_interest(db, "p-1", "s:" + phone.id, t);
  // What the customer's journey sent to the phone goes with the phone.
  REQUIRE(db.exec("INSERT INTO journey_log (journey_id, scenario, step, person, subscription_id, outcome, at) "
                  "SELECT id, scenario, 'first', person, " +
                  std::to_string(row_id(phone.id)) + ", 'sent', 1 FROM journeys WHERE person = 'c:cust-7'"));

  REQUIRE(wait<erase_outcome>([&](auto done) { service->erase_subscription(phone.id, {}, std::move(done)); }));
  CHECK(persons_in(db, "journeys") == "c:cust-7");
  CHECK(scalar(db, "SELECT group_concat(outcome) FROM journey_log") == "entered");
  CHECK(persons_in(db, "product_interest") == "c:cust-7");

  // The laptop unsubscribes: no active device of the customer is left, so
  // erasing it takes the customer's automation data too.
  unsubscribe_request r{laptop.id, laptop.token, {}};
  REQUIRE(wait<void>([&](auto done) { service->unsubscribe(r, std::move(done)); }));
  const auto third = subscribe_ok("tablet");
  REQUIRE(wait<erase_outcome>([&](auto done) { service->erase_subscription(laptop.id, {}, std::move(done)); }));
  CHECK(scalar(db, "SELECT count(*) FROM journeys") == "0");
  CHECK(scalar(db, "SELECT count(*) FROM journey_log") == "0");
  CHECK(scalar(db, "SELECT count(*) FROM product_interest") == "0");
  (void)third;
}

TEST_CASE_FIXTURE(fixture, "GDPR export lists the person's journeys and product interest") {
  const auto a = subscribe_ok("a");
  REQUIRE(wait<void>([&](auto done) { service->link_customer(a.id, "cust-7", std::move(done)); }));
  const auto t = clock.now();
  add_journey(db, "welcome", "s:" + a.id, t - 1h, "completed");
  add_journey(db, "abandoned_cart", "c:cust-7", t);
  add_journey(db, "abandoned_cart", "c:cust-other", t);
  add_interest(db, "p-1", "c:cust-7", t);

  const auto one = service->export_subscription(a.id).value();
  REQUIRE(one["journeys"].size() == 2);
  const auto& welcome = one["journeys"][0];
  CHECK(welcome["scenario"] == "welcome");
  CHECK(welcome["person"] == "s:" + a.id);
  CHECK(welcome["state"] == "completed");
  CHECK(welcome["step"] == 1);
  CHECK(welcome["end_reason"] == "purchase");
  CHECK(welcome["ended_at"].is_string());
  CHECK(welcome["started_at"].is_string());
  CHECK(welcome["context"]["cart"]["total"] == 120);
  REQUIRE(welcome["log"].size() == 1);
  CHECK(welcome["log"][0]["outcome"] == "entered");
  const auto& cart = one["journeys"][1];
  CHECK(cart["scenario"] == "abandoned_cart");
  CHECK(cart["state"] == "active");
  CHECK(cart["ended_at"].is_null());
  CHECK(cart["end_reason"].is_null());
  CHECK(cart["next_at"].is_string());
  REQUIRE(one["product_interest"].size() == 1);
  CHECK(one["product_interest"][0]["product_id"] == "p-1");

  const auto customer = service->export_customer("cust-7").value();
  REQUIRE(customer["journeys"].size() == 1);
  CHECK(customer["journeys"][0]["scenario"] == "abandoned_cart");
  CHECK(customer["product_interest"].size() == 1);
  CHECK(customer["subscriptions"][0]["journeys"].size() == 2);
  CHECK(service->export_customer("nobody").value()["journeys"].empty());
}
