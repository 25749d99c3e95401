#include <doctest/doctest.h>

#include <algorithm>

#include "webpushd/automation/message.hpp"
#include "webpushd/automation/scenario_file.hpp"

using namespace webpushd::automation;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

scenario_environment environment() {
  scenario_environment env;
  env.categories = {"cart_reminders", "recommendations", "promotions"};
  for (const auto* type : {"product_viewed", "cart_updated", "checkout_started", "purchase", "product_back_in_stock",
                           "price_dropped", "subscribed"}) {
    env.event_types[type] = builtin_properties_schema(type);
  }
  env.event_types["wishlist_added"] = json::parse(R"({
    "type": "object", "required": ["sku"],
    "properties": {"sku": {"type": "string"}, "note": {"type": "string"}, "extra": {"type": "object"}}
  })");
  env.event_types["restocked"] = json::parse(R"({"type": "object", "properties": {"product_id": {"type": "string"}}})");
  return env;
}

// One scenario around `steps` (and optional overrides of the other keys).
json document(json scenario_overrides, json steps = nullptr) {
  json s = {{"name", "cart_test"},
            {"category", "cart_reminders"},
            {"trigger", {{"event", "cart_updated"}}},
            {"steps", steps.is_null() ? json::parse(R"([{"name": "one", "after": "1h", "message": {"title": "Hi"}}])")
                                      : steps}};
  for (const auto& [k, v] : scenario_overrides.items()) s[k] = v;
  return {{"version", 1}, {"scenarios", json::array({s})}};
}

json one_step(json message, json extra = json::object()) {
  json step = {{"name", "one"}, {"after", "1h"}, {"message", std::move(message)}};
  for (const auto& [k, v] : extra.items()) step[k] = v;
  return json::array({step});
}

scenario_parse check(const json& doc, const scenario_environment& env = environment()) {
  return parse_scenario_document(doc, env, "test.yaml");
}

// "ERROR /pointer: message" lines, for readable failures.
std::string findings_text(const scenario_parse& p) {
  std::string out;
  for (const auto& f : p.findings) {
    out += (f.severity == scenario_finding::level::error ? "ERROR " : "WARNING ") + f.pointer + ": " + f.message + "\n";
  }
  return out;
}

const scenario_finding* finding_at(const scenario_parse& p, const std::string& pointer) {
  const auto it = std::find_if(p.findings.begin(), p.findings.end(),
                               [&](const scenario_finding& f) { return f.pointer == pointer; });
  return it == p.findings.end() ? nullptr : &*it;
}

void expect_clean(const scenario_parse& p) {
  CHECK_MESSAGE(p.ok(), findings_text(p));
  CHECK_MESSAGE(p.findings.empty(), findings_text(p));
}

void expect_error(const scenario_parse& p, const std::string& pointer, const std::string& part) {
  const auto* f = finding_at(p, pointer);
  REQUIRE_MESSAGE(f != nullptr, "no finding at " << pointer << "; got:\n" << findings_text(p));
  CHECK(f->severity == scenario_finding::level::error);
  CHECK_MESSAGE(f->message.find(part) != std::string::npos, f->message);
  CHECK_FALSE(p.ok());
}

void expect_warning(const scenario_parse& p, const std::string& pointer, const std::string& part) {
  const auto* f = finding_at(p, pointer);
  REQUIRE_MESSAGE(f != nullptr, "no finding at " << pointer << "; got:\n" << findings_text(p));
  CHECK(f->severity == scenario_finding::level::warning);
  CHECK_MESSAGE(f->message.find(part) != std::string::npos, f->message);
  CHECK(p.ok());
}

}  // namespace

