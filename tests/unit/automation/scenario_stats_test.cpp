// Scenario stats on a real SQLite file, read through the service's own
// connection, with every figure produced by the code that produces it in the
// daemon: pushes enqueued, claimed through the real send-time gate (which
// defers and suppresses them under a cap) and recorded as sent; unsubscribes
// attributed by the gate and the pacing module; journey_log lines and an
// adaptive level change written by their stores. The answer is checked as
// JSON, exactly.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../storage/test_support.hpp"
#include "test_support.hpp"
#include "webpushd/automation/scenario_stats.hpp"
#include "webpushd/pacing/gate.hpp"
#include "webpushd/storage/automation_data.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/pacing_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/tracking/attribution.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::automation {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::at;
using storage::testing::open_ok;
using storage::testing::temp_dir;

scenario_def cart_scenario() {
  scenario_def sc;
  sc.name = "cart";
  sc.description = "Cart reminders";
  sc.category = "cart_reminders";
  sc.priority = 70;
  sc.trigger.event = "cart_updated";
  step_def first;
  first.name = "first";
  first.after = 1h;
  // An A/B test: a (the baseline) three times as often as b.
  first.variants = {variant_def{"a", 3, {}}, variant_def{"b", 1, {}}};
  step_def second;
  second.name = "second";
  second.after = 24h;
  sc.steps = {first, second};
  return sc;
}

std::shared_ptr<const scenario_set> set_of(std::vector<scenario_def> scenarios) {
  auto set = std::make_shared<scenario_set>();
  set->scenarios = std::move(scenarios);
  return set;
}

// One push a day to anyone; the cart scenario at most 3 a week, adaptive.
std::shared_ptr<const pacing::policy> shop_policy() {
  auto p = std::make_shared<pacing::policy>();
  p->caps = {{1, 24h}};
  pacing::scenario_pacing cart;
  cart.caps = {{3, 7 * 24h}};
  cart.adaptive = pacing::adaptive_policy{};
  p->scenarios["cart"] = cart;
  return p;
}

// A daemon's worth of the pieces stats read, on one file: the writer's
// connection with the outbox behind the send-time gate, and the service on
// a connection of its own.
struct shop {
  temp_dir dir;
  storage::database db = open_ok(dir.db_file());
  std::shared_ptr<const pacing::policy> policy = shop_policy();
  std::shared_ptr<const scenario_set> scenarios = set_of({cart_scenario()});
  pacing::send_gate gate{db, policy};
  std::unique_ptr<storage::outbox_store> outbox = storage::make_sqlite_outbox_store(db);
  std::unique_ptr<storage::subscriber_store> subscribers = storage::make_sqlite_subscriber_store(db);
  std::unique_ptr<storage::pacing_store> pacing = storage::make_sqlite_pacing_store(db);
  std::unique_ptr<storage::journey_store> journeys = storage::make_sqlite_journey_store(db);
  manual_clock clock{at("2026-03-20T12:30:00Z")};
  scenario_stats_service service{open_ok(dir.db_file()), [this] { return scenarios; }, [this] { return policy; },
                                 clock};

  shop() { outbox->set_gate(&gate); }

  std::int64_t subscriber(const std::string& public_id) {
    storage::subscriber_fields f;
    f.endpoint = "https://push.example/" + public_id;
    f.p256dh = "k";
    f.auth = "a";
    f.categories = {"cart_reminders"};
    f.new_public_id = public_id;
    auto up = subscribers->upsert(f, at("2026-03-01T00:00:00Z"));
    REQUIRE(up.has_value());
    return up->subscriber.id;
  }

  // A message of `step` (A/B `variant`) to `subscription`, with the
  // delivery id "d_<subscription>_<step>" its reports name.
  void enqueue(std::int64_t subscription, const std::string& step, time_point now,
               std::optional<time_point> defer_limit = std::nullopt, const std::string& variant = "") {
    storage::new_outbox_message m;
    m.subscription_id = subscription;
    m.payload = bytes{'{', '}'};
    m.source = "scenario:cart/" + step;
    m.defer_limit = defer_limit;
    m.variant = variant;
    m.delivery_id = delivery_id(subscription, step);
    REQUIRE(outbox->enqueue({m}, now).has_value());
  }

