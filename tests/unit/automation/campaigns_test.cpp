// One-off campaigns on a real SQLite file with a real write_queue, in
// virtual time: validation (nothing stored on error), fan-out in chunks with
// exact counts, audience filters, local time across zones and a DST change,
// cancellation in the middle of a fan-out, and a restart that continues from
// the cursor without duplicates.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../storage/test_support.hpp"
#include "test_support.hpp"
#include "webpushd/automation/campaigns.hpp"
#include "webpushd/automation/message.hpp"
#include "webpushd/automation/variants.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/write_queue.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/tracking/attribution.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::automation {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::at;
using storage::campaign_state;
using storage::testing::open_ok;
using storage::testing::scalar;
using storage::testing::temp_dir;

constexpr std::string_view p256dh =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
constexpr std::string_view auth = "BTBZMqHH6r4Tts7J_aSIgg";

campaign_options shop_options() {
  campaign_options o;
  o.categories = {"promotions", "news"};
  o.default_locale = "en";
  o.default_timezone = "UTC";
  o.shop = {"Shop", "https://shop.test"};
  o.public_url = "https://push.shop.test";
  // As the daemon gives them: the scenario defaults of campaign and content
  // ({{scenario.name}}, {{step.name}}) must not reach a campaign.
  o.utm = utm_def{};
  return o;
}

// A subscriber as the tests need one.
struct person {
  std::vector<std::string> categories{"promotions"};
  std::string locale;
  std::string timezone;
  std::string customer;  // empty: anonymous
  bool unsubscribed = false;
};

person who(std::vector<std::string> categories, std::string locale = {}, std::string timezone = {},
           std::string customer = {}, bool unsubscribed = false) {
  person p;
  p.categories = std::move(categories);
  p.locale = std::move(locale);
  p.timezone = std::move(timezone);
  p.customer = std::move(customer);
  p.unsubscribed = unsubscribed;
  return p;
}

// A daemon's campaign half: the writer, the service, the runner, on one file.
struct world {
  explicit world(const std::filesystem::path& file, campaign_options o = shop_options())
      : options(std::move(o)),
        writer(std::make_unique<storage::write_queue>(open_ok(file))),
        service(std::make_unique<campaign_service>(options, *writer, open_ok(file), clock)),
        runner(std::make_unique<campaign_runner>(options, signer)),
        reader(open_ok(file)) {}

  campaign_options options;
  manual_clock clock{at("2026-03-20T12:00:00Z")};
  tracking::delivery_signer signer{bytes(32, 7)};
  std::unique_ptr<storage::write_queue> writer;
  std::unique_ptr<campaign_service> service;
  std::unique_ptr<campaign_runner> runner;
  storage::database reader;
  int next_endpoint = 0;

  // Adds subscribers in one transaction; returns their row ids.
  std::vector<std::int64_t> add(std::size_t n, const person& p) {
    std::vector<std::int64_t> ids;
    auto done = std::make_shared<std::promise<result<void>>>();
    auto outcome = done->get_future();
    const int first = next_endpoint;
    next_endpoint += static_cast<int>(n);
    const auto now = clock.now();
    REQUIRE(writer->submit(
        [&, first, n, now](storage::database& db) -> result<void> {
          auto subs = storage::make_sqlite_subscriber_store(db);
          for (std::size_t i = 0; i < n; ++i) {
            storage::subscriber_fields f;
            f.endpoint = "https://push.example/ep/" + std::to_string(first + static_cast<int>(i));
            f.p256dh = std::string(p256dh);
            f.auth = std::string(auth);
            f.timezone = p.timezone;
            f.locale = p.locale;
            f.categories = p.categories;
            f.new_public_id = "sub_" + std::to_string(first + static_cast<int>(i));
            auto up = subs->upsert(f, now);
            if (!up) return tl::unexpected(up.error());
            const auto id = up->subscriber.id;
            if (!p.customer.empty()) {
              if (auto r = subs->link_customer(id, p.customer, now); !r) return r;
            }
            if (p.unsubscribed) {
              if (auto r = subs->mark_unsubscribed(id, now); !r) return tl::unexpected(r.error());
            }
            ids.push_back(id);
          }
          return {};
        },
        [done](result<void> r) { done->set_value(std::move(r)); }));
    auto r = outcome.get();
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
    return ids;
  }

  result<campaign_created> create(const json& body) {
    std::promise<result<campaign_created>> p;
    auto f = p.get_future();
    service->create(body, "shop", [&p](result<campaign_created> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  std::string create_ok(const json& body) {
    auto r = create(body);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().code + " " + r.error().field + ": " + r.error().message));
    CHECK(r->state == campaign_state::scheduled);
    return r->id;
  }

  campaign_tick run(std::size_t max_messages) {
    std::promise<result<campaign_tick>> p;
    auto f = p.get_future();
    const auto now = clock.now();
    auto* r = runner.get();
    REQUIRE(writer->submit_value<campaign_tick>(
        [r, now, max_messages](storage::database& db) { return r->run_due(db, now, max_messages); },
        [&p](result<campaign_tick> t) { p.set_value(std::move(t)); }));
    auto t = f.get();
    REQUIRE_MESSAGE(t.has_value(), (t ? "" : t.error().message));
    return *t;
  }

  result<campaign_view> cancel(const std::string& id) {
    std::promise<result<campaign_view>> p;
    auto f = p.get_future();
    service->cancel(id, "shop", [&p](result<campaign_view> r) { p.set_value(std::move(r)); });
    return f.get();
  }

  campaign_view get(const std::string& id) {
    auto v = service->get(id);
    REQUIRE_MESSAGE(v.has_value(), (v ? "" : v.error().message));
    return *v;
  }

  std::string sql(const std::string& q) { return scalar(reader, q); }
  std::int64_t count(const std::string& q) { return std::stoll(sql(q)); }
};

// Outbox rows of a campaign: subscription id → (payload, next_attempt_at, expires_at, delivery_id).
struct message_row {
  std::string payload;
  std::int64_t next_attempt_at = 0;
  std::int64_t expires_at = 0;
  std::string delivery_id;
  std::string state;
  std::string category;
  std::int64_t ttl = 0;
};

std::map<std::int64_t, message_row> messages_of(storage::database& db, const std::string& id) {
  std::map<std::int64_t, message_row> out;
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db.handle(),
                             "SELECT subscription_id, CAST(payload AS TEXT), next_attempt_at, expires_at, delivery_id, "
                             "state, category, ttl_seconds FROM outbox WHERE source = ?1",
                             -1, &st, nullptr) == SQLITE_OK);
  const std::string source = "campaign:" + id;
  sqlite3_bind_text(st, 1, source.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st) == SQLITE_ROW) {
    const auto text = [st](int col) {
      const auto* t = sqlite3_column_text(st, col);
      return t == nullptr ? std::string{} : std::string(reinterpret_cast<const char*>(t));
    };
    const auto sub = sqlite3_column_int64(st, 0);
    CHECK_MESSAGE(out.count(sub) == 0, "subscription " << sub << " got two messages");
    out[sub] = {text(1), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), text(4), text(5), text(6),
                sqlite3_column_int64(st, 7)};
  }
  sqlite3_finalize(st);
  return out;
}