TEST_CASE("a full scenario becomes a scenario_def") {
  const auto doc = json::parse(R"json({"version": 1, "scenarios": [{
    "name": "abandoned_cart", "description": "Remind", "enabled": false, "category": "cart_reminders",
    "priority": 90,
    "trigger": {"event": "cart_updated", "when": ["cart.item_count > 0"]},
    "journey": {"key": "cart.id", "on_retrigger": "ignore", "reentry_cooldown": "24h"},
    "exit_on": [{"event": "purchase"},
                {"event": "checkout_started", "key": "cart.id"},
                {"event": "cart_updated", "key": "cart.id", "when": ["cart.item_count == 0"]}],
    "late": {"max": "30m"},
    "topic_per_journey": false,
    "steps": [
      {"name": "first", "after": "90s", "ttl": "12h", "urgency": "high",
       "message": {"title": "Your cart", "body": "{{cart.item_count}} item(s)", "url": "{{cart.url}}",
                   "actions": [{"action": "view_cart", "title": "View", "url": "https://shop.example/cart"}],
                   "locales": {"pl": {"title": "Twój koszyk"}}}},
      {"name": "second", "after": "7d", "category": "promotions", "when": ["cart.total >= 50"],
       "message": {"title": "Still there: {{cart.total_text}}"}}
    ]}]})json");
  const auto p = check(doc);
  // cart.url is optional in cart_updated and used bare: the one warning.
  REQUIRE_MESSAGE(p.ok(), findings_text(p));
  REQUIRE(p.findings.size() == 1);
  CHECK(p.findings[0].pointer == "/scenarios/0/steps/0/message/url");
  REQUIRE(p.scenarios.size() == 1);
  const auto& s = p.scenarios[0];
  CHECK(s.name == "abandoned_cart");
  CHECK(s.description == "Remind");
  CHECK_FALSE(s.enabled);
  CHECK(s.priority == 90);
  CHECK(s.category == "cart_reminders");
  CHECK(s.trigger.event == "cart_updated");
  REQUIRE(s.trigger.when.size() == 1);
  CHECK(s.trigger.when[0].text == "cart.item_count > 0");
  CHECK(s.journey_key == "cart.id");
  CHECK(s.on_retrigger == retrigger_policy::ignore);
  CHECK(s.reentry_cooldown == 24h);
  REQUIRE(s.exits.size() == 3);
  CHECK(s.exits[0].event == "purchase");
  CHECK(s.exits[0].key.empty());
  CHECK(s.exits[1].key == "cart.id");
  CHECK(s.exits[2].when.size() == 1);
  CHECK(s.late.max == 30min);
  CHECK_FALSE(s.topic_per_journey);
  CHECK(s.source_file == "test.yaml");
  REQUIRE(s.steps.size() == 2);
  CHECK(s.steps[0].after == 90s);
  CHECK(s.steps[0].ttl == 12h);
  CHECK(s.steps[0].urgency == "high");
  CHECK(s.steps[0].category == "cart_reminders");  // inherited from the scenario
  CHECK(s.steps[0].message.fields.title == "Your cart");
  REQUIRE(s.steps[0].message.fields.actions.size() == 1);
  CHECK(s.steps[0].message.fields.actions[0].url == "https://shop.example/cart");
  CHECK(s.steps[0].message.locales.at("pl").title == "Twój koszyk");
  CHECK(s.steps[0].message.locales.at("pl").body.empty());
  CHECK(s.steps[1].after == 7 * 24h);
  CHECK(s.steps[1].category == "promotions");
  CHECK(s.steps[1].ttl == 24h);  // default
  CHECK(s.steps[1].urgency == "normal");
}

TEST_CASE("defaults of what a file leaves out") {
  const auto p = check(document(json::object()));
  expect_clean(p);
  REQUIRE(p.scenarios.size() == 1);
  const auto& s = p.scenarios[0];
  CHECK(s.enabled);
  CHECK(s.priority == 50);
  CHECK(s.journey_key.empty());
  CHECK(s.on_retrigger == retrigger_policy::restart);
  CHECK(s.reentry_cooldown == 0ms);
  CHECK(s.late.max == 6h);
  CHECK(s.topic_per_journey);
  CHECK(s.trigger.audience.interested_within == 0ms);
}

TEST_CASE("scenario_set::find") {
  scenario_set set;
  set.scenarios.resize(2);
  set.scenarios[0].name = "a";
  set.scenarios[1].name = "b";
  REQUIRE(set.find("b") != nullptr);
  CHECK(set.find("b") == &set.scenarios[1]);
  CHECK(set.find("c") == nullptr);
}

