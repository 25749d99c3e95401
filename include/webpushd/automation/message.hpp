#pragma once
/// @file
/// @brief From a scenario step to a push payload: the context templates
/// read, Mustache rendering (kainjow/mustache, Debian's
/// libkainjow-mustache-dev), locale-aware money (ICU), UTM link decoration,
/// and the payload the service worker shows (docs/API.md "The push payload").
///
/// ## The context
/// Conditions and templates read one JSON object:
/// ```
/// {
///   "event":      {"type", "id", "occurred_at" (RFC 3339 UTC)},
///   "properties": the event's properties exactly as sent,
///   "<alias>":    the same properties under a friendly name (built-in types),
///   "subscriber": {"locale", "timezone", "customer_id"?},
///   "journey":    {"step" (1-based), "started_at"},
///   "scenario":   {"name"}, "step": {"name"},
///   "variant":    the step's A/B variant ("" when it has none; steps only),
///   "shop":       {"name", "url"}
/// }
/// ```
/// Aliases: product_viewed, product_back_in_stock, price_dropped → `product`
/// (product_id → `product.id`); cart_updated, checkout_started → `cart`
/// (cart_id → `cart.id`, cart_url → `cart.url`); purchase → `order`
/// (order_id → `order.id`); subscribed → `subscription`. Custom types have
/// no alias (only `properties`). Derived fields, present only when their
/// inputs are: `cart.item_count` and `order.item_count` (sum of quantities),
/// `*_text` beside every money field formatted for the subscriber's locale
/// (`cart.total_text` "129,00 zł", `product.price_text`,
/// `product.old_price_text`, `product.new_price_text`,
/// `cart.items.N.price_text`), `product.discount_percent` (price_dropped,
/// whole percent rounded down).
///
/// ## Missing fields
/// A variable used outside any section (`{{product.name}}`) must be present
/// when rendered, else render() fails with `missing_field` (the engine
/// records the step as suppressed for that reason). Inside a section it may
/// be missing; a fallback is written with an inverted section:
/// `{{#product.name}}{{product.name}}{{/product.name}}{{^product.name}}your item{{/product.name}}`.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/scenario.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::automation {

// ---------------------------------------------------------------- context

/// @brief An event as the context needs it.
struct event_view {
  std::string id;
  std::string type;
  time_point occurred_at{};
  nlohmann::json properties = nlohmann::json::object();
};

/// @brief The recipient as the context needs it.
struct subscriber_view {
  std::string locale = "en";
  std::string timezone = "UTC";
  std::string customer_id;  ///< empty: omitted
};

/// @brief Shop-wide values from config (`automation.shop`).
struct shop_view {
  std::string name;
  std::string url;
};

/// @brief Builds the context described in the file comment.
/// `step_number` is 1-based; 0 leaves out `journey.step`, `step` and
/// `variant` (trigger and exit conditions are evaluated without them).
/// `variant` is the step's A/B variant (variants.hpp), "" when it has none:
/// always there in a step, so `{{variant}}` never makes a message fail.
/// Timestamps (`event.occurred_at`, `journey.started_at`) are RFC 3339 UTC
/// with milliseconds ("2026-11-23T13:10:00.000Z"). Money texts use ICU's
/// spacing verbatim: "129,00 zł" and "1.234,50 €" hold a no-break space
/// (U+00A0), so the amount never wraps away from its currency.
/// `subscriber.customer_id` is left out when empty; every other field is
/// always present (with the value given, even an empty shop name).
nlohmann::json make_context(const event_view& event, const subscriber_view& subscriber, const shop_view& shop,
                            std::string_view scenario_name, std::string_view step_name, int step_number,
                            time_point journey_started_at, std::string_view variant = {});

/// @brief The friendly alias of a built-in type ("product", "cart", "order",
/// "subscription"); empty for custom types.
std::string_view alias_for(std::string_view event_type);

/// @brief What a context built from events of `event_type` can hold:
/// dotted paths ("cart.total", "cart.items", "cart.total_text", …) mapped to
/// whether they are always present. Derived from the type's properties JSON
/// Schema (`properties_schema`: `properties`/`required`), plus the derived
/// fields and the event/subscriber/journey/scenario/step/shop fields.
/// Array items are not expanded (`cart.items` is listed; `cart.items.0.name`
/// is accepted by lint under it). Used by the scenario linter.
/// A null `properties_schema` means the built-in one (builtin_properties_schema).
/// `journey.step`, `step.name` and `variant` are listed as always present:
/// they are in every context a step renders or checks.
std::map<std::string, bool> context_fields(std::string_view event_type, const nlohmann::json& properties_schema);

/// @brief The properties JSON Schema of a built-in event type (parsed from
/// the embedded schemas/events/, or the engine's own `subscribed`:
/// `{subscription_id (required), categories: [string]}`); null for any other type.
nlohmann::json builtin_properties_schema(std::string_view event_type);

// ---------------------------------------------------------------- templates

