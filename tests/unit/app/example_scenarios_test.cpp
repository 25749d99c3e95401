// The shipped example scenarios (examples/scenarios/, listed by
// examples/shop.yaml) run end to end in virtual time on a real SQLite file,
// loaded exactly as the daemon loads them: the example week of
// examples/traces/first_week.jsonl, plus short traces for what that week
// does not show (journey-key restart, cooldown, missing fields, a restart of
// the process in the middle of journeys).

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "../storage/test_support.hpp"
#include "webpushd/app/config.hpp"
#include "webpushd/automation/simulation.hpp"
#include "webpushd/ingest/events.hpp"

namespace webpushd::app {
namespace {

using automation::simulated_line;
using automation::simulation;
using nlohmann::json;
using storage::testing::temp_dir;

const std::filesystem::path source_dir{WEBPUSHD_SOURCE_DIR};

const config& shop_config() {
  static const config c = [] {
    auto loaded = load_config(source_dir / "examples" / "shop.yaml");
    REQUIRE_MESSAGE(loaded.has_value(), (loaded ? "" : loaded.error().message));
    return *loaded;
  }();
  return c;
}

automation::engine_options options_of(const config& c) {
  automation::engine_options o;
  o.default_locale = c.consent.default_locale;
  o.default_timezone = c.consent.default_timezone;
  o.shop = {c.automation.shop_name, c.automation.shop_url};
  o.public_url = "https://push.example-shop.com";
  return o;
}

std::unique_ptr<simulation> make_simulation(const std::filesystem::path& file) {
  const auto& c = shop_config();
  auto sim = simulation::create(c.automation.scenarios, options_of(c), c.events.custom_types, file,
                                std::make_shared<const pacing::policy>(c.pacing.policy));
  REQUIRE_MESSAGE(sim.has_value(), (sim ? "" : sim.error().message));
  return std::move(*sim);
}

std::vector<std::string> trace_lines() {
  std::ifstream in(source_dir / "examples" / "traces" / "first_week.jsonl");
  REQUIRE(in.good());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] != '#') lines.push_back(line);
  }
  return lines;
}

void apply_lines(simulation& sim, const std::vector<std::string>& lines, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) {
    auto r = sim.apply(json::parse(lines[i]), i + 1);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  }
}

std::vector<simulated_line> timeline(simulation& sim) {
  auto lines = sim.lines();
  REQUIRE(lines.has_value());
  return *lines;
}

// One line per happening, comparable across runs: time, person, scenario/step, outcome, reason, title.
std::vector<std::string> flatten(const std::vector<simulated_line>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) {
    std::ostringstream s;
    s << unix_seconds(l.at) << ' ' << l.person << ' ' << l.scenario << '/' << l.step << ' ' << l.outcome << ' '
      << l.reason << ' ' << l.subscription << ' ' << (l.message.is_object() ? l.message.value("title", "") : "");
    out.push_back(s.str());
  }
  return out;
}

const simulated_line* find(const std::vector<simulated_line>& lines, const std::string& person,
                           const std::string& scenario, const std::string& step, const std::string& outcome) {
  for (const auto& l : lines) {
    if (l.person == person && l.scenario == scenario && l.step == step && l.outcome == outcome) return &l;
  }
  return nullptr;
}

time_point t(const char* text) { return *ingest::parse_rfc3339(text); }