json basic_campaign() {
  return {{"name", "Spring sale"},
          {"category", "promotions"},
          {"message",
           {{"title", "Spring sale at {{shop.name}}"},
            {"body", "Everything -20%"},
            {"url", "https://shop.test/sale"},
            {"locales", {{"pl", {{"title", "Wiosenna wyprzedaż w {{shop.name}}"}}}}}}}};
}

// A change to a valid body and the 422 it must get.
struct bad_request {
  std::function<void(json&)> change;
  std::string code;
  std::string field;
};

// Each change of `valid` is refused with its code and field.
void expect_refused(world& w, const json& valid, const std::vector<bad_request>& cases) {
  for (const auto& c : cases) {
    auto body = valid;
    c.change(body);
    auto r = w.create(body);
    CAPTURE(body.dump());
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().code == c.code);
    CHECK(r.error().field == c.field);
  }
}

TEST_CASE("a campaign fans out in chunks with exact counts, each message signed and rendered once per locale") {
  temp_dir dir;
  world w(dir.db_file());
  const auto promo = w.add(250, {});
  w.add(20, who({"news"}));  // another category
  w.add(5, who({"promotions"}, "", "", "", true));  // unsubscribed: not active
  const auto polish = w.add(10, who({"promotions", "news"}, "pl-PL"));

  const auto id = w.create_ok(basic_campaign());
  CHECK(id.starts_with("cmp_"));
  CHECK(w.get(id).row.state == campaign_state::scheduled);

  auto t = w.run(100);
  CHECK(t.campaigns == 1);
  CHECK(t.examined == 100);
  CHECK(t.enqueued == 100);
  CHECK(t.more);
  auto v = w.get(id);
  CHECK(v.row.state == campaign_state::running);
  CHECK(v.row.started_at == w.clock.now());
  CHECK(v.row.cursor == promo[99]);
  CHECK(v.row.enqueued == 100);
  REQUIRE(v.messages.has_value());
  CHECK(v.messages->queued == 100);

  w.clock.advance(1s);
  t = w.run(100);
  CHECK(t.enqueued == 100);
  CHECK(t.more);
  t = w.run(100);  // 50 left of the 250, then the 10 Polish ones
  CHECK(t.enqueued == 60);
  CHECK(t.completed == 1);
  CHECK_FALSE(t.more);
  v = w.get(id);
  CHECK(v.row.state == campaign_state::completed);
  CHECK(v.row.targeted == 260);
  CHECK(v.row.enqueued == 260);
  CHECK(v.row.skipped == 0);
  CHECK(v.row.finished_at == w.clock.now());
  CHECK(v.messages->queued == 260);

  t = w.run(100);  // nothing left to do
  CHECK(t.campaigns == 0);
  CHECK(t.enqueued == 0);

  const auto msgs = messages_of(w.reader, id);
  REQUIRE(msgs.size() == 260);
  std::set<std::string> delivery_ids;
  for (const auto& [sub, m] : msgs) {
    CHECK(m.category == "promotions");
    CHECK(m.ttl == 86400);
    const auto p = json::parse(m.payload);
    const bool pl = std::find(polish.begin(), polish.end(), sub) != polish.end();
    CHECK(p["title"] == (pl ? "Wiosenna wyprzedaż w Shop" : "Spring sale at Shop"));
    CHECK(p["body"] == "Everything -20%");
    CHECK(p["url"] == "https://shop.test/sale?utm_source=webpush&utm_medium=push&utm_campaign=Spring%20sale");
    const auto did = p["delivery"]["id"].get<std::string>();
    CHECK(did == m.delivery_id);
    CHECK(w.signer.verify(did, p["delivery"]["sig"].get<std::string>()));
    CHECK(p["delivery"]["report"] == "https://push.shop.test/v1/deliveries/" + did + "/events");
    delivery_ids.insert(did);
  }
  CHECK(delivery_ids.size() == 260);

  // The payload is exactly what to_payload makes (the fan-out fills a
  // template instead of serialising each one).
  const auto& first = msgs.begin()->second;
  const auto p = json::parse(first.payload);
  const json ctx = {{"subscriber", {{"locale", "en"}, {"timezone", "UTC"}}},
                    {"shop", {{"name", "Shop"}, {"url", "https://shop.test"}}},
                    {"campaign", {{"id", id}, {"name", "Spring sale"}}}};
  message_def def;
  def.fields.title = "Spring sale at {{shop.name}}";
  def.fields.body = "Everything -20%";
  def.fields.url = "https://shop.test/sale";
  utm_def utm;
  utm.campaign = "{{campaign.name}}";
  utm.content = "";
  auto rendered = render_message(def, ctx, "en", "en", utm);
  REQUIRE(rendered.has_value());
  const auto did = p["delivery"]["id"].get<std::string>();
  CHECK(first.payload == to_payload(*rendered,
                                    {did, p["delivery"]["sig"].get<std::string>(),
                                     "https://push.shop.test/v1/deliveries/" + did + "/events"},
                                    ""));

  // The dispatcher's claim takes them like any other message (consent
  // checked again at send time).
  auto outbox = storage::make_sqlite_outbox_store(w.reader);
  auto claimed = outbox->claim_due(w.clock.now(), 1000);
  REQUIRE(claimed.has_value());
  CHECK(claimed->size() == 260);
  for (const auto& m : *claimed) {
    CHECK(m.category == "promotions");
    CHECK(m.urgency == "normal");
    CHECK(m.expires_at - m.created_at == 24h);
    CHECK(std::string(m.payload.begin(), m.payload.end()) == msgs.at(m.subscription_id).payload);
  }

  const auto j = to_json(w.get(id), true);
  CHECK(j["state"] == "completed");
  CHECK(j["targeted"] == 260);
  CHECK(j["messages"]["sending"] == 260);
  CHECK(j["messages"]["sent"] == 0);
  CHECK(j["created_by"] == "shop");
  CHECK(j["message"]["locales"]["pl"]["title"] == "Wiosenna wyprzedaż w {{shop.name}}");
}

