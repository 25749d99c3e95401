// The context conditions and templates read (message.hpp, "The context").
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "webpushd/automation/message.hpp"
#include "webpushd/ingest/event_schemas.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;

// What a built-in type's alias looks like: its name, the properties renamed
// under it, and which of its numbers are money (each gets a `_text` twin).
struct alias_rule {
  std::string_view type;
  std::string_view alias;
  std::array<std::pair<std::string_view, std::string_view>, 2> renames;
  std::array<std::string_view, 2> money;
  bool has_items = false;  // items[].price is money too; item_count is derived
};

constexpr std::array<alias_rule, 7> alias_rules{{
    {"product_viewed", "product", {{{"product_id", "id"}, {}}}, {"price", {}}, false},
    {"product_back_in_stock", "product", {{{"product_id", "id"}, {}}}, {}, false},
    {"price_dropped", "product", {{{"product_id", "id"}, {}}}, {"old_price", "new_price"}, false},
    {"cart_updated", "cart", {{{"cart_id", "id"}, {"cart_url", "url"}}}, {"total", {}}, true},
    {"checkout_started", "cart", {{{"cart_id", "id"}, {"cart_url", "url"}}}, {"total", {}}, true},
    {"purchase", "order", {{{"order_id", "id"}, {}}}, {"total", {}}, true},
    {"subscribed", "subscription", {}, {}, false},
}};

const alias_rule* rule_for(std::string_view type) {
  for (const auto& r : alias_rules) {
    if (r.type == type) return &r;
  }
  return nullptr;
}

std::string renamed(const alias_rule& rule, const std::string& property) {
  for (const auto& [from, to] : rule.renames) {
    if (!from.empty() && from == property) return std::string{to};
  }
  return property;
}

// RFC 3339 in UTC with milliseconds; floor() keeps times before 1970 right.
std::string rfc3339_utc(time_point t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  char out[40];
  std::snprintf(out, sizeof out, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return out;
}

// The sum of the items' quantities; items without an integer quantity count 0
// (validation makes that impossible for built-in types).
long long item_count(const json& items) {
  long long sum = 0;
  for (const auto& item : items) {
    if (!item.is_object()) continue;
    const auto q = item.find("quantity");
    if (q != item.end() && q->is_number_integer()) sum += q->get<long long>();
  }
  return sum;
}

json make_alias(const alias_rule& rule, const json& properties, std::string_view locale) {
  json alias = json::object();
  for (const auto& [key, value] : properties.items()) alias[renamed(rule, key)] = value;

  const auto currency_it = properties.find("currency");
  const std::string currency =
      currency_it != properties.end() && currency_it->is_string() ? currency_it->get<std::string>() : std::string{};
  const auto money_text = [&](json& owner, std::string_view field) {
    if (currency.empty() || field.empty()) return;
    const auto it = owner.find(std::string{field});
    if (it == owner.end() || !it->is_number()) return;
    owner[std::string{field} + "_text"] = format_money(it->get<double>(), currency, locale);
  };
  for (const auto field : rule.money) money_text(alias, field);

  if (rule.has_items) {
    const auto items = alias.find("items");
    if (items != alias.end() && items->is_array()) {
      alias["item_count"] = item_count(*items);
      for (auto& item : *items) {
        if (item.is_object()) money_text(item, "price");
      }
    }
  }

  if (rule.type == "price_dropped") {
    const auto old_price = properties.find("old_price");
    const auto new_price = properties.find("new_price");
    if (old_price != properties.end() && new_price != properties.end() && old_price->is_number() &&
        new_price->is_number() && old_price->get<double>() > 0) {
      const double o = old_price->get<double>();
      const double n = new_price->get<double>();
      // "Rounded down" must not turn an exact 20 % into 19 % because
      // (100 - 80) / 100 * 100 is 19.999…; the epsilon absorbs that.
      const double percent = std::floor((o - n) / o * 100.0 + 1e-9);
      alias["discount_percent"] = static_cast<long long>(percent < 0 ? 0 : percent);
    }
  }
  return alias;
}

// Resolves a local "$ref" ("#/definitions/item") against the schema's root.
const json* resolve_ref(const json& root, const json& schema) {
  const auto ref = schema.find("$ref");
  if (ref == schema.end() || !ref->is_string()) return &schema;
  const auto& text = ref->get_ref<const std::string&>();
  if (text.rfind("#/", 0) != 0) return &schema;
  try {
    return &root.at(json::json_pointer{text.substr(1)});
  } catch (const json::exception&) {
    return &schema;  // a dangling ref: treat it as an opaque value
  }
}

// Lists `schema`'s properties under `prefix`, recursing into nested objects
// (not into arrays: lint accepts any path under a listed array).
void add_schema_fields(std::map<std::string, bool>& out, const json& root, const json& schema,
                       const std::string& prefix, bool parent_always, const alias_rule* rule) {
  const json& s = *resolve_ref(root, schema);
  if (!s.is_object()) return;
  const auto props = s.find("properties");
  if (props == s.end() || !props->is_object()) return;
  const auto req = s.find("required");
  const auto required = [&](const std::string& name) {
    if (req == s.end() || !req->is_array()) return false;
    for (const auto& r : *req) {
      if (r.is_string() && r.get_ref<const std::string&>() == name) return true;
    }
    return false;
  };
  for (const auto& [name, sub] : props->items()) {
    const bool always = parent_always && required(name);
    const std::string path = prefix + "." + (rule ? renamed(*rule, name) : name);
    out[path] = always;
    add_schema_fields(out, root, sub, path, always, nullptr);
  }
}

}  // namespace