  static std::string delivery_id(std::int64_t subscription, const std::string& step) {
    return "d_" + std::to_string(subscription) + "_" + step;
  }

  // What the beacon recorder does with a signed report, on this connection.
  void report(std::int64_t subscription, const std::string& step, const std::string& type, time_point when,
              const std::string& action = "") {
    const storage::delivery_event e{delivery_id(subscription, step), type, action, when};
    REQUIRE(storage::make_sqlite_delivery_event_store(db)->record(e).value());
    REQUIRE(tracking::count_report(db, e).value());
  }

  // What the event ingestor and its hook do with a purchase.
  void purchase(const std::string& id, const std::string& subscription, time_point when, double total,
                const std::string& currency) {
    const storage::stored_event e{id, "purchase", "", subscription, when, when,
                                  json{{"order_id", id},
                                       {"items", {{{"product_id", "mug"}, {"quantity", 1}}}},
                                       {"total", total},
                                       {"currency", currency}}
                                      .dump()};
    REQUIRE(storage::make_sqlite_event_store(db)->insert_if_new(e).value());
    REQUIRE(tracking::attribute_purchases(db, {e}, {}, when).has_value());
  }

  void journey(std::int64_t id, const std::string& step, const std::string& outcome, time_point when) {
    storage::journey_log_entry e;
    e.journey_id = id;
    e.scenario = "cart";
    e.step = step;
    e.person = "c:anna";
    e.outcome = outcome;
    e.at = when;
    REQUIRE(journeys->log(e).has_value());
  }
};