TEST_CASE("audience filters: locales by tag or language, linked or anonymous customers") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, who({"promotions"}, "en"));
  const auto pl_linked = w.add(4, who({"promotions"}, "pl-PL", "", "c1"));
  const auto pl_anon = w.add(5, who({"promotions"}, "pl"));
  const auto de_linked = w.add(6, who({"promotions"}, "de", "", "c2"));
  const auto default_linked = w.add(2, who({"promotions"}, "", "", "c3"));  // default locale en

  auto body = basic_campaign();
  body["audience"] = {{"locales", {"pl", "de"}}, {"customer", "linked"}};
  const auto linked = w.create_ok(body);
  body["audience"] = {{"locales", {"PL"}}, {"customer", "anonymous"}};
  const auto anonymous = w.create_ok(body);
  body["audience"] = {{"locales", {"en"}}};
  const auto english = w.create_ok(body);

  const auto t = w.run(1000);
  CHECK(t.completed == 3);
  CHECK(t.examined == 3 * 20);

  const auto a = messages_of(w.reader, linked);
  CHECK(a.size() == pl_linked.size() + de_linked.size());
  for (auto id : pl_linked) {
    REQUIRE(a.count(id) == 1);
    CHECK(json::parse(a.at(id).payload)["title"] == "Wiosenna wyprzedaż w Shop");
  }
  for (auto id : de_linked) {
    REQUIRE(a.count(id) == 1);
    CHECK(json::parse(a.at(id).payload)["title"] == "Spring sale at Shop");
  }
  CHECK(w.get(linked).row.targeted == 10);

  const auto b = messages_of(w.reader, anonymous);
  CHECK(b.size() == pl_anon.size());
  for (auto id : pl_anon) CHECK(b.count(id) == 1);

  const auto c = messages_of(w.reader, english);
  CHECK(c.size() == 3 + default_linked.size());
  for (auto id : default_linked) CHECK(c.count(id) == 1);
}

TEST_CASE("local time: each zone's own moment, across Warsaw's DST change, and a moment already past means now") {
  temp_dir dir;
  world w(dir.db_file());
  const auto warsaw = w.add(2, who({"promotions"}, "pl", "Europe/Warsaw"));
  const auto new_york = w.add(2, who({"promotions"}, "en", "America/New_York"));
  const auto tokyo = w.add(2, who({"promotions"}, "en", "Asia/Tokyo"));
  const auto utc = w.add(2, who({"promotions"}, "en", ""));  // the default zone

  // Europe/Warsaw moves from CET (+1) to CEST (+2) at 01:00Z on 2026-03-29.
  auto body = basic_campaign();
  body["send_at"] = "2026-03-29T09:00:00";
  body["local_time"] = true;
  body["ttl"] = "2h";
  w.clock.set(at("2026-03-28T10:00:00Z"));
  const auto id = w.create_ok(body);
  auto v = w.get(id);
  CHECK(v.row.due_at == at("2026-03-28T19:00:00Z"));  // 09:00 in UTC+14
  CHECK(to_json(v, false)["send_at"] == "2026-03-29T09:00:00");

  w.clock.set(at("2026-03-28T18:59:59Z"));
  CHECK(w.run(100).campaigns == 0);

  // Tokyo's 09:00 (00:00Z) has passed when the fan-out runs at 03:00Z.
  w.clock.set(at("2026-03-29T03:00:00Z"));
  const auto t = w.run(100);
  CHECK(t.enqueued == 8);
  CHECK(t.completed == 1);
  const auto msgs = messages_of(w.reader, id);
  REQUIRE(msgs.size() == 8);
  const auto ms = [](const std::string& s) { return unix_millis(at(s)); };
  for (auto s : warsaw) CHECK(msgs.at(s).next_attempt_at == ms("2026-03-29T07:00:00Z"));  // CEST, not CET
  for (auto s : new_york) CHECK(msgs.at(s).next_attempt_at == ms("2026-03-29T13:00:00Z"));  // EDT since March 8
  for (auto s : tokyo) CHECK(msgs.at(s).next_attempt_at == ms("2026-03-29T03:00:00Z"));  // past: now
  for (auto s : utc) CHECK(msgs.at(s).next_attempt_at == ms("2026-03-29T09:00:00Z"));
  // The TTL counts from each message's own moment.
  for (auto s : warsaw) CHECK(msgs.at(s).expires_at == ms("2026-03-29T09:00:00Z"));
  for (auto s : tokyo) CHECK(msgs.at(s).expires_at == ms("2026-03-29T05:00:00Z"));

  SUBCASE("a wall-clock time the DST change skips is the moment the clocks jump") {
    body["send_at"] = "2026-03-29T02:30:00";
    const auto gap = w.create_ok(body);
    w.run(100);
    const auto g = messages_of(w.reader, gap);
    for (auto s : warsaw) CHECK(g.at(s).next_attempt_at == ms("2026-03-29T03:00:00Z"));  // 01:00Z, past: now
    for (auto s : new_york) CHECK(g.at(s).next_attempt_at == ms("2026-03-29T06:30:00Z"));
  }
}