TEST_CASE("names, order and categories") {
  SUBCASE("steps must be strictly later than the one before") {
    const auto steps = json::parse(R"([
      {"name": "a", "after": "1h", "message": {"title": "x"}},
      {"name": "b", "after": "60m", "message": {"title": "x"}},
      {"name": "c", "after": "30m", "message": {"title": "x"}}])");
    const auto p = check(document(json::object(), steps));
    expect_error(p, "/scenarios/0/steps/1/after", "60m is not later than step 'a' (1h)");
    expect_error(p, "/scenarios/0/steps/2/after", "30m is not later than step 'b' (60m)");
  }
  SUBCASE("step names are unique in a scenario") {
    const auto steps = json::parse(R"([
      {"name": "a", "after": "1h", "message": {"title": "x"}},
      {"name": "a", "after": "2h", "message": {"title": "x"}}])");
    expect_error(check(document(json::object(), steps)), "/scenarios/0/steps/1/name",
                 "step name 'a' is already used by step 0");
  }
  SUBCASE("scenario names are unique in a file") {
    auto doc = document(json::object());
    doc["scenarios"].push_back(doc["scenarios"][0]);
    expect_error(check(doc), "/scenarios/1/name", "scenario name 'cart_test' is already used by scenario 0");
  }
  SUBCASE("a consent category must exist") {
    const auto p = check(document({{"category", "newsletter"}}, one_step({{"title", "x"}}, {{"category", "promo"}})));
    expect_error(p, "/scenarios/0/category", "consent category 'newsletter' is not in the config's consent.categories");
    expect_error(p, "/scenarios/0/steps/0/category", "'promo'");
  }
  SUBCASE("without known categories they are not checked") {
    auto env = environment();
    env.categories.clear();
    expect_clean(check(document({{"category", "newsletter"}}), env));
  }
  SUBCASE("unknown event types, for the trigger and for exits") {
    const auto p = check(document({{"trigger", {{"event", "cart_changed"}}},
                                   {"exit_on", json::parse(R"([{"event": "order_placed"}])")}}));
    expect_error(p, "/scenarios/0/trigger/event", "unknown event type 'cart_changed'");
    expect_error(p, "/scenarios/0/exit_on/0/event", "unknown event type 'order_placed'");
    CHECK(finding_at(p, "/scenarios/0/trigger/event")->message.find("events.custom_types") != std::string::npos);
  }
  SUBCASE("a TTL beyond what push services keep") {
    expect_error(check(document(json::object(), one_step({{"title", "x"}}, {{"ttl", "29d"}}))),
                 "/scenarios/0/steps/0/ttl", "at most 28d");
    expect_clean(check(document(json::object(), one_step({{"title", "x"}}, {{"ttl", "28d"}}))));
  }
  SUBCASE("an exit key needs a journey key") {
    const auto p = check(document({{"exit_on", json::parse(R"([{"event": "checkout_started", "key": "cart.id"}])")}}));
    expect_error(p, "/scenarios/0/exit_on/0/key", "this scenario has no journey.key");
  }
  SUBCASE("an audience needs a product event") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"audience", {{"interested_within", "30d"}}}}}}));
    expect_error(p, "/scenarios/0/trigger/audience/interested_within", "has no product_id");
    const auto ok = check(document({{"category", "recommendations"},
                                    {"trigger", {{"event", "product_back_in_stock"},
                                                 {"audience", {{"interested_within", "30d"}}}}}}));
    expect_clean(ok);
    CHECK(ok.scenarios[0].trigger.audience.interested_within == 30 * 24h);
    // A custom type with a product_id property works too.
    expect_clean(check(document({{"trigger", {{"event", "restocked"}, {"audience", {{"interested_within", "1d"}}}}}})));
  }
}