// Two days of a small shop, seen on 2026-03-20 at 12:30 UTC.
void two_days_of_pushes(shop& s) {
  const auto a = s.subscriber("sub_a");
  const auto b = s.subscriber("sub_b");
  const auto c = s.subscriber("sub_c");

  // Before the default range (7 days back from 13:00): only the 30-day window sees it.
  REQUIRE(s.pacing->count("scenario:cart", "first", "", at("2026-03-10T10:00:00Z"), "sent", 4).has_value());
  s.journey(9, "", "entered", at("2026-03-10T09:00:00Z"));
  // A step since renamed.
  REQUIRE(s.pacing->count("scenario:cart", "old_first", "", at("2026-03-14T10:00:00Z"), "sent", 2).has_value());

  // The first reminder reaches all three, in two variants.
  s.enqueue(a, "first", at("2026-03-18T10:00:00Z"), std::nullopt, "a");
  s.enqueue(b, "first", at("2026-03-18T10:00:00Z"), std::nullopt, "b");
  s.enqueue(c, "first", at("2026-03-18T10:00:00Z"), std::nullopt, "a");
  CHECK(testing::accept_due(*s.outbox, at("2026-03-18T10:00:00Z")) == 3);
  for (const std::int64_t j : {1, 2, 3}) s.journey(j, "", "entered", at("2026-03-18T09:00:00Z"));
  for (const std::int64_t j : {1, 2, 3}) s.journey(j, "first", "sent", at("2026-03-18T10:00:00Z"));
  // All three see it; b opens the cart with the action button and buys,
  // c dismisses it, a buys after seeing it without a click.
  for (const auto who : {a, b, c}) s.report(who, "first", "shown", at("2026-03-18T10:05:00Z"));
  s.report(b, "first", "clicked", at("2026-03-18T10:10:00Z"), "open_cart");
  s.report(c, "first", "closed", at("2026-03-18T10:10:00Z"));
  s.purchase("order-a", "sub_a", at("2026-03-18T10:30:00Z"), 59.0, "EUR");
  s.purchase("order-b", "sub_b", at("2026-03-18T12:00:00Z"), 129.0, "PLN");
  // a's push service answers 404 to something else an hour later.
  REQUIRE(s.gate.subscription_gone(a, at("2026-03-18T11:00:00Z")).has_value());

  // The second reminder, 23 h after the first: the daily cap holds it. b's
  // may wait (deferred to 10:00), c's may not (suppressed).
  s.enqueue(b, "second", at("2026-03-19T09:00:00Z"), at("2026-03-19T21:00:00Z"));
  s.enqueue(c, "second", at("2026-03-19T09:00:00Z"));
  CHECK(testing::accept_due(*s.outbox, at("2026-03-19T09:00:00Z")) == 0);  // held by the gate
  s.journey(2, "second", "skipped", at("2026-03-19T09:00:00Z"));
  // c withdraws the category: the first reminder, 23.5 h ago, is blamed;
  // then c is erased, as the consent service erases a subscriber.
  REQUIRE(pacing::attribute_unsubscribe(s.db, *s.policy, c, "withdraw", {"cart_reminders"},
                                        at("2026-03-19T09:30:00Z"))
              .has_value());
  REQUIRE(s.subscribers->erase(c, at("2026-03-19T09:45:00Z")).has_value());
  REQUIRE(storage::erase_person_data(s.db, {storage::subscriber_person("sub_c")}, {c}).has_value());
  CHECK(testing::accept_due(*s.outbox, at("2026-03-19T10:00:00Z")) == 1);  // b's, deferred until now
  s.journey(3, "", "completed", at("2026-03-19T10:00:00Z"));
  // Adaptive caps react to the week.
  storage::level_change tightened;
  tightened.scenario = "cart";
  tightened.at = at("2026-03-19T12:00:00Z");
  tightened.from_level = 0;
  tightened.to_level = 1;
  tightened.sends = 4;
  tightened.unsubscribes = 2;
  tightened.reason = "unsubscribe rate 50.00% (2 of 4 sends) above 1.00%: tightened to 2 per 7d";
  REQUIRE(s.pacing->change_level(tightened).has_value());
  // b unsubscribes in the SDK: the second reminder is blamed.
  REQUIRE(s.subscribers->mark_unsubscribed(b, at("2026-03-19T14:00:00Z")).has_value());
  REQUIRE(pacing::attribute_unsubscribe(s.db, *s.policy, b, "unsubscribe", {}, at("2026-03-19T14:00:00Z")).has_value());
  s.journey(2, "", "exited", at("2026-03-19T14:00:00Z"));
}

json stats_json(shop& s, std::string_view name, stats_query query = {}) {
  auto stats = s.service.stats(name, query);
  REQUIRE_MESSAGE(stats.has_value(), (stats ? "" : stats.error().code + ": " + stats.error().message));
  return to_json(*stats);
}

// Journey outcomes and pacing reasons the daemon knows, all 0.
json no_journeys() {
  return {{"entered", 0}, {"sent", 0},   {"deferred", 0},  {"suppressed", 0}, {"skipped", 0},
          {"restarted", 0}, {"exited", 0}, {"completed", 0}, {"cancelled", 0}};
}
json held(int global_cap = 0) {
  return {{"total", global_cap}, {"quiet_hours", 0}, {"min_gap", 0}, {"global_cap", global_cap}, {"scenario_cap", 0},
          {"category_cap", 0}};
}
json unsubscribes(int gone, int unsubscribe, int withdraw) {
  return {{"total", gone + unsubscribe + withdraw},
          {"gone", gone},
          {"unsubscribe", unsubscribe},
          {"withdraw", withdraw}};
}

}  // namespace