TEST_CASE("cancelling in the middle of a fan-out cancels its queued messages and stops it") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(250, {});
  const auto id = w.create_ok(basic_campaign());
  CHECK(w.run(100).enqueued == 100);

  auto c = w.cancel(id);
  REQUIRE(c.has_value());
  CHECK(c->row.state == campaign_state::cancelled);
  CHECK(c->messages_cancelled == 100u);
  CHECK(c->row.end_reason == "cancelled by shop");
  REQUIRE(c->messages.has_value());
  CHECK(c->messages->cancelled == 100);
  CHECK(c->messages->queued == 0);
  CHECK(w.sql("SELECT DISTINCT last_reason FROM outbox WHERE source = 'campaign:" + id + "'") ==
        "campaign cancelled");

  const auto t = w.run(100);
  CHECK(t.campaigns == 0);
  CHECK(w.count("SELECT count(*) FROM outbox") == 100);
  CHECK(w.get(id).row.enqueued == 100);

  // Again: the same answer, nothing more to cancel.
  c = w.cancel(id);
  REQUIRE(c.has_value());
  CHECK(c->messages_cancelled == 0u);
  CHECK(w.cancel("cmp_nope").error().code == "not_found");
  CHECK(w.service->get("cmp_nope").error().code == "not_found");
}

TEST_CASE("cancelling requests the recall of the messages push services accepted") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, {});
  const auto id = w.create_ok(basic_campaign());
  CHECK(w.run(100).enqueued == 3);
  // Two reached a push service (201 with a Location); one is still queued.
  auto outbox = storage::make_sqlite_outbox_store(w.reader);
  auto claimed = outbox->claim_due(w.clock.now(), 2);
  REQUIRE(claimed.has_value());
  std::vector<storage::attempt_result> accepted;
  for (const auto& m : *claimed) {
    storage::attempt_result r;
    r.message_id = m.id;
    r.location = "https://push.example/message/" + std::to_string(m.id);
    accepted.push_back(r);
  }
  REQUIRE(accepted.size() == 2);
  REQUIRE(outbox->record(accepted, w.clock.now()).has_value());

  auto c = w.cancel(id);
  REQUIRE(c.has_value());
  CHECK(c->messages_cancelled == 1u);
  CHECK(c->recalls_requested == 2u);
  CHECK(to_json(*c, true)["recalls_requested"] == 2);
  CHECK(w.sql("SELECT count(*) || ' ' || recall_reason FROM outbox WHERE recall_state = 'requested'") ==
        "2 campaign cancelled");
  // Again: nothing more to recall.
  c = w.cancel(id);
  REQUIRE(c.has_value());
  CHECK(c->recalls_requested == 0u);
}

TEST_CASE("a completed local-time campaign can still be cancelled: messages waiting for their moment are withdrawn") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, who({"promotions"}, "en", "America/New_York"));
  auto body = basic_campaign();
  body["send_at"] = "2026-03-21T09:00:00";
  body["local_time"] = true;
  const auto id = w.create_ok(body);
  w.clock.set(at("2026-03-21T00:00:00Z"));
  CHECK(w.run(100).completed == 1);
  const auto c = w.cancel(id);
  REQUIRE(c.has_value());
  CHECK(c->messages_cancelled == 3u);
  CHECK(c->row.state == campaign_state::cancelled);
}

TEST_CASE("a restart continues from the cursor without duplicates") {
  temp_dir dir;
  std::string id;
  {
    world w(dir.db_file());
    w.add(230, {});
    id = w.create_ok(basic_campaign());
    CHECK(w.run(100).enqueued == 100);
    w.writer->stop();
  }
  world again(dir.db_file());
  again.clock.advance(1min);
  CHECK(again.get(id).row.state == campaign_state::running);
  CHECK(again.get(id).row.enqueued == 100);
  while (again.run(70).more) {
  }
  const auto v = again.get(id);
  CHECK(v.row.state == campaign_state::completed);
  CHECK(v.row.enqueued == 230);
  CHECK(messages_of(again.reader, id).size() == 230);
  CHECK(again.count("SELECT count(*) FROM outbox") == 230);
}

TEST_CASE("a campaign is scheduled for send_at and becomes due then") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, {});
  auto body = basic_campaign();
  body["send_at"] = "2026-03-20T15:00:00+01:00";
  body["urgency"] = "high";
  body["ttl"] = "30m";
  const auto id = w.create_ok(body);
  auto due = w.runner->next_due(w.reader);
  REQUIRE(due.has_value());
  CHECK(*due == at("2026-03-20T14:00:00Z"));
  w.clock.set(at("2026-03-20T13:59:59Z"));
  CHECK(w.run(10).campaigns == 0);
  w.clock.set(at("2026-03-20T14:00:00Z"));
  CHECK(w.run(10).enqueued == 3);
  CHECK(w.sql("SELECT DISTINCT urgency || ' ' || ttl_seconds FROM outbox") == "high 1800");
  due = w.runner->next_due(w.reader);
  REQUIRE(due.has_value());
  CHECK_FALSE(due->has_value());
  CHECK(to_json(w.get(id), false)["send_at"] == "2026-03-20T14:00:00.000Z");
}