TEST_CASE("conditions are parsed, and checked against the event that is evaluated") {
  SUBCASE("a syntax error keeps its column") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"cart.total => 100"}}}}}));
    expect_error(p, "/scenarios/0/trigger/when/0", "condition 'cart.total => 100': column 12: expected an operator");
  }
  SUBCASE("a field the trigger never has, with a suggestion") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"cart.totl >= 100"}}}}}));
    expect_error(p, "/scenarios/0/trigger/when/0", "a cart_updated event never provides cart.totl (did you mean cart.total?)");
  }
  SUBCASE("swapped letters are one typo") {
    const auto p = check(document({{"category", "recommendations"},
                                   {"trigger", {{"event", "product_viewed"}, {"when", {"product.nmae exists"}}}}}));
    expect_error(p, "/scenarios/0/trigger/when/0", "(did you mean product.name?)");
  }
  SUBCASE("a member of a known object that is not in its schema") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"subscriber.age > 18"}}}}}));
    expect_error(p, "/scenarios/0/trigger/when/0", "never provides subscriber.age");
  }
  SUBCASE("step fields are unknown to a trigger") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"journey.step == 1"}}}}}));
    expect_error(p, "/scenarios/0/trigger/when/0", "known only in a step");
  }
  SUBCASE("the recipient's locale is not known to a trigger yet") {
    const auto p = check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"subscriber.locale == \"pl\""}}}}}));
    expect_warning(p, "/scenarios/0/trigger/when/0", "put this condition on the steps");
    expect_clean(check(document(json::object(), one_step({{"title", "x"}}, {{"when", {"subscriber.locale == \"pl\""}}}))));
  }
  SUBCASE("step fields are fine in a step") {
    expect_clean(check(document(json::object(), one_step({{"title", "Step {{journey.step}}: {{step.name}}"}},
                                                        {{"when", {"journey.step == 1"}}}))));
  }
  SUBCASE("exit conditions are checked against the exit event's type") {
    const auto p = check(document({{"journey", {{"key", "cart.id"}}},
                                   {"exit_on", json::parse(R"([
                                      {"event": "purchase", "when": ["cart.total > 0"]},
                                      {"event": "purchase", "when": ["order.total > 0"], "key": "order.cart_id"},
                                      {"event": "checkout_started", "key": "cart.idd"}])")}}));
    expect_error(p, "/scenarios/0/exit_on/0/when/0", "a purchase event never provides cart.total");
    CHECK(finding_at(p, "/scenarios/0/exit_on/1/when/0") == nullptr);
    CHECK(finding_at(p, "/scenarios/0/exit_on/1/key") == nullptr);  // optional is fine: no match, no exit
    expect_error(p, "/scenarios/0/exit_on/2/key", "a checkout_started event never provides cart.idd");
  }
  SUBCASE("items of a list are accepted below it") {
    expect_clean(check(document({{"trigger", {{"event", "cart_updated"}, {"when", {R"(cart.items.0.name == "x")"}}}}})));
  }
  SUBCASE("custom types: their properties, free-form objects") {
    const auto p = check(document({{"trigger", {{"event", "wishlist_added"},
                                                {"when", {"properties.sku exists", "properties.extra.any > 1",
                                                          "properties.nope exists"}}}}}));
    CHECK(finding_at(p, "/scenarios/0/trigger/when/0") == nullptr);
    CHECK(finding_at(p, "/scenarios/0/trigger/when/1") == nullptr);
    expect_error(p, "/scenarios/0/trigger/when/2", "a wishlist_added event never provides properties.nope");
  }
}

TEST_CASE("the journey key") {
  SUBCASE("a field the trigger never has") {
    expect_error(check(document({{"journey", {{"key", "cart.number"}}}})), "/scenarios/0/journey/key",
                 "never provides cart.number");
  }
  SUBCASE("an optional field is a warning unless the trigger requires it") {
    expect_warning(check(document({{"journey", {{"key", "cart.url"}}}})), "/scenarios/0/journey/key",
                   "cart.url may be missing");
    expect_clean(check(document({{"journey", {{"key", "cart.url"}}},
                                 {"trigger", {{"event", "cart_updated"}, {"when", {"cart.url exists"}}}}})));
  }
}

TEST_CASE("template fields: never provided is an error, maybe missing a warning unless guarded or required") {
  SUBCASE("a field the trigger can never provide") {
    const auto p = check(document(json::object(), one_step({{"title", "{{product.name}} is waiting"}})));
    expect_error(p, "/scenarios/0/steps/0/message/title", "{{product.name}}: a cart_updated event never provides product.name");
  }
  SUBCASE("also in sections, locales and actions") {
    const auto p = check(document(
        json::object(),
        one_step({{"title", "x"},
                  {"body", "{{#cart.totl}}{{cart.totl}}{{/cart.totl}}"},
                  {"actions", json::parse(R"([{"action": "a", "title": "{{cart.idd}}"}])")},
                  {"locales", {{"pl", {{"title", "{{shop.nmae}}"}}}}}})));
    expect_error(p, "/scenarios/0/steps/0/message/body", "never provides cart.totl (did you mean cart.total?)");
    expect_error(p, "/scenarios/0/steps/0/message/actions/0/title", "never provides cart.idd");
    expect_error(p, "/scenarios/0/steps/0/message/locales/pl/title", "never provides shop.nmae (did you mean shop.name?)");
  }
  SUBCASE("an optional field used bare is a warning") {
    const auto p = check(document(json::object(), one_step({{"title", "Total {{cart.total_text}}"}})));
    expect_warning(p, "/scenarios/0/steps/0/message/title", "{{cart.total_text}} may be missing from a cart_updated event");
    REQUIRE(p.scenarios.size() == 1);
  }
  SUBCASE("inside a section it may be missing") {
    expect_clean(check(document(
        json::object(),
        one_step({{"title", "{{#cart.total_text}}Total {{cart.total_text}}{{/cart.total_text}}{{^cart.total_text}}Your cart{{/cart.total_text}}"}}))));
  }
  SUBCASE("a step condition on cart.total implies cart.total and cart.total_text") {
    expect_clean(check(document(json::object(), one_step({{"title", "{{cart.total}} = {{cart.total_text}}"}},
                                                        {{"when", {"cart.total >= 50"}}}))));
  }
  SUBCASE("so does a trigger condition") {
    expect_clean(check(document({{"trigger", {{"event", "cart_updated"}, {"when", {"cart.total > 0"}}}}},
                                one_step({{"title", "{{cart.total_text}}"}}))));
  }
  SUBCASE("but not a 'missing' condition") {
    expect_warning(check(document(json::object(), one_step({{"title", "{{cart.total_text}}"}},
                                                          {{"when", {"cart.total missing"}}}))),
                   "/scenarios/0/steps/0/message/title", "may be missing");
  }
  SUBCASE("a condition on one step does not cover another") {
    const auto steps = json::parse(R"([
      {"name": "a", "after": "1h", "when": ["cart.url exists"], "message": {"title": "x", "url": "{{cart.url}}"}},
      {"name": "b", "after": "2h", "message": {"title": "x", "url": "{{cart.url}}"}}])");
    const auto p = check(document(json::object(), steps));
    CHECK(finding_at(p, "/scenarios/0/steps/0/message/url") == nullptr);
    expect_warning(p, "/scenarios/0/steps/1/message/url", "{{cart.url}} may be missing");
  }
  SUBCASE("names inside a list section are the items' own") {
    expect_clean(check(document(
        json::object(), one_step({{"title", "x"}, {"body", "{{#cart.items}}{{name}} × {{quantity}}, {{/cart.items}}"}}))));
  }
  SUBCASE("always-present fields need no guard") {
    expect_clean(check(document(json::object(),
                                one_step({{"title", "{{cart.id}} {{cart.item_count}} {{shop.name}} {{subscriber.locale}}"}}))));
  }
  SUBCASE("subscribed events") {
    expect_clean(check(document({{"trigger", {{"event", "subscribed"}}}},
                                one_step({{"title", "Welcome {{subscription.subscription_id}}"}}))));
    expect_error(check(document({{"trigger", {{"event", "subscribed"}}}}, one_step({{"title", "{{cart.id}}"}}))),
                 "/scenarios/0/steps/0/message/title", "a subscribed event never provides cart.id");
  }
  SUBCASE("template syntax errors") {
    const auto p = check(document(json::object(), one_step({{"title", "{{#cart.id}}open"}})));
    const auto* f = finding_at(p, "/scenarios/0/steps/0/message/title");
    REQUIRE(f != nullptr);
    CHECK(f->severity == scenario_finding::level::error);
    CHECK_FALSE(f->message.empty());
  }
}

TEST_CASE("links and actions") {
  SUBCASE("a link must be absolute or a template") {
    const auto p = check(document(json::object(), one_step({{"title", "x"}, {"url", "/cart"}, {"image", "www.x.pl/a.png"}})));
    expect_error(p, "/scenarios/0/steps/0/message/url", "'/cart' is not a link");
    expect_error(p, "/scenarios/0/steps/0/message/image", "is not a link");
    expect_clean(check(document(json::object(), one_step({{"title", "x"}, {"url", "https://shop.example/"}}))));
  }
  SUBCASE("action identifiers are unique in a message") {
    const auto p = check(document(json::object(), one_step({{"title", "x"}, {"actions", json::parse(R"([
        {"action": "open", "title": "A"}, {"action": "open", "title": "B"}])")}})));
    expect_error(p, "/scenarios/0/steps/0/message/actions/1/action", "appears twice");
  }
}