TEST_CASE("the example week: every example scenario triggers, steps, exits and respects consent") {
  temp_dir dir;
  auto sim = make_simulation(dir.db_file());
  const auto lines = trace_lines();
  apply_lines(*sim, lines, 0, lines.size());
  REQUIRE(sim->run_to_end().has_value());
  const auto tl = timeline(*sim);

  SUBCASE("abandoned cart: two reminders in Polish with the cart's total, then the purchase ends it") {
    const auto* first = find(tl, "c:anna", "abandoned_cart", "first_reminder", "sent");
    REQUIRE(first != nullptr);
    CHECK(first->at == t("2026-11-02T10:30:00Z"));  // 1 h after the cart changed
    // The first reminder is an A/B test; Anna's cart journey draws the question.
    CHECK(first->variant == "question");
    CHECK(first->reason == "pl, variant question");
    CHECK(first->message["title"] == "Czegoś zapomniałeś?");
    CHECK(first->message["body"].get<std::string>().find("249,00\u00a0zł") != std::string::npos);
    CHECK(first->message["url"] ==
          "https://www.example-shop.com/cart?utm_source=webpush&utm_medium=push&utm_campaign=abandoned_cart"
          "&utm_content=first_reminder-question");
    CHECK(first->message["actions"][0]["title"] == "Zobacz koszyk");
    const auto* second = find(tl, "c:anna", "abandoned_cart", "second_reminder", "sent");
    REQUIRE(second != nullptr);
    CHECK(second->at == t("2026-11-03T09:30:00Z"));
    CHECK(second->variant.empty());
    CHECK(second->message["url"].get<std::string>().ends_with("&utm_content=second_reminder"));
    const auto* exited = find(tl, "c:anna", "abandoned_cart", "", "exited");
    REQUIRE(exited != nullptr);
    CHECK(exited->reason == "purchase");
    CHECK(exited->at == t("2026-11-04T12:00:00Z"));  // before the 72 h step
    CHECK(find(tl, "c:anna", "abandoned_cart", "last_reminder", "sent") == nullptr);
  }
  SUBCASE("browse abandonment: a cart within the wait ends it; no consent, no push") {
    CHECK(find(tl, "c:anna", "browse_abandonment", "", "exited")->reason == "cart_updated");
    CHECK(find(tl, "c:anna", "browse_abandonment", "reminder", "sent") == nullptr);
    CHECK(find(tl, "c:ben", "browse_abandonment", "reminder", "suppressed")->reason ==
          "consent missing: recommendations");
  }
  SUBCASE("review request: 7 days after the order, with the order in the link") {
    const auto* ask = find(tl, "c:anna", "review_request", "ask_for_review", "sent");
    REQUIRE(ask != nullptr);
    CHECK(ask->at == t("2026-11-11T12:00:00Z"));
    CHECK(ask->message["url"].get<std::string>().find("order=order-1001") != std::string::npos);
  }
  SUBCASE("back in stock and price drop: the people who viewed the product, also one who subscribed later") {
    CHECK(find(tl, "c:anna", "back_in_stock", "alert", "sent") != nullptr);
    const auto* carol = find(tl, "c:carol", "back_in_stock", "alert", "sent");
    REQUIRE(carol != nullptr);  // viewed before subscribing; the view was kept
    CHECK(carol->message["title"] == "Winter boots is back in stock");
    CHECK(find(tl, "c:ben", "back_in_stock", "alert", "sent") == nullptr);  // viewed another product
    // Rendered, then held back: Anna had her five pushes of the week.
    const auto* drop = find(tl, "c:anna", "price_drop", "alert", "suppressed");
    REQUIRE(drop != nullptr);
    CHECK(drop->message["title"] == "Trapery zimowe taniej: 199,00\u00a0zł");
    CHECK(drop->reason.starts_with("global_cap: 5 per 7d; the next allowed moment, 2026-11-09T08:01:00.000Z, is past"));
    CHECK(find(tl, "c:carol", "price_drop", "alert", "sent") != nullptr);
  }
  SUBCASE("pacing: quiet hours in the shopper's zone defer a reminder; an unsubscribe counts against it") {
    const auto* held = find(tl, "c:dan", "abandoned_cart", "first_reminder", "deferred");
    REQUIRE(held != nullptr);
    CHECK(held->at == t("2026-11-08T02:10:00Z"));  // 21:10 in New York
    CHECK(held->reason == "quiet_hours: 21:00–08:00 America/New_York; deferred to 2026-11-08T13:00:00.000Z");
    const auto* sent = find(tl, "c:dan", "abandoned_cart", "first_reminder", "sent");
    REQUIRE(sent != nullptr);
    CHECK(sent->at == t("2026-11-08T13:00:00Z"));  // 08:00 in New York
    CHECK(held->variant == "reminder");  // Dan's journey draws the baseline, and keeps it while held
    CHECK(sent->variant == "reminder");
    CHECK(sent->message["title"] == "Your cart is waiting");
    const auto* gone = find(tl, "c:dan", "abandoned_cart", "first_reminder", "unsubscribed");
    REQUIRE(gone != nullptr);
    CHECK(gone->reason == "unsubscribe cart_reminders, attributed to the push of 2026-11-08 13:00");
    CHECK(gone->variant == "reminder");  // the unsubscribe counts against the variant that preceded it
  }
  SUBCASE("welcome: each step at its offset, only in the categories granted") {
    CHECK(find(tl, "c:anna", "welcome", "hello", "sent")->at == t("2026-11-02T08:01:00Z"));
    CHECK(find(tl, "c:anna", "welcome", "bestsellers", "sent")->at == t("2026-11-04T08:00:00Z"));
    CHECK(find(tl, "c:anna", "welcome", "first_order_discount", "suppressed")->reason ==
          "consent missing: promotions");
    CHECK(find(tl, "c:ben", "welcome", "hello", "suppressed")->reason == "consent missing: news");
  }
  SUBCASE("win-back: 30 days after the last visit") {
    CHECK(find(tl, "c:anna", "win_back", "come_back", "sent")->at == t("2026-12-02T09:00:00Z"));
  }
}