TEST_CASE("skipped subscribers are counted by reason") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(4, who({"promotions"}, "en"));
  // A locale this long (stored by an old client) makes the payload too big.
  w.add(2, who({"promotions"}, "en-" + std::string(3000, 'x')));
  auto body = basic_campaign();
  body["message"]["body"] = std::string(900, 'b') + " {{subscriber.locale}}";
  const auto id = w.create_ok(body);
  w.run(100);
  const auto v = w.get(id);
  CHECK(v.row.targeted == 6);
  CHECK(v.row.enqueued == 4);
  CHECK(v.row.skipped == 2);
  CHECK(json::parse(v.row.skipped_reasons) == json{{"message too large", 2}});
}

TEST_CASE("an invalid campaign is refused with the field at fault and stores nothing") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, {});
  const std::vector<bad_request> cases{
      {[](json& b) { b["message"]["locales"]["pl"]["title"] = "{{#shop.name}}oops"; }, "invalid_template",
       "message.locales.pl.title"},
      {[](json& b) { b["category"] = "nope"; }, "unknown_category", "category"},
      {[](json& b) { b.erase("category"); }, "missing_field", "category"},
      {[](json& b) { b["message"]["body"] = "Hi {{subscriber.customer_id}}"; }, "field_not_allowed", "message.body"},
      {[](json& b) { b["message"]["body"] = "{{product.name}}"; }, "invalid_template", "message.body"},
      {[](json& b) { b["message"]["actions"] = json::array({{{"action", "go"}, {"title", "{{/x}}"}}}); },
       "invalid_template", "message.actions[0].title"},
      {[](json& b) { b["message"]["icon"] = "not a link"; }, "invalid_template", "message.icon"},
      {[](json& b) { b["message"].erase("title"); }, "missing_field", "message.title"},
      {[](json& b) { b["message"]["locales"]["PL!"] = {{"title", "x"}}; }, "invalid_locale", "message.locales.PL!"},
      {[](json& b) { b["send_at"] = "2026-11-27T09:00:00"; }, "invalid_send_at", "send_at"},
      {[](json& b) {
         b["send_at"] = "2026-11-27T09:00:00+01:00";
         b["local_time"] = true;
       },
       "invalid_send_at", "send_at"},
      {[](json& b) { b["local_time"] = true; }, "missing_field", "send_at"},
      {[](json& b) { b["send_at"] = "2029-01-01T00:00:00Z"; }, "invalid_send_at", "send_at"},
      {[](json& b) { b["ttl"] = "29d"; }, "invalid_ttl", "ttl"},
      {[](json& b) { b["ttl"] = "soon"; }, "invalid_ttl", "ttl"},
      {[](json& b) { b["urgency"] = "urgent"; }, "invalid_urgency", "urgency"},
      {[](json& b) { b["priority"] = 101; }, "invalid_priority", "priority"},
      {[](json& b) { b["priority"] = "high"; }, "invalid_priority", "priority"},
      {[](json& b) { b["on_cap"] = "wait"; }, "invalid_on_cap", "on_cap"},
      {[](json& b) { b["defer_max"] = "29d"; }, "invalid_defer_max", "defer_max"},
      {[](json& b) { b["audience"] = {{"customer", "vip"}}; }, "invalid_audience", "audience.customer"},
      {[](json& b) { b["audience"] = {{"locales", {"pl", 3}}}; }, "invalid_locale", "audience.locales[1]"},
      {[](json& b) { b["colour"] = "red"; }, "field_not_allowed", "colour"},
      {[](json& b) { b["id"] = "campaign-1"; }, "invalid_campaign_id", "id"},
      {[](json& b) { b["utm"] = {{"campaign", "{{scenario.name}}"}}; }, "invalid_template", "utm.campaign"},
      {[](json& b) { b["message"]["locales"]["pl"]["title"] = "{{#shop.x}}{{/shop.x}}"; }, "invalid_template",
       "message.locales.pl.title"},
      {[](json& b) { b["message"]["locales"]["de"] = {{"body", std::string(3990, 'x')}}; }, "invalid_message",
       "message.locales.de"},
  };
  expect_refused(w, basic_campaign(), cases);
  CHECK(w.count("SELECT count(*) FROM campaigns") == 0);
  CHECK(w.writer->counters().items == 1);  // the subscribers only

  // A shop whose configured utm source is a template of scenario fields.
  auto options = shop_options();
  options.utm.source = "{{scenario.name}}";
  const auto r = parse_campaign(basic_campaign(), options, "cmp_x", w.clock.now());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().code == "invalid_template");
  CHECK(r.error().field == "utm.source");
  CHECK(w.run(100).campaigns == 0);
  CHECK(w.count("SELECT count(*) FROM outbox") == 0);
}

TEST_CASE("a client id makes a retried POST idempotent; a different campaign with it conflicts") {
  temp_dir dir;
  world w(dir.db_file());
  auto body = basic_campaign();
  body["id"] = "cmp_spring-2026";
  auto first = w.create(body);
  REQUIRE(first.has_value());
  CHECK(first->created);
  CHECK(first->id == "cmp_spring-2026");
  auto again = w.create(body);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->created);
  body["name"] = "Another";
  auto other = w.create(body);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().code == "campaign_conflict");
  CHECK(w.count("SELECT count(*) FROM campaigns") == 1);
}

