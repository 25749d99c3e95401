#pragma once
/// @file
/// @brief Automation scenarios as the engine runs them: what starts a
/// journey (trigger), what it sends and when (steps), what ends it (exits).
///
/// Marketers write scenarios in YAML files (docs/SCENARIOS.md, examples in
/// examples/scenarios/); scenario_file.hpp turns a file into a scenario_set.
/// Everything here is plain values: the engine never re-reads the file.
///
/// Terms used throughout the module:
/// - **person**: who a journey belongs to: "c:<customer id>" when the shop
///   knows the customer, else "s:<subscription public id>". A customer's
///   journey reaches every device (subscription) linked to that customer.
/// - **context**: the JSON object conditions and templates read (see
///   message.hpp, make_context): `cart.total`, `product.name`, …
/// - **anchor**: the time step offsets count from — the trigger event's
///   time, moved forward when the same journey is triggered again.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webpushd/automation/condition.hpp"
#include "webpushd/pacing/policy.hpp"

namespace webpushd::automation {

/// @brief One action button of a notification.
struct action_def {
  std::string action;  ///< identifier reported with a click ("open", "view_cart")
  std::string title;   ///< template
  std::string url;     ///< template; empty: the message's url
};

/// @brief The user-visible parts of a message, every one a Mustache template.
struct message_fields {
  std::string title;
  std::string body;
  std::string icon;
  std::string image;
  std::string badge;
  std::string url;
  std::vector<action_def> actions;
};

/// @brief A message: the default texts and their translations by locale. A
/// translation replaces only the fields it sets (a Polish one may translate
/// title and body and keep the image).
struct message_def {
  message_fields fields;
  /// @brief Overrides by locale tag ("pl", "pl-PL"); fields left empty in a
  /// translation fall back to `fields`. `actions` replace the whole list when
  /// non-empty.
  std::map<std::string, message_fields> locales;
};

/// @brief One arm of an A/B test: a whole message with a name and a weight
/// (variants.hpp says who gets which).
struct variant_def {
  std::string name;    ///< `^[a-z0-9_-]{1,32}$`, unique among its siblings
  double weight = 1;   ///< positive; shares are weight ÷ the sum of the weights
  message_def message;
};

/// @brief One step of a scenario: wait, check, send.
struct step_def {
  std::string name;              ///< unique within its scenario
  /// @brief When it is due, counted from the journey's anchor (the latest
  /// trigger). Steps are in increasing `after` order.
  std::chrono::milliseconds after{0};
  std::vector<condition> when;   ///< all must hold at send time, else the step is skipped
  std::string category;          ///< consent category required (default: the scenario's)
  message_def message;           ///< what it sends, when it has no variants
  /// @brief A/B variants (2–10) instead of `message`; the first is the
  /// baseline. Empty: the step sends `message`.
  std::vector<variant_def> variants;
  std::chrono::seconds ttl{std::chrono::hours{24}};  ///< how long the push service keeps it
  std::string urgency = "normal";                      ///< very-low | low | normal | high
};

/// @brief An event type that ends a journey.
struct exit_def {
  std::string event;             ///< event type, e.g. "purchase"
  std::vector<condition> when;   ///< over the exit event's context; all must hold
  /// @brief Context path in the exit event ("order.cart_id") whose value
  /// must equal the journey's key: a purchase of cart A ends cart A's
  /// journey, not cart B's. Empty: any event of that type of the same person
  /// ends every journey of this scenario for that person.
  std::string key;
};

/// @brief What a repeated trigger does to a running journey with the same key.
enum class retrigger_policy {
  restart,  ///< new anchor (waiting starts again), context replaced by the new event
  ignore,   ///< the running journey goes on unchanged
};

/// @brief Who a product-level event (no customer: back in stock, price drop)
/// is for: people who showed interest in the product.
struct audience_def {
  /// @brief product_viewed or cart_updated of the event's product within
  /// this window before the event. Zero: the event's own person only.
  std::chrono::milliseconds interested_within{0};
};

/// @brief What starts a journey.
struct trigger_def {
  std::string event;            ///< event type ("cart_updated", "subscribed", a custom type)
  std::vector<condition> when;  ///< over the event's context; all must hold
  audience_def audience;
};

/// @brief A step whose due time passed long ago (the daemon was down): send
/// it late, or drop it.
struct lateness_def {
  /// @brief Due more than this long ago: dropped ("missed"). Zero: never
  /// dropped for lateness (the step's TTL still applies on delivery).
  std::chrono::milliseconds max{std::chrono::hours{6}};
};

/// @brief A whole scenario.
struct scenario_def {
  std::string name;               ///< `^[a-z][a-z0-9_]{0,63}$`, unique
  std::string description;
  bool enabled = true;            ///< false: no new journeys; running ones finish
  std::string category;           ///< default consent category of its steps
  int priority = 50;              ///< 0–100; higher wins a contested slot (caps); campaigns default to 10
  trigger_def trigger;
  /// @brief Context path whose value keys the journey ("cart.id"): one
  /// journey per person and key. Empty: one journey per person.
  std::string journey_key;
  retrigger_policy on_retrigger = retrigger_policy::restart;
  /// @brief A person enters the scenario at most once per this time: no new
  /// journey starts within it after the person's last one *started* (any
  /// key). Zero: no limit.
  std::chrono::milliseconds reentry_cooldown{0};
  std::vector<exit_def> exits;
  std::vector<step_def> steps;    ///< at least one
  lateness_def late;
  /// @brief Messages of one journey share a Topic (RFC 8030 §5.4), so a
  /// newer reminder replaces an older one the device has not shown yet.
  bool topic_per_journey = true;
  /// @brief Its own caps, quiet hours, defer-or-drop, value and adaptive
  /// throttling (the shop-wide pacing applies as well).
  pacing::scenario_pacing pacing;
  std::string source_file;        ///< where it was defined (for messages)
};

/// @brief Link decoration for every URL a message carries (UTM parameters).
/// Values are templates over the context plus `scenario.name`, `step.name`,
/// `variant`.
struct utm_def {
  std::string source = "webpush";
  std::string medium = "push";
  std::string campaign = "{{scenario.name}}";
  /// The step, and the A/B variant when it has one ("first_reminder-b"), so
  /// web analytics tell the variants apart without any setting.
  std::string content = "{{step.name}}{{#variant}}-{{variant}}{{/variant}}";
  bool enabled = true;
};

/// @brief All scenarios of the daemon, as loaded (immutable once built;
/// reload swaps the whole set).
struct scenario_set {
  std::vector<scenario_def> scenarios;
  utm_def utm;
  /// @brief The scenario with `name`, or nullptr.
  const scenario_def* find(std::string_view name) const;
};

}  // namespace webpushd::automation