TEST_CASE("stats of a scenario over the default range: per step, in total, per day, rolling windows, pacing") {
  shop s;
  two_days_of_pushes(s);
  const json got = stats_json(s, "cart");

  json journeys_first = no_journeys();
  journeys_first["sent"] = 3;
  json journeys_second = no_journeys();
  journeys_second["skipped"] = 1;
  json journeys_all = no_journeys();
  journeys_all["entered"] = 3;
  journeys_all["sent"] = 3;
  journeys_all["skipped"] = 1;
  journeys_all["completed"] = 1;
  journeys_all["exited"] = 1;

  // What came after delivery: shown, clicked, closed, bought.
  const auto tracked = [](json f, std::int64_t entered, int shown, int clicked, int converted, int influenced,
                          int closed, json clicks, json rates, json revenue) {
    f["funnel"] = {{"entered", entered}, {"sent", f["sent"]}, {"shown", shown}, {"clicked", clicked},
                   {"converted", converted}};
    f["influenced"] = influenced;
    f["closed"] = closed;
    f["clicks_by_action"] = std::move(clicks);
    f["rates"] = std::move(rates);
    f["revenue"] = std::move(revenue);
    return f;
  };
  const auto rates = [](json show, json click, json conversion) {
    return json{{"show_rate", std::move(show)}, {"click_rate", std::move(click)},
                {"conversion_rate", std::move(conversion)}};
  };
  const json no_revenue = {{"converted", json::object()}, {"influenced", json::object()}};
  const json revenue = {{"converted", {{"PLN", 129.0}}}, {"influenced", {{"EUR", 59.0}}}};

  json first = tracked({{"name", "first"}, {"configured", true}, {"sent", 3}, {"deferred", held()},
                        {"suppressed", held()}, {"unsubscribes", unsubscribes(1, 0, 1)},
                        {"unsubscribe_rate", 2.0 / 3.0}, {"journeys", journeys_first}},
                       3, 3, 1, 1, 1, 1, {{"open_cart", 1}}, rates(1.0, 1.0 / 3.0, 1.0), revenue);
  // The variants as the scenario configures them, with their weights: a
  // is the baseline, b is judged against it, on far too few sends.
  REQUIRE(got["steps"][0]["variants"].size() == 2);
  const json significance = got["steps"][0]["variants"][1]["significance"];
  CHECK(significance["z"].get<double>() == doctest::Approx(1.7320508075688772));  // √3: 1/1 against 0/2
  CHECK(significance["p_value"].get<double>() == doctest::Approx(0.0832645166635504));
  first["variants"] = json::parse(R"json([
      {"name": "a", "weight": 3.0, "configured": true, "sent": 2, "shown": 2, "clicked": 0, "converted": 0,
       "influenced": 1, "revenue": {"converted": {}, "influenced": {"EUR": 59.0}}, "unsubscribes": 2,
       "click_rate": 0.0, "conversion_rate": null, "unsubscribe_rate": 1.0, "significance": null},
      {"name": "b", "weight": 1.0, "configured": true, "sent": 1, "shown": 1, "clicked": 1, "converted": 1,
       "influenced": 0, "revenue": {"converted": {"PLN": 129.0}, "influenced": {}}, "unsubscribes": 0,
       "click_rate": 1.0, "conversion_rate": 1.0, "unsubscribe_rate": 0.0,
       "significance": {"baseline": "a", "metric": "click_rate", "lift": null, "significant": false,
                        "note": "too few sends to judge: each variant needs at least 100 (a: 2, b: 1)"}}])json");
  first["variants"][1]["significance"]["z"] = significance["z"];
  first["variants"][1]["significance"]["p_value"] = significance["p_value"];
  json second = tracked({{"name", "second"}, {"configured", true}, {"sent", 1}, {"deferred", held(1)},
                         {"suppressed", held(1)}, {"unsubscribes", unsubscribes(0, 1, 0)}, {"unsubscribe_rate", 1.0},
                         {"journeys", journeys_second}},
                        1, 0, 0, 0, 0, 0, json::object(), rates(0.0, 0.0, nullptr), no_revenue);
  second["variants"] = json::array();
  json old_first = tracked({{"name", "old_first"}, {"configured", false}, {"sent", 2}, {"deferred", held()},
                            {"suppressed", held()}, {"unsubscribes", unsubscribes(0, 0, 0)},
                            {"unsubscribe_rate", 0.0}, {"journeys", no_journeys()}},
                           0, 0, 0, 0, 0, 0, json::object(), rates(0.0, 0.0, nullptr), no_revenue);
  old_first["variants"] = json::array();
  CHECK(got["steps"][0] == first);
  CHECK(got["steps"][1] == second);
  CHECK(got["steps"][2] == old_first);
  CHECK(got["steps"].size() == 3);
  CHECK(got["totals"] == tracked({{"sent", 6}, {"deferred", held(1)}, {"suppressed", held(1)},
                                  {"unsubscribes", unsubscribes(1, 1, 1)}, {"unsubscribe_rate", 0.5},
                                  {"journeys", journeys_all}},
                                 3, 3, 1, 1, 1, 1, {{"open_cart", 1}}, rates(0.5, 1.0 / 6.0, 1.0), revenue));

  const auto day = [](const char* date, int sent, int deferred, int suppressed, int unsubscribed, json rate,
                      int shown = 0, int clicked = 0, int converted = 0, int influenced = 0,
                      json day_revenue = json::object()) {
    return json{{"date", date},
                {"sent", sent},
                {"deferred", deferred},
                {"suppressed", suppressed},
                {"unsubscribes", unsubscribed},
                {"unsubscribe_rate", std::move(rate)},
                {"shown", shown},
                {"clicked", clicked},
                {"converted", converted},
                {"influenced", influenced},
                {"revenue", std::move(day_revenue)}};
  };
  CHECK(got["per_day"] ==
        json::array({day("2026-03-13", 0, 0, 0, 0, nullptr), day("2026-03-14", 2, 0, 0, 0, 0.0),
                     day("2026-03-15", 0, 0, 0, 0, nullptr), day("2026-03-16", 0, 0, 0, 0, nullptr),
                     day("2026-03-17", 0, 0, 0, 0, nullptr),
                     day("2026-03-18", 3, 0, 0, 1, 1.0 / 3.0, 3, 1, 1, 1, {{"PLN", 129.0}}),
                     day("2026-03-19", 1, 1, 1, 2, 2.0), day("2026-03-20", 0, 0, 0, 0, nullptr)}));

  // Windows end with the hour now is in (13:00): b's unsubscribe at 14:00
  // yesterday is inside the last 24 h, its push at 10:00 is not.
  CHECK(got["windows"] == json{{"24h", {{"sent", 0}, {"unsubscribes", 1}, {"unsubscribe_rate", nullptr}}},
                               {"7d", {{"sent", 6}, {"unsubscribes", 3}, {"unsubscribe_rate", 0.5}}},
                               {"30d", {{"sent", 10}, {"unsubscribes", 3}, {"unsubscribe_rate", 0.3}}}});

  CHECK(got["pacing"] == json::parse(R"({
      "caps": [{"count": 3, "per": "7d"}], "quiet_hours": true, "defer": true, "defer_max": "12h",
      "adaptive": {"tighten_above": 0.01, "relax_below": 0.005, "window": "7d", "min_sends": 200, "hold": "1d",
                   "min_count": 1},
      "level": 1, "level_changed_at": "2026-03-19T12:00:00.000Z",
      "effective_caps": [{"count": 2, "per": "7d"}],
      "level_log": [{"at": "2026-03-19T12:00:00.000Z", "from_level": 0, "to_level": 1, "sent": 4, "unsubscribes": 2,
                     "reason": "unsubscribe rate 50.00% (2 of 4 sends) above 1.00%: tightened to 2 per 7d"}]})"));

  // Newest first. c's erasure took its attribution along; the counts above
  // (no person in them) keep its withdrawal.
  CHECK(got["recent_unsubscribes"] == json::parse(R"([
      {"at": "2026-03-19T14:00:00.000Z", "kind": "unsubscribe", "category": null, "step": "second",
       "sent_at": "2026-03-19T10:00:00.000Z", "subscription": "sub_b"},
      {"at": "2026-03-18T11:00:00.000Z", "kind": "gone", "category": null, "step": "first",
       "sent_at": "2026-03-18T10:00:00.000Z", "subscription": "sub_a"}])"));

  CHECK(got["scenario"] == "cart");
  CHECK(got["loaded"] == true);
  CHECK(got["from"] == "2026-03-13T13:00:00.000Z");
  CHECK(got["to"] == "2026-03-20T13:00:00.000Z");
  CHECK(got["generated_at"] == "2026-03-20T12:30:00.000Z");
  CHECK(got.size() == 11);
}