std::string_view alias_for(std::string_view event_type) {
  const auto* rule = rule_for(event_type);
  return rule ? rule->alias : std::string_view{};
}

nlohmann::json builtin_properties_schema(std::string_view event_type) {
  if (event_type == "subscribed") {
    // The engine's own trigger (engine::on_subscribed): no file in
    // schemas/events/ because backends never send it.
    return json::parse(R"({
      "type": "object",
      "additionalProperties": false,
      "required": ["subscription_id"],
      "properties": {
        "subscription_id": {"type": "string"},
        "categories": {"type": "array", "items": {"type": "string"}}
      }
    })");
  }
  const std::string file = std::string{event_type} + ".schema.json";
  for (const auto& embedded : ingest::embedded_event_schemas()) {
    if (embedded.path == file) return json::parse(embedded.text);
  }
  return nullptr;
}

nlohmann::json make_context(const event_view& event, const subscriber_view& subscriber, const shop_view& shop,
                            std::string_view scenario_name, std::string_view step_name, int step_number,
                            time_point journey_started_at, std::string_view variant) {
  json ctx = json::object();
  ctx["event"] = {{"type", event.type}, {"id", event.id}, {"occurred_at", rfc3339_utc(event.occurred_at)}};
  const json properties = event.properties.is_object() ? event.properties : json::object();
  ctx["properties"] = properties;
  if (const auto* rule = rule_for(event.type)) {
    ctx[std::string{rule->alias}] = make_alias(*rule, properties, subscriber.locale);
  }

  json who = {{"locale", subscriber.locale}, {"timezone", subscriber.timezone}};
  if (!subscriber.customer_id.empty()) who["customer_id"] = subscriber.customer_id;
  ctx["subscriber"] = std::move(who);

  json journey = {{"started_at", rfc3339_utc(journey_started_at)}};
  if (step_number > 0) {
    journey["step"] = step_number;
    ctx["step"] = {{"name", step_name}};
    ctx["variant"] = variant;
  }
  ctx["journey"] = std::move(journey);
  ctx["scenario"] = {{"name", scenario_name}};
  ctx["shop"] = {{"name", shop.name}, {"url", shop.url}};
  return ctx;
}

std::map<std::string, bool> context_fields(std::string_view event_type, const nlohmann::json& properties_schema) {
  const json builtin = properties_schema.is_null() ? builtin_properties_schema(event_type) : json{};
  const json& schema = properties_schema.is_null() ? builtin : properties_schema;

  std::map<std::string, bool> out;
  for (const auto* path : {"event", "event.type", "event.id", "event.occurred_at", "properties", "subscriber",
                           "subscriber.locale", "subscriber.timezone", "journey", "journey.started_at",
                           "journey.step", "scenario", "scenario.name", "step", "step.name", "variant", "shop",
                           "shop.name", "shop.url"}) {
    out[path] = true;
  }
  out["subscriber.customer_id"] = false;
  add_schema_fields(out, schema, schema, "properties", true, nullptr);

  const auto* rule = rule_for(event_type);
  if (!rule) return out;
  const std::string alias{rule->alias};
  out[alias] = true;
  add_schema_fields(out, schema, schema, alias, true, rule);

  // Derived fields exist when their inputs can, and are always there when
  // their inputs always are.
  const auto field = [&](std::string_view property) -> std::optional<bool> {
    const auto it = out.find("properties." + std::string{property});
    if (it == out.end()) return std::nullopt;
    return it->second;
  };
  const auto both = [&](std::string_view a, std::string_view b) -> std::optional<bool> {
    const auto x = field(a);
    const auto y = field(b);
    if (!x || !y) return std::nullopt;
    return *x && *y;
  };
  for (const auto money : rule->money) {
    if (money.empty()) continue;
    if (const auto always = both(money, "currency")) out[alias + "." + std::string{money} + "_text"] = *always;
  }
  if (rule->has_items) {
    if (const auto always = field("items")) out[alias + ".item_count"] = *always;
  }
  if (rule->type == "price_dropped") {
    // The ingest check keeps new_price below old_price, so old_price > 0.
    if (const auto always = both("old_price", "new_price")) out[alias + ".discount_percent"] = *always;
  }
  return out;
}

}  // namespace webpushd::automation