/// @brief A variable a template reads.
struct template_variable {
  std::string name;      ///< dotted, as written ("product.name"; "." for the current item)
  bool guarded = false;  ///< inside a section or inverted section (may be missing)
  /// @brief The sections around it, outermost first (empty at top level).
  /// Inside a list section (`{{#cart.items}}{{name}}{{/cart.items}}`) a name
  /// is looked up in the item first, then outwards.
  std::vector<std::string> sections;
};

/// @brief Checks a template's syntax. Error `invalid_template` naming what is
/// wrong ("unclosed section product.name", "unmatched {{/cart}}"), with the
/// kainjow parser's message where it gives one.
result<void> check_template(std::string_view text);

/// @brief The variables a template reads, in order of first use, each
/// (name, guarded, sections) once. Section names are listed too, as guarded:
/// `{{#x}}` reads `x` but may find it missing. Comments are skipped. On a
/// template check_template refuses, the variables before the fault.
std::vector<template_variable> template_variables(std::string_view text);

/// @brief Renders a template over `context`. HTML escaping is off (push
/// notifications are plain text). Errors: `invalid_template`,
/// `missing_field` (field = the variable name).
///
/// How values print: strings as they are; integers as integers ("3");
/// other numbers with at most two decimals, trailing zeros dropped
/// (129.0 → "129", 5.5 → "5.5", 19.999 → "20"); booleans "true"/"false";
/// objects and lists print nothing. A JSON null counts as missing.
/// Sections (`{{#x}}`) skip false, null, missing, empty strings and empty
/// lists; every number is truthy, 0 included. A dotted name may index a list:
/// `{{cart.items.0.name}}`.
result<std::string> render_template(std::string_view text, const nlohmann::json& context);

// ---------------------------------------------------------------- money and links

/// @brief `amount` in `currency` (ISO 4217) as people of `locale` write it,
/// via ICU: ("pl", "PLN", 129) → "129,00 zł", ("en", "USD", 5.5) → "$5.50",
/// ("de", "EUR", 1234.5) → "1.234,50 €". Unknown locales use ICU's root.
/// Spacing is ICU's own (no-break spaces, U+00A0). A currency ICU refuses
/// (not three ASCII letters) gives "<amount with two decimals> <currency>".
std::string format_money(double amount, std::string_view currency, std::string_view locale);

/// @brief Rendered UTM parameters to add to links.
struct utm_values {
  std::string source, medium, campaign, content;
};

/// @brief Adds utm_source/medium/campaign/content (percent-encoded) to an
/// http(s) URL, keeping its fragment last; a parameter the URL already has
/// is left as it is; empty values are skipped. Other URLs are returned unchanged.
/// Values are encoded as RFC 3986 unreserved characters plus %XX (UTF-8
/// bytes), so a space is "%20" and "ł" is "%C5%82".
std::string add_utm(std::string_view url, const utm_values& utm);

// ---------------------------------------------------------------- messages

/// @brief A message ready to send.
struct rendered_message {
  std::string locale;  ///< the translation used ("en", "pl", …); the default locale for the base fields
  std::string title, body, icon, image, badge, url;
  struct action {
    std::string action, title, url;
  };
  std::vector<action> actions;
};

/// @brief The translation for a subscriber's `locale`: exact tag, then its
/// language, then `default_locale` (exact, language), then the base fields.
/// Returns the merged fields and the tag used ("" for the base fields).
std::pair<message_fields, std::string> pick_locale(const message_def& message, std::string_view locale,
                                                   std::string_view default_locale);

/// @brief Renders every field of the chosen translation and decorates the links
/// (url, action urls) with UTM values rendered from `utm`. An empty title
/// after rendering is `missing_field` ("title"). Errors as render_template;
/// an `invalid_template` error names the message field at fault ("body",
/// "actions[1].title", "utm.campaign") in `field` and in its message.
///
/// Rendered texts are trimmed of surrounding whitespace (a section that
/// renders nothing leaves no stray space). An action with an empty url
/// uses the message's url; an action whose title renders empty is dropped
/// (a button needs a label). UTM values that render empty are skipped;
/// `utm.enabled = false` leaves links as rendered.
result<rendered_message> render_message(const message_def& message, const nlohmann::json& context,
                                        std::string_view locale, std::string_view default_locale,
                                        const utm_def& utm);

/// @brief The signed delivery block the service worker reports with.
struct delivery_block {
  std::string id;      ///< delivery id ("d_…")
  std::string sig;     ///< tracking::delivery_signer::sign(id)
  std::string report;  ///< absolute URL: <public_url>/v1/deliveries/<id>/events
};

/// @brief webpushd's own payload form (docs/API.md), `tag` set to `tag`
/// when non-empty, with the delivery block. Compact JSON, keys in the
/// order of docs/API.md: title, body, icon, image, badge, tag, url,
/// actions [{action, title, url}], delivery {id, sig, report}. Empty fields
/// (and an empty actions list, and empty action urls) are left out; the
/// title and the delivery block are always there.
std::string to_payload(const rendered_message& message, const delivery_block& delivery, std::string_view tag);

}  // namespace webpushd::automation