TEST_CASE("a requested range is widened to whole hours and counts only what falls in it") {
  shop s;
  two_days_of_pushes(s);
  // 09:30+01:00 is 08:30 UTC → from 08:00; 10:00:00.001 → to 11:00.
  const json got = stats_json(s, "cart", {"2026-03-19T09:30:00+01:00", "2026-03-19T10:00:00.001Z"});
  CHECK(got["from"] == "2026-03-19T08:00:00.000Z");
  CHECK(got["to"] == "2026-03-19T11:00:00.000Z");
  CHECK(got["totals"]["sent"] == 1);
  CHECK(got["totals"]["deferred"] == held(1));
  CHECK(got["totals"]["unsubscribes"] == unsubscribes(0, 0, 1));
  CHECK(got["totals"]["journeys"]["skipped"] == 1);
  CHECK(got["totals"]["journeys"]["completed"] == 1);
  CHECK(got["per_day"] == json::array({{{"date", "2026-03-19"}, {"sent", 1}, {"deferred", 1}, {"suppressed", 1},
                                        {"unsubscribes", 1}, {"unsubscribe_rate", 1.0}, {"shown", 0},
                                        {"clicked", 0}, {"converted", 0}, {"influenced", 0},
                                        {"revenue", json::object()}}}));
  // Journeys that reached a step in the range: the second reminder's only.
  CHECK(got["totals"]["funnel"]["entered"] == 0);
  CHECK(got["steps"][1]["funnel"]["entered"] == 1);
  CHECK(got["recent_unsubscribes"] == json::array());  // c's, erased
  // The rolling windows do not follow the range.
  CHECK(got["windows"]["7d"]["sent"] == 6);
}