TEST_CASE("a campaign's pacing: priority, and how long a held message may wait, on every outbox row") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(3, {});
  auto body = basic_campaign();
  body["priority"] = 25;
  body["defer_max"] = "6h";
  const auto patient = w.create_ok(body);
  body = basic_campaign();
  body["on_cap"] = "drop";
  const auto impatient = w.create_ok(body);
  w.run(100);
  const auto sent_at = std::to_string(unix_millis(w.clock.now()));
  CHECK(w.count("SELECT count(*) FROM outbox WHERE source = 'campaign:" + patient +
                "' AND priority = 25 AND defer_limit = " + sent_at + " + 6 * 3600000") == 3);
  CHECK(w.count("SELECT count(*) FROM outbox WHERE source = 'campaign:" + impatient +
                "' AND priority = 10 AND defer_limit IS NULL") == 3);
  // Stored with the campaign: a restart fans out with the same pacing.
  const auto view = to_json(w.get(impatient), true);
  CHECK(view["on_cap"] == "drop");
  CHECK(view["priority"] == 10);
}

TEST_CASE("campaigns are listed newest first") {
  temp_dir dir;
  world w(dir.db_file());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto body = basic_campaign();
    body["name"] = "c" + std::to_string(i);
    ids.push_back(w.create_ok(body));
    w.clock.advance(1s);
  }
  auto list = w.service->list(2);
  REQUIRE(list.has_value());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].row.id == ids[2]);
  CHECK((*list)[1].row.id == ids[1]);
  const auto j = to_json((*list)[0], false);
  CHECK(j["name"] == "c2");
  CHECK_FALSE(j.contains("messages"));
  CHECK_FALSE(j.contains("message"));
}

}  // namespace
}  // namespace webpushd::automation

namespace webpushd::automation {
namespace {

// ------------------------------------------------------------------ A/B variants

json variant_campaign() {
  auto body = basic_campaign();
  body["id"] = "cmp_ab-test";
  const json a = body["message"];
  json b = a;
  b["title"] = "Only today at {{shop.name}}: -20%";
  b["locales"]["pl"]["title"] = "Tylko dziś w {{shop.name}}: -20%";
  body.erase("message");
  body["variants"] = json::array({{{"name", "control"}, {"weight", 1}, {"message", a}},
                                  {{"name", "urgent"}, {"weight", 3}, {"message", b}}});
  return body;
}

TEST_CASE("A/B campaign: each subscription gets the variant the rule gives it, rendered in its language, with the "
          "variant on its row and in utm_content; a restart continues the same split") {
  temp_dir dir;
  std::string id;
  {
    world w(dir.db_file());
    w.add(200, {});
    w.add(100, who({"promotions"}, "pl"));
    id = w.create_ok(variant_campaign());
    CHECK(w.run(120).enqueued == 120);
    w.writer->stop();
  }  // the "process" stops in the middle of the fan-out
  world again(dir.db_file());
  again.clock.advance(1min);
  while (again.run(70).more) {
  }
  CHECK(again.get(id).row.enqueued == 300);

  std::vector<variant_def> variants{{"control", 1, {}}, {"urgent", 3, {}}};
  std::map<std::string, int> split;
  const auto rows = messages_of(again.reader, id);
  REQUIRE(rows.size() == 300);
  for (const auto& [sub, m] : rows) {
    const auto public_id = again.sql("SELECT public_id FROM subscriptions WHERE id = " + std::to_string(sub));
    const auto expected = assign_variant(variants, "campaign:" + id, public_id, "").name;
    CAPTURE(public_id);
    CHECK(again.sql("SELECT variant FROM outbox WHERE subscription_id = " + std::to_string(sub)) == expected);
    const auto payload = json::parse(m.payload);
    const bool polish = again.sql("SELECT locale FROM subscriptions WHERE id = " + std::to_string(sub)) == "pl";
    const std::string title = expected == "control" ? (polish ? "Wiosenna wyprzedaż w Shop" : "Spring sale at Shop")
                                                    : (polish ? "Tylko dziś w Shop: -20%" : "Only today at Shop: -20%");
    CHECK(payload["title"] == title);
    CHECK(payload["url"] == "https://shop.test/sale?utm_source=webpush&utm_medium=push&utm_campaign=Spring%20sale"
                            "&utm_content=" + expected);
    ++split[expected];
  }
  // 1 : 3 over 300 subscriptions (chi-square, 1 degree of freedom, below the 0.1 % critical value).
  const double chi = (split["control"] - 75.0) * (split["control"] - 75.0) / 75.0 +
                     (split["urgent"] - 225.0) * (split["urgent"] - 225.0) / 225.0;
  INFO("control=" << split["control"] << " urgent=" << split["urgent"] << " chi²=" << chi);
  CHECK(chi < 10.83);

  // Stored with the campaign and shown by GET, in the order given.
  const auto view = to_json(again.get(id), true);
  CHECK_FALSE(view.contains("message"));
  REQUIRE(view["variants"].size() == 2);
  CHECK(view["variants"][0]["name"] == "control");
  CHECK(view["variants"][1]["weight"] == 3);
  CHECK(view["variants"][1]["message"]["locales"]["pl"]["title"] == "Tylko dziś w {{shop.name}}: -20%");
  CHECK(view["utm"]["content"] == "{{variant}}");
}

TEST_CASE("A/B campaign: a retried POST with the same variants is the same campaign; the sends count per variant") {
  temp_dir dir;
  world w(dir.db_file());
  w.add(20, {});
  const auto body = variant_campaign();
  const auto first = w.create(body);
  REQUIRE(first.has_value());
  const auto again = w.create(body);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->created);
  auto other = body;
  other["variants"][1]["weight"] = 1;
  auto conflict = w.create(other);
  REQUIRE_FALSE(conflict.has_value());
  CHECK(conflict.error().code == "campaign_conflict");