TEST_CASE("a restart of the process in the middle of the week changes nothing that happens") {
  const auto lines = trace_lines();
  temp_dir straight_dir;
  auto straight = make_simulation(straight_dir.db_file());
  apply_lines(*straight, lines, 0, lines.size());
  REQUIRE(straight->run_to_end().has_value());

  for (const std::size_t cut : {std::size_t{3}, std::size_t{6}}) {
    CAPTURE(cut);
    temp_dir dir;
    {
      auto first = make_simulation(dir.db_file());
      apply_lines(*first, lines, 0, cut);
    }  // the process is gone; the journeys are in the file
    auto second = make_simulation(dir.db_file());
    apply_lines(*second, lines, cut, lines.size());
    REQUIRE(second->run_to_end().has_value());
    CHECK(flatten(timeline(*second)) == flatten(timeline(*straight)));
  }
}

TEST_CASE("abandoned cart: a changed cart restarts the wait; after a purchase the cooldown holds a day") {
  temp_dir dir;
  auto sim = make_simulation(dir.db_file());
  const auto cart = [](const char* id, const char* when, double total) {
    return json{{"id", id}, {"type", "cart_updated"}, {"customer_id", "dan"}, {"occurred_at", when},
                {"properties", {{"cart_id", "cart-dan"}, {"items", json::array({{{"product_id", "mug"}, {"quantity", 1}}})},
                                {"total", total}, {"currency", "EUR"}}}};
  };
  std::size_t n = 0;
  const auto apply = [&](const json& item) {
    auto r = sim->apply(item, ++n);
    REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  };
  apply(json{{"at", "2026-11-02T08:00:00Z"},
             {"subscribe", {{"subscription_id", "sub-dan"}, {"customer_id", "dan"}, {"categories", {"cart_reminders"}}}}});
  apply(cart("c1", "2026-11-02T09:00:00Z", 30));
  apply(cart("c2", "2026-11-02T09:45:00Z", 40));  // before the first reminder: the hour starts again
  REQUIRE(sim->advance_to(t("2026-11-02T10:44:00Z")).has_value());
  CHECK(find(timeline(*sim), "c:dan", "abandoned_cart", "first_reminder", "sent") == nullptr);
  REQUIRE(sim->advance_to(t("2026-11-02T10:45:00Z")).has_value());
  CHECK(find(timeline(*sim), "c:dan", "abandoned_cart", "first_reminder", "sent") != nullptr);
  apply(json{{"id", "o1"}, {"type", "purchase"}, {"customer_id", "dan"}, {"occurred_at", "2026-11-02T12:00:00Z"},
             {"properties", {{"order_id", "o1"}, {"items", json::array({{{"product_id", "mug"}, {"quantity", 1}}})},
                             {"total", 40}, {"currency", "EUR"}}}});
  apply(cart("c3", "2026-11-02T15:00:00Z", 50));  // a new cart 6 h after entering: inside the 24 h cooldown
  REQUIRE(sim->run_to_end().has_value());
  const auto tl = timeline(*sim);
  const auto held = std::count_if(tl.begin(), tl.end(), [](const simulated_line& l) {
    return l.scenario == "abandoned_cart" && l.outcome == "suppressed" && l.reason.rfind("re-entry cooldown", 0) == 0;
  });
  CHECK(held == 1);
  const auto* restarted = find(tl, "c:dan", "abandoned_cart", "first_reminder", "restarted");
  REQUIRE(restarted != nullptr);
  CHECK(restarted->reason == "new cart_updated c2");
  CHECK(find(tl, "c:dan", "abandoned_cart", "", "exited")->reason == "purchase");
}

TEST_CASE("browse abandonment needs the product's name and link: a bare view starts no journey") {
  temp_dir dir;
  auto sim = make_simulation(dir.db_file());
  REQUIRE(sim->apply(json{{"at", "2026-11-02T08:00:00Z"},
                          {"subscribe", {{"subscription_id", "sub-eve"}, {"customer_id", "eve"},
                                         {"categories", {"recommendations"}}}}},
                     1)
              .has_value());
  REQUIRE(sim->apply(json{{"id", "v1"}, {"type", "product_viewed"}, {"customer_id", "eve"},
                          {"occurred_at", "2026-11-02T09:00:00Z"}, {"properties", {{"product_id", "p-9"}}}},
                     2)
              .has_value());
  REQUIRE(sim->advance_to(t("2026-11-02T13:00:00Z")).has_value());
  // The example's trigger requires product.name and product.url, so its
  // message can never miss them (the linter holds examples to that; a
  // template field missing at send time is covered by the engine tests).
  const auto tl = timeline(*sim);
  CHECK(find(tl, "c:eve", "browse_abandonment", "", "entered") == nullptr);
  CHECK(find(tl, "c:eve", "win_back", "", "entered") != nullptr);  // any visit counts for win-back
}

}  // namespace
}  // namespace webpushd::app