TEST_CASE("stats follow the scenario set: a scenario no longer loaded keeps its stored figures") {
  shop s;
  two_days_of_pushes(s);
  s.scenarios = set_of({});  // a reload without it
  const json got = stats_json(s, "cart");
  CHECK(got["loaded"] == false);
  std::vector<std::pair<std::string, bool>> steps;
  for (const auto& step : got["steps"]) steps.emplace_back(step["name"], step["configured"]);
  CHECK(steps == std::vector<std::pair<std::string, bool>>{{"first", false}, {"old_first", false}, {"second", false}});
  CHECK(got["totals"]["sent"] == 6);

  SUBCASE("its pacing is whatever the policy still says") {
    auto policy = std::make_shared<pacing::policy>(*s.policy);
    policy->scenarios.erase("cart");
    s.policy = policy;
    const json now_unpaced = stats_json(s, "cart");
    CHECK(now_unpaced["pacing"]["caps"] == json::array());
    CHECK(now_unpaced["pacing"]["adaptive"] == nullptr);
    // The stored level is the gate's only for an adaptive scenario.
    CHECK(now_unpaced["pacing"]["level"] == 0);
    CHECK(now_unpaced["pacing"]["level_changed_at"] == nullptr);
    CHECK(now_unpaced["pacing"]["level_log"].size() == 1);
  }
}