  while (w.run(100).more) {
  }
  testing::accept_due(*storage::make_sqlite_outbox_store(w.reader), w.clock.now());
  CHECK(w.sql("SELECT group_concat(variant || '=' || n, ' ') FROM (SELECT variant, sum(n) AS n FROM pacing_counters "
              "WHERE source = 'campaign:cmp_ab-test' AND metric = 'sent' GROUP BY variant ORDER BY variant)") ==
        "control=" + w.sql("SELECT count(*) FROM outbox WHERE variant = 'control'") +
            " urgent=" + w.sql("SELECT count(*) FROM outbox WHERE variant = 'urgent'"));
}

TEST_CASE("A/B campaign: invalid variants are refused with the field at fault") {
  temp_dir dir;
  world w(dir.db_file());
  const std::vector<bad_request> cases{
      {[](json& b) { b["message"] = b["variants"][0]["message"]; }, "invalid_variants", "variants"},
      {[](json& b) { b.erase("variants"); }, "missing_field", "message"},
      {[](json& b) { b["variants"].erase(1); }, "invalid_variants", "variants"},
      {[](json& b) {
         for (int i = 0; i < 9; ++i) b["variants"].push_back({{"name", "v" + std::to_string(i)}, {"weight", 1}, {"message", {{"title", "x"}}}});
       },
       "invalid_variants", "variants"},
      {[](json& b) { b["variants"] = "a, b"; }, "invalid_type", "variants"},
      {[](json& b) { b["variants"][1]["name"] = "control"; }, "invalid_variants", "variants[1].name"},
      {[](json& b) { b["variants"][1]["name"] = "Urgent!"; }, "invalid_variants", "variants[1].name"},
      {[](json& b) { b["variants"][0].erase("name"); }, "missing_field", "variants[0].name"},
      {[](json& b) { b["variants"][0]["weight"] = 0; }, "invalid_variants", "variants[0].weight"},
      {[](json& b) { b["variants"][0]["weight"] = -1; }, "invalid_variants", "variants[0].weight"},
      {[](json& b) { b["variants"][0]["weight"] = 2000000; }, "invalid_variants", "variants[0].weight"},
      {[](json& b) { b["variants"][0]["weight"] = "half"; }, "invalid_variants", "variants[0].weight"},
      {[](json& b) { b["variants"][0].erase("weight"); }, "missing_field", "variants[0].weight"},
      {[](json& b) { b["variants"][0].erase("message"); }, "missing_field", "variants[0].message"},
      {[](json& b) { b["variants"][0]["colour"] = "red"; }, "field_not_allowed", "variants[0].colour"},
      {[](json& b) { b["variants"][1]["message"].erase("title"); }, "missing_field", "variants[1].message.title"},
      {[](json& b) { b["variants"][1]["message"]["locales"]["pl"]["title"] = "{{#x}}"; }, "invalid_template",
       "variants[1].message.locales.pl.title"},
      {[](json& b) { b["variants"][1]["message"]["body"] = "{{product.name}}"; }, "invalid_template",
       "variants[1].message.body"},
      {[](json& b) { b["variants"][1]["message"]["locales"]["de"] = {{"body", std::string(3990, 'x')}}; },
       "invalid_message", "variants[1].message.locales.de"},
  };
  expect_refused(w, variant_campaign(), cases);
  CHECK(w.count("SELECT count(*) FROM campaigns") == 0);
  // {{variant}} is a campaign field.
  auto body = variant_campaign();
  body["variants"][0]["message"]["body"] = "You are in group {{variant}}";
  CHECK(w.create(body).has_value());
}

// A measurement, not a check: skipped unless asked for with
//   WEBPUSHD_CAMPAIGN_BENCH=100000 test_automation -tc='campaign fan-out speed' --no-skip
// (best in a Release build). Seeds the subscribers with SQL, then runs the
// fan-out in chunks as the scheduler does and prints messages per second.
TEST_CASE("a campaign's stats: queued, sent, shown, clicked, bought, per day, over its life by default") {
  temp_dir dir;
  world w(dir.db_file());
  const auto ann = w.add(1, who({"promotions"}, "", "", "ann")).front();
  w.add(1, who({"promotions"}, "", "", "bob"));
  w.add(1, who({"promotions"}, "", "", "cy"));
  const auto id = w.create_ok(basic_campaign());
  CHECK(w.run(100).enqueued == 3);
  auto outbox_db = open_ok(dir.db_file());
  auto outbox = storage::make_sqlite_outbox_store(outbox_db);
  CHECK(testing::accept_due(*outbox, w.clock.now()) == 3);

  // The service workers' reports and the shop's purchases, as the daemon takes them.
  tracking::beacon_recorder beacons(w.signer, *w.writer, w.clock);
  const auto messages = messages_of(w.reader, id);
  const auto report = [&](std::int64_t who, const std::string& type, const std::string& action = "") {
    const auto delivery = messages.at(who).delivery_id;
    std::promise<result<bool>> p;
    auto f = p.get_future();
    beacons.record({delivery, type, action, w.signer.sign(delivery)}, [&p](result<bool> r) { p.set_value(r); });
    REQUIRE(f.get().value());
  };
  ingest::event_ingestor events(*w.writer, w.clock);
  events.set_stored_hook([](storage::database& db, const std::vector<storage::stored_event>& stored,
                            time_point now) -> result<void> {
    auto attributed = tracking::attribute_purchases(db, stored, {}, now);
    if (!attributed) return tl::unexpected(attributed.error());
    return {};
  });
  const auto purchase = [&](const std::string& customer, double total, const std::string& currency) {
    std::promise<result<ingest::ingest_outcome>> p;
    auto f = p.get_future();
    events.ingest({{"id", "order-" + customer},
                   {"type", "purchase"},
                   {"customer_id", customer},
                   {"occurred_at", format_rfc3339(w.clock.now())},
                   {"properties",
                    {{"order_id", customer},
                     {"items", {{{"product_id", "mug"}, {"quantity", 1}}}},
                     {"total", total},
                     {"currency", currency}}}},
                  [&p](result<ingest::ingest_outcome> r) { p.set_value(std::move(r)); });
    REQUIRE(f.get().value().accepted == 1);
  };
  w.clock.set(at("2026-03-20T12:10:00Z"));
  for (const auto& m : messages) report(m.first, "shown");
  report(ann, "clicked", "shop_now");
  w.clock.set(at("2026-03-20T13:00:00Z"));
  purchase("ann", 100.0, "PLN");
  purchase("bob", 20.0, "EUR");
  w.clock.set(at("2026-03-20T13:30:00Z"));

  auto stats = w.service->stats(id, {});
  REQUIRE_MESSAGE(stats.has_value(), (stats ? "" : stats.error().message));
  CHECK(to_json(*stats) == json::parse(R"({
      "campaign": ")" + id + R"(", "name": "Spring sale", "status": "completed",
      "created_at": "2026-03-20T12:00:00.000Z",
      "range": {"from": "2026-03-20T12:00:00.000Z", "to": "2026-03-20T14:00:00.000Z"},
      "generated_at": "2026-03-20T13:30:00.000Z",
      "totals": {"sent": 3,
                 "deferred": {"total": 0, "quiet_hours": 0, "min_gap": 0, "global_cap": 0, "scenario_cap": 0,
                              "category_cap": 0},
                 "suppressed": {"total": 0, "quiet_hours": 0, "min_gap": 0, "global_cap": 0, "scenario_cap": 0,
                                "category_cap": 0},
                 "unsubscribes": {"total": 0, "gone": 0, "unsubscribe": 0, "withdraw": 0}, "unsubscribe_rate": 0.0,
                 "funnel": {"entered": 3, "sent": 3, "shown": 3, "clicked": 1, "converted": 1},
                 "influenced": 1, "closed": 0, "clicks_by_action": {"shop_now": 1},
                 "rates": {"show_rate": 1.0, "click_rate": 0.3333333333333333, "conversion_rate": 1.0},
                 "revenue": {"converted": {"PLN": 100.0}, "influenced": {"EUR": 20.0}}},
      "per_day": [{"date": "2026-03-20", "sent": 3, "deferred": 0, "suppressed": 0, "unsubscribes": 0,
                   "unsubscribe_rate": 0.0, "shown": 3, "clicked": 1, "converted": 1, "influenced": 1,
                   "revenue": {"PLN": 100.0}}],
      "variants": []})"));

  // A range of its own: the hour of the purchases only.
  stats = w.service->stats(id, {"2026-03-20T13:00:00Z", std::nullopt});
  REQUIRE(stats.has_value());
  const auto later = to_json(*stats);
  CHECK(later["totals"]["funnel"] == json{{"entered", 0}, {"sent", 0}, {"shown", 0}, {"clicked", 0}, {"converted", 1}});
  CHECK(later["totals"]["rates"]["click_rate"].is_null());

  auto unknown = w.service->stats("cmp_nope", {});
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().code == "unknown_campaign");
  CHECK(unknown.error().field == "id");
  auto bad = w.service->stats(id, {"yesterday", std::nullopt});
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().code == "invalid_from");
}

TEST_CASE("campaign fan-out speed" * doctest::skip()) {
  const char* env = std::getenv("WEBPUSHD_CAMPAIGN_BENCH");
  const std::int64_t n = env != nullptr ? std::stoll(env) : 100'000;
  const std::size_t chunk = std::getenv("WEBPUSHD_CAMPAIGN_CHUNK") != nullptr
                                ? std::stoul(std::getenv("WEBPUSHD_CAMPAIGN_CHUNK"))
                                : 5000;
  temp_dir dir;
  {
    auto seed = open_ok(dir.db_file());
    REQUIRE(seed.exec("BEGIN"));
    REQUIRE(seed.exec(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " + std::to_string(n) +
        ") INSERT INTO subscriptions (endpoint, p256dh, auth, state, created_at, updated_at, public_id, locale, "
        "timezone, customer_id) SELECT 'https://push.example/bench/' || i, '" +
        std::string(p256dh) + "', '" + std::string(auth) +
        "', 'active', 0, 0, 'sub_bench' || i, CASE i % 3 WHEN 0 THEN 'pl-PL' WHEN 1 THEN 'en' ELSE 'de' END, "
        "CASE i % 4 WHEN 0 THEN 'Europe/Warsaw' WHEN 1 THEN 'America/New_York' WHEN 2 THEN 'Asia/Tokyo' ELSE NULL "
        "END, CASE i % 5 WHEN 0 THEN 'c' || i ELSE NULL END FROM n"));
    REQUIRE(seed.exec("INSERT INTO subscription_categories SELECT id, 'promotions', 0 FROM subscriptions"));
    REQUIRE(seed.exec("COMMIT"));
  }
  for (const bool local : {false, true}) {
    world w(dir.db_file());
    auto body = basic_campaign();
    if (local) {
      body["send_at"] = "2026-03-21T09:00:00";
      body["local_time"] = true;
      w.clock.set(at("2026-03-21T00:00:00Z"));
    }
    const auto id = w.create_ok(body);
    const auto start = std::chrono::steady_clock::now();
    std::size_t calls = 0;
    while (true) {
      ++calls;
      if (!w.run(chunk).more) break;
    }
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto get_start = std::chrono::steady_clock::now();
    const auto v = w.get(id);
    const auto get_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - get_start).count();
    CHECK(v.row.state == campaign_state::completed);
    CHECK(v.row.enqueued == n);
    MESSAGE(std::string(local ? "local time: " : "at once: ") << n << " messages in " << secs << " s, " << calls << " chunks of "
                                                   << chunk << ": " << static_cast<std::int64_t>(n / secs)
                                                   << " messages/s; GET with counts by state: " << get_ms
                                                   << " ms");
  }
}

}  // namespace
}  // namespace webpushd::automation