TEST_CASE("a scenario neither loaded nor ever recorded is unknown; a loaded one without data answers zeros") {
  shop s;
  auto missing = s.service.stats("welcome", {});
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code == "unknown_scenario");
  CHECK(missing.error().field == "name");

  const json empty = stats_json(s, "cart");
  CHECK(empty["totals"]["sent"] == 0);
  CHECK(empty["totals"]["unsubscribe_rate"] == nullptr);
  CHECK(empty["steps"].size() == 2);
  CHECK(empty["per_day"].size() == 8);
  CHECK(empty["pacing"]["level"] == 0);
  CHECK(empty["pacing"]["effective_caps"] == json::parse(R"([{"count": 3, "per": "7d"}])"));
  CHECK(empty["recent_unsubscribes"] == json::array());
}

TEST_CASE("stats ranges: defaults, widening, and what is refused") {
  const time_point now = at("2026-03-20T12:30:00Z");
  const auto range = [&](std::optional<std::string> from, std::optional<std::string> to) {
    return parse_stats_range({std::move(from), std::move(to)}, now);
  };
  const auto refused = [&](std::optional<std::string> from, std::optional<std::string> to) {
    const auto r = range(std::move(from), std::move(to));
    REQUIRE_FALSE(r.has_value());
    return r.error().code + " " + r.error().field;
  };

  auto r = range(std::nullopt, std::nullopt);
  CHECK(r->from == at("2026-03-13T13:00:00Z"));
  CHECK(r->to == at("2026-03-20T13:00:00Z"));
  r = range(std::nullopt, "2026-03-01T00:00:00Z");
  CHECK(r->from == at("2026-02-22T00:00:00Z"));
  r = range("2025-02-13T00:00:00Z", "2026-03-20T00:00:00Z");  // 400 days exactly
  CHECK(r.has_value());

  CHECK(refused("yesterday", std::nullopt) == "invalid_from from");
  CHECK(refused(std::nullopt, "2026-03-20 12:00:00Z") == "invalid_to to");
  CHECK(refused("2026-03-20T12:00:00 01:00", std::nullopt) == "invalid_from from");  // an unescaped '+' in a query
  CHECK(refused("9999-01-01T00:00:00Z", std::nullopt) == "invalid_from from");    // beyond what the daemon can hold
  CHECK(refused("2026-03-20T10:00:00Z", "2026-03-20T10:00:00Z") == "invalid_range to");
  CHECK(refused("2026-03-20T10:30:00Z", "2026-03-20T10:00:00Z") == "invalid_range to");
  CHECK(refused("2025-02-12T23:00:00Z", "2026-03-20T00:00:00Z") == "invalid_range from");
  CHECK(refused(std::nullopt, "nonsense") == "invalid_to to");
  CHECK(range("2025-02-12T23:00:00Z", "2026-03-20T00:00:00Z").error().message == "a range spans at most 400d");
}

TEST_CASE("the list: every loaded scenario in order, with its last 7 days and the level in force") {
  shop s;
  two_days_of_pushes(s);
  scenario_def welcome;
  welcome.name = "welcome";
  welcome.enabled = false;
  welcome.trigger.event = "subscribed";
  welcome.steps = {step_def{}};
  welcome.steps[0].name = "hello";
  s.scenarios = set_of({cart_scenario(), welcome});

  auto list = s.service.list();
  REQUIRE(list.has_value());
  REQUIRE(list->size() == 2);
  CHECK(to_json((*list)[0]) == json::parse(R"({
      "name": "cart", "description": "Cart reminders", "enabled": true, "category": "cart_reminders",
      "priority": 70, "trigger": {"event": "cart_updated"},
      "steps": [{"name": "first", "after": "1h"}, {"name": "second", "after": "1d"}],
      "last_7d": {"sent": 6, "unsubscribes": 3, "unsubscribe_rate": 0.5}, "level": 1})"));
  const json quiet = to_json((*list)[1]);
  CHECK(quiet["name"] == "welcome");
  CHECK(quiet["enabled"] == false);
  CHECK(quiet["last_7d"] == json{{"sent", 0}, {"unsubscribes", 0}, {"unsubscribe_rate", nullptr}});
  CHECK(quiet["level"] == 0);
}

}  // namespace webpushd::automation
