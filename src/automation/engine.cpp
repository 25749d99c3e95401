#include "webpushd/automation/engine.hpp"

#include <algorithm>
#include <set>

#include "webpushd/automation/condition.hpp"
#include "webpushd/automation/variants.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/tracking/beacons.hpp"
#include "webpushd/webpush/content_encryption.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;
using storage::journey_log_entry;
using storage::journey_row;
using storage::journey_state;

constexpr std::string_view subscribed_event = "subscribed";

// What a journey remembers of the event it runs on (journeys.context): enough
// to rebuild the template context at every step, in whatever locale the
// recipient has then.
json stored_context(const event_view& e) {
  return json{{"id", e.id}, {"type", e.type}, {"occurred_at", unix_millis(e.occurred_at)}, {"properties", e.properties}};
}

event_view event_from_context(const std::string& text) {
  const json j = json::parse(text, nullptr, false);
  event_view e;
  if (!j.is_object()) return e;
  e.id = j.value("id", "");
  e.type = j.value("type", "");
  e.occurred_at = from_unix_millis(j.value("occurred_at", std::int64_t{0}));
  if (j.contains("properties") && j.at("properties").is_object()) e.properties = j.at("properties");
  return e;
}

event_view view_of(const storage::stored_event& e) {
  event_view v;
  v.id = e.id;
  v.type = e.type;
  v.occurred_at = e.occurred_at;
  v.properties = json::parse(e.properties, nullptr, false);
  if (!v.properties.is_object()) v.properties = json::object();
  return v;
}

// A journey key or an exit key: strings as they are, numbers as JSON writes
// them; anything else (missing, object) is no key.
std::optional<std::string> key_text(const json& context, const std::string& path) {
  const json* v = resolve_path(context, path);
  if (v == nullptr) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  return std::nullopt;
}

const condition* first_failing(const std::vector<condition>& conditions, const json& context) {
  for (const auto& c : conditions) {
    if (!holds(c, context)) return &c;
  }
  return nullptr;
}

// The products an event shows interest in: the viewed one, or every item of a cart.
std::vector<std::string> interest_products(const event_view& e) {
  std::vector<std::string> out;
  const auto& p = e.properties;
  if (e.type == "product_viewed") {
    if (p.contains("product_id") && p.at("product_id").is_string()) out.push_back(p.at("product_id").get<std::string>());
  } else if (e.type == "cart_updated" || e.type == "checkout_started") {
    if (p.contains("items") && p.at("items").is_array()) {
      for (const auto& item : p.at("items")) {
        if (item.is_object() && item.contains("product_id") && item.at("product_id").is_string()) {
          out.push_back(item.at("product_id").get<std::string>());
        }
      }
    }
  }
  return out;
}

// RFC 8030 §5.4: at most 32 characters of the base64url alphabet. Derived
// from the journey id, so every message of one journey shares it and no
// two journeys do; hashed so it tells the push service nothing.
std::string journey_topic(std::int64_t journey_id) {
  const auto text = "journey:" + std::to_string(journey_id);
  const auto digest = crypto::sha256(as_bytes(text));
  return base64url_encode(byte_view{digest.data(), 18});  // 24 characters
}

// What the outbox, the counters and the variant assignment call a step.
std::string step_source(const scenario_def& sc, const step_def& step) { return "scenario:" + sc.name + "/" + step.name; }

}  // namespace

std::string person_of(const storage::subscriber_record& subscriber) {
  if (!subscriber.customer_id.empty()) return "c:" + subscriber.customer_id;
  return "s:" + subscriber.public_id;
}

struct engine::impl {
  mutable std::mutex mutex;  // guards `scenarios` (the pointer, not the set), options.public_url and options.shop
  std::shared_ptr<const scenario_set> scenarios;
  engine_options options;
  const tracking::delivery_signer& signer;
  journey_observer observer;  // set before use; read without the mutex

  impl(std::shared_ptr<const scenario_set> s, engine_options o, const tracking::delivery_signer& sig)
      : scenarios(std::move(s)), options(std::move(o)), signer(sig) {}

  std::shared_ptr<const scenario_set> snapshot() const {
    std::lock_guard lock(mutex);
    return scenarios;
  }

  std::string report_base() const {
    std::lock_guard lock(mutex);
    return options.public_url;
  }

  // One reaction's working set: the stores on the caller's connection.
  struct session {
    storage::database& db;
    std::unique_ptr<storage::journey_store> journeys;
    std::unique_ptr<storage::subscriber_store> subscribers;
    std::unique_ptr<storage::outbox_store> outbox;
    std::unique_ptr<storage::recall_store> recalls;
    time_point now;
    explicit session(storage::database& d, time_point n)
        : db(d),
          journeys(storage::make_sqlite_journey_store(d)),
          subscribers(storage::make_sqlite_subscriber_store(d)),
          outbox(storage::make_sqlite_outbox_store(d)),
          recalls(storage::make_sqlite_recall_store(d)),
          now(n) {}
  };

  subscriber_view view_of_subscriber(const storage::subscriber_record& s) const {
    subscriber_view v;
    v.locale = s.locale.empty() ? options.default_locale : s.locale;
    v.timezone = s.timezone.empty() ? options.default_timezone : s.timezone;
    v.customer_id = s.customer_id;
    return v;
  }

  subscriber_view default_subscriber(const std::string& person) const {
    subscriber_view v;
    v.locale = options.default_locale;
    v.timezone = options.default_timezone;
    if (person.rfind("c:", 0) == 0) v.customer_id = person.substr(2);
    return v;
  }

  // The active subscriptions a person's messages go to.
  result<std::vector<storage::subscriber_record>> recipients(session& s, const std::string& person) const {
    std::vector<storage::subscriber_record> out;
    if (person.rfind("c:", 0) == 0) {
      auto list = s.subscribers->list_by_customer(person.substr(2));
      if (!list) return tl::unexpected(std::move(list.error()));
      for (auto& r : *list) {
        if (r.state == storage::subscription_state::active) out.push_back(std::move(r));
      }
    } else if (person.rfind("s:", 0) == 0) {
      auto one = s.subscribers->find_by_public_id(person.substr(2));
      if (!one) return tl::unexpected(std::move(one.error()));
      if (*one && (*one)->state == storage::subscription_state::active) out.push_back(std::move(**one));
    }
    return out;
  }

  // The person an event is about: its customer, else its subscription's
  // customer, else the subscription itself. None for product-level events.
  result<std::optional<std::string>> person_of_event(session& s, const storage::stored_event& e) const {
    if (!e.customer_id.empty()) return std::optional<std::string>{"c:" + e.customer_id};
    if (e.subscription_id.empty()) return std::optional<std::string>{};
    auto sub = s.subscribers->find_by_public_id(e.subscription_id);
    if (!sub) return tl::unexpected(std::move(sub.error()));
    if (*sub && !(*sub)->customer_id.empty()) return std::optional<std::string>{"c:" + (*sub)->customer_id};
    return std::optional<std::string>{"s:" + e.subscription_id};
  }

  shop_view shop() const {
    std::lock_guard lock(mutex);
    return options.shop;
  }

  json context_for(const event_view& e, const subscriber_view& who, const scenario_def& sc, const step_def* step,
                   int step_number, time_point started, const variant_def* variant = nullptr) const {
    return make_context(e, who, shop(), sc.name, step ? std::string_view{step->name} : std::string_view{},
                        step_number, started, variant ? std::string_view{variant->name} : std::string_view{});
  }

  result<void> log(session& s, std::int64_t journey_id, const std::string& scenario, const std::string& step,
                   const std::string& person, std::string outcome, std::string reason,
                   std::optional<std::int64_t> subscription_id = std::nullopt,
                   std::optional<std::int64_t> outbox_id = std::nullopt) const {
    journey_log_entry e;
    e.journey_id = journey_id;
    e.scenario = scenario;
    e.step = step;
    e.person = person;
    e.subscription_id = subscription_id;
    e.outcome = std::move(outcome);
    e.reason = std::move(reason);
    e.outbox_id = outbox_id;
    e.at = s.now;
    auto logged = s.journeys->log(e);
    if (logged && observer) observer(e.scenario, e.outcome);
    return logged;
  }

  // Ends one journey, cancelling what it queued and has not sent yet. An
  // exit also recalls what push services accepted but may not have
  // delivered: the shopper who just bought must not get the reminder. A
  // journey cancelled by a reload or a merge says nothing about the shopper,
  // and a completed one has nothing unwanted.
  result<void> end_journey(session& s, const journey_row& j, journey_state state, const std::string& reason,
                           const std::string& outcome) const {
    if (auto r = s.journeys->end(j.id, state, reason, s.now); !r) return r;
    const std::string ended = "journey " + outcome + ": " + reason;
    auto cancelled = s.journeys->cancel_queued_messages(j.id, ended, s.now);
    if (!cancelled) return tl::unexpected(std::move(cancelled.error()));
    auto recalled = state == journey_state::exited ? s.recalls->request_for_journey(j.id, ended, s.now)
                                                   : result<std::size_t>{0};
    if (!recalled) return tl::unexpected(std::move(recalled.error()));
    std::string counted;
    if (*cancelled > 0) counted = std::to_string(*cancelled) + " queued message(s) cancelled";
    if (*recalled > 0) counted += (counted.empty() ? "" : ", ") + std::to_string(*recalled) + " recall(s) requested";
    return log(s, j.id, j.scenario, "", j.person, outcome, counted.empty() ? reason : reason + " (" + counted + ")");
  }

  result<void> apply_exits(session& s, const scenario_def& sc, const event_view& e, const std::string& person) const {
    for (const auto& exit : sc.exits) {
      if (exit.event != e.type) continue;
      const json ctx = context_for(e, default_subscriber(person), sc, nullptr, 0, s.now);
      if (first_failing(exit.when, ctx) != nullptr) continue;
      std::optional<std::string> key;
      if (!exit.key.empty()) {
        key = key_text(ctx, exit.key);
        if (!key) continue;  // an exit keyed on a field this event lacks ends nothing
      }
      auto running = s.journeys->active_for_person(sc.name, person);
      if (!running) return tl::unexpected(std::move(running.error()));
      for (const auto& j : *running) {
        if (key && j.journey_key != *key) continue;
        if (auto r = end_journey(s, j, journey_state::exited, e.type, "exited"); !r) return r;
      }
    }
    return {};
  }

  result<void> start_or_restart(session& s, const scenario_def& sc, const event_view& e, const json& ctx,
                                const std::string& person) const {
    std::string key;
    if (!sc.journey_key.empty()) {
      auto k = key_text(ctx, sc.journey_key);
      if (!k) return log(s, 0, sc.name, "", person, "skipped", "journey key " + sc.journey_key + " missing in the event");
      key = *k;
    }
    // Events may arrive late or with a clock ahead of ours: anchor on the
    // event's time, but never in the future.
    const time_point anchor = std::min(e.occurred_at, s.now);
    auto running = s.journeys->find_active(sc.name, person, key);
    if (!running) return tl::unexpected(std::move(running.error()));
    if (*running) {
      if (sc.on_retrigger == retrigger_policy::ignore) return {};
      journey_row j = **running;
      if (anchor < j.anchor_at) return {};  // an older event than the one the journey runs on
      j.anchor_at = anchor;
      j.context = stored_context(e).dump();
      const auto* step = find_step(sc, j.step_name);
      if (step == nullptr) return {};  // fire_due ends it (step removed)
      j.next_at = anchor + step->after;
      if (auto r = s.journeys->reschedule(j, s.now); !r) return r;
      return log(s, j.id, sc.name, j.step_name, person, "restarted", "new " + e.type + " " + e.id);
    }
    if (sc.reentry_cooldown.count() > 0) {
      auto last = s.journeys->last_started(sc.name, person);
      if (!last) return tl::unexpected(std::move(last.error()));
      if (*last && s.now - **last < sc.reentry_cooldown) {
        return log(s, 0, sc.name, "", person, "suppressed",
                   "re-entry cooldown: entered less than " + format_duration(sc.reentry_cooldown) + " ago");
      }
    }
    journey_row j;
    j.scenario = sc.name;
    j.person = person;
    j.journey_key = key;
    j.next_step = 0;
    j.step_name = sc.steps.front().name;
    j.anchor_at = anchor;
    j.next_at = anchor + sc.steps.front().after;
    j.context = stored_context(e).dump();
    j.started_at = s.now;
    auto id = s.journeys->insert(j);
    if (!id) return tl::unexpected(std::move(id.error()));
    // A synthetic `subscribed` event's id says nothing a reader needs.
    return log(s, *id, sc.name, "", person, "entered", e.type == subscribed_event ? e.type : e.type + " " + e.id);
  }

  static const step_def* find_step(const scenario_def& sc, const std::string& name) {
    for (const auto& st : sc.steps) {
      if (st.name == name) return &st;
    }
    return nullptr;
  }

  result<void> apply_trigger(session& s, const scenario_def& sc, const event_view& e,
                             const std::optional<std::string>& person) const {
    if (!sc.enabled || sc.trigger.event != e.type || sc.steps.empty()) return {};
    const json ctx = context_for(e, person ? default_subscriber(*person) : default_subscriber(""), sc, nullptr, 0, s.now);
    if (first_failing(sc.trigger.when, ctx) != nullptr) return {};

    std::vector<std::string> persons;
    if (person) persons.push_back(*person);
    if (sc.trigger.audience.interested_within.count() > 0) {
      const json* product = resolve_path(e.properties, "product_id");
      if (product != nullptr && product->is_string()) {
        auto interested = s.journeys->interested_persons(product->get<std::string>(),
                                                         e.occurred_at - sc.trigger.audience.interested_within,
                                                         options.max_audience + 1);
        if (!interested) return tl::unexpected(std::move(interested.error()));
        if (interested->size() > options.max_audience) {
          interested->resize(options.max_audience);
          if (auto r = log(s, 0, sc.name, "", "", "skipped",
                           "audience larger than " + std::to_string(options.max_audience) + "; the rest skipped");
              !r) {
            return r;
          }
        }
        for (auto& p : *interested) {
          if (std::find(persons.begin(), persons.end(), p) == persons.end()) persons.push_back(std::move(p));
        }
      }
    }
    for (const auto& p : persons) {
      if (auto r = start_or_restart(s, sc, e, ctx, p); !r) return r;
    }
    return {};
  }

  result<void> react(session& s, const event_view& e, const std::optional<std::string>& person) const {
    const auto set = snapshot();
    if (person) {
      for (const auto& product : interest_products(e)) {
        if (auto r = s.journeys->record_interest(product, *person, std::min(e.occurred_at, s.now)); !r) return r;
      }
      // Exits first: a purchase ends the cart journey before anything it
      // might also trigger (a review request) starts.
      for (const auto& sc : set->scenarios) {
        if (auto r = apply_exits(s, sc, e, *person); !r) return r;
      }
    }
    for (const auto& sc : set->scenarios) {
      if (auto r = apply_trigger(s, sc, e, person); !r) return r;
    }
    return {};
  }

  // ---- firing

  result<void> advance(session& s, const scenario_def& sc, journey_row j, std::size_t index) const {
    if (index + 1 >= sc.steps.size()) {
      if (auto r = s.journeys->end(j.id, journey_state::completed, "all steps done", s.now); !r) return r;
      return log(s, j.id, sc.name, "", j.person, "completed", "");
    }
    const auto& next = sc.steps[index + 1];
    j.next_step = static_cast<int>(index + 1);
    j.step_name = next.name;
    j.next_at = j.anchor_at + next.after;
    return s.journeys->reschedule(j, s.now);
  }

  // Sends one step to every recipient that may have it; returns how many
  // messages were enqueued. Every device gets the journey's variant.
  result<std::size_t> send_step(session& s, const scenario_def& sc, const journey_row& j, const step_def& step,
                                std::size_t index, const event_view& e, const variant_def* variant,
                                const std::vector<storage::subscriber_record>& to) const {
    const auto set = snapshot();
    const std::string category = step.category.empty() ? sc.category : step.category;
    const message_def& message = variant ? variant->message : step.message;
    // The journey log tells which variant a line concerns (there is no column for it).
    const auto noted = [variant](std::string reason) {
      return variant ? std::move(reason) + " (variant " + variant->name + ")" : std::move(reason);
    };
    std::size_t enqueued = 0;
    for (const auto& r : to) {
      if (!category.empty() && std::find(r.categories.begin(), r.categories.end(), category) == r.categories.end()) {
        if (auto l = log(s, j.id, sc.name, step.name, j.person, "suppressed", "consent missing: " + category, r.id); !l) {
          return tl::unexpected(std::move(l.error()));
        }
        continue;
      }
      const auto who = view_of_subscriber(r);
      const json ctx = context_for(e, who, sc, &step, static_cast<int>(index + 1), j.started_at, variant);
      auto rendered = render_message(message, ctx, who.locale, options.default_locale, set->utm);
      if (!rendered) {
        const auto& err = rendered.error();
        const std::string why =
            err.code == "missing_field" ? "missing field: " + err.field : err.code + ": " + err.message;
        if (auto l = log(s, j.id, sc.name, step.name, j.person, "suppressed", noted(why), r.id); !l) {
          return tl::unexpected(std::move(l.error()));
        }
        continue;
      }
      delivery_block block;
      block.id = tracking::delivery_signer::new_delivery_id();
      block.sig = signer.sign(block.id);
      block.report = report_base() + "/v1/deliveries/" + block.id + "/events";
      const std::string topic = sc.topic_per_journey ? journey_topic(j.id) : std::string{};
      const std::string payload = to_payload(*rendered, block, topic);
      if (payload.size() > webpush::max_plaintext_size) {
        if (auto l = log(s, j.id, sc.name, step.name, j.person, "suppressed",
                         noted("message too large: " + std::to_string(payload.size()) + " bytes, at most " +
                               std::to_string(webpush::max_plaintext_size)),
                         r.id);
            !l) {
          return tl::unexpected(std::move(l.error()));
        }
        continue;
      }
      storage::new_outbox_message m;
      m.subscription_id = r.id;
      m.payload = bytes(payload.begin(), payload.end());
      m.ttl_seconds = static_cast<std::int32_t>(step.ttl.count());
      m.urgency = step.urgency;
      m.topic = topic;
      m.source = step_source(sc, step);
      m.variant = variant ? variant->name : std::string{};
      m.category = category;
      m.journey_id = j.id;
      m.delivery_id = block.id;
      // Pacing: who wins a contested slot, and how long a cap or quiet
      // hours may hold it (counted from when the step was due).
      m.priority = sc.priority;
      if (!sc.pacing.value_field.empty()) {
        if (const json* v = resolve_path(ctx, sc.pacing.value_field); v != nullptr && v->is_number()) {
          m.value = v->get<double>();
        }
      }
      if (sc.pacing.defer) m.defer_limit = j.next_at.value_or(s.now) + sc.pacing.defer_max;
      // A newer step replaces an older one still waiting (deferred by a cap
      // or quiet hours): the device would replace it anyway (same Topic),
      // and two reminders in a row is what pacing is there to prevent.
      auto replaced = s.journeys->cancel_queued_messages(j.id, "replaced by step " + step.name, s.now, r.id);
      if (!replaced) return tl::unexpected(std::move(replaced.error()));
      auto ids = s.outbox->enqueue({m}, s.now);
      if (!ids) return tl::unexpected(std::move(ids.error()));
      // "pl", or "pl, variant b": the locale used, and the variant sent.
      const std::string sent = variant ? rendered->locale + ", variant " + variant->name : rendered->locale;
      if (auto l = log(s, j.id, sc.name, step.name, j.person, "sent", sent, r.id, ids->front()); !l) {
        return tl::unexpected(std::move(l.error()));
      }
      ++enqueued;
    }
    return enqueued;
  }

  result<std::size_t> fire_one(session& s, const journey_row& j) const {
    const auto set = snapshot();
    const scenario_def* sc = set->find(j.scenario);
    if (sc == nullptr) {
      if (auto r = end_journey(s, j, journey_state::cancelled, "scenario removed", "cancelled"); !r) {
        return tl::unexpected(std::move(r.error()));
      }
      return 0;
    }
    const step_def* step = find_step(*sc, j.step_name);
    if (step == nullptr) {
      if (auto r = end_journey(s, j, journey_state::cancelled, "step " + j.step_name + " removed", "cancelled"); !r) {
        return tl::unexpected(std::move(r.error()));
      }
      return 0;
    }
    const auto index = static_cast<std::size_t>(step - sc->steps.data());
    const time_point due = j.next_at.value_or(s.now);
    std::size_t enqueued = 0;
    if (sc->late.max.count() > 0 && s.now - due > sc->late.max) {
      const auto late = std::chrono::duration_cast<std::chrono::milliseconds>(s.now - due);
      if (auto r = log(s, j.id, sc->name, step->name, j.person, "skipped",
                       "missed: " + format_duration(late) + " late (limit " + format_duration(sc->late.max) + ")");
          !r) {
        return tl::unexpected(std::move(r.error()));
      }
    } else {
      const event_view e = event_from_context(j.context);
      auto to = recipients(s, j.person);
      if (!to) return tl::unexpected(std::move(to.error()));
      // Drawn from the journey, not the device (variants.hpp): every device
      // gets the same variant, and a restart or a reload that keeps the
      // weights draws the same one again.
      const variant_def* variant = step->variants.empty()
                                       ? nullptr
                                       : &assign_variant(step->variants, step_source(*sc, *step), j.person, j.journey_key);
      const auto who = to->empty() ? default_subscriber(j.person) : view_of_subscriber(to->front());
      const json ctx = context_for(e, who, *sc, step, static_cast<int>(index + 1), j.started_at, variant);
      if (const auto* failed = first_failing(step->when, ctx)) {
        if (auto r = log(s, j.id, sc->name, step->name, j.person, "skipped", "condition not met: " + failed->text); !r) {
          return tl::unexpected(std::move(r.error()));
        }
      } else if (to->empty()) {
        if (auto r = log(s, j.id, sc->name, step->name, j.person, "suppressed", "no active subscription"); !r) {
          return tl::unexpected(std::move(r.error()));
        }
      } else {
        auto sent = send_step(s, *sc, j, *step, index, e, variant, *to);
        if (!sent) return tl::unexpected(std::move(sent.error()));
        enqueued = *sent;
      }
    }
    if (auto r = advance(s, *sc, j, index); !r) return tl::unexpected(std::move(r.error()));
    return enqueued;
  }
};

engine::engine(std::shared_ptr<const scenario_set> scenarios, engine_options options,
               const tracking::delivery_signer& signer)
    : impl_(std::make_shared<impl>(scenarios ? std::move(scenarios) : std::make_shared<const scenario_set>(),
                                   std::move(options), signer)) {}

void engine::set_scenarios(std::shared_ptr<const scenario_set> scenarios) {
  std::lock_guard lock(impl_->mutex);
  impl_->scenarios = scenarios ? std::move(scenarios) : std::make_shared<const scenario_set>();
}

void engine::set_shop(shop_view shop) {
  std::lock_guard lock(impl_->mutex);
  impl_->options.shop = std::move(shop);
}

void engine::set_public_url(std::string url) {
  std::lock_guard lock(impl_->mutex);
  impl_->options.public_url = std::move(url);
}

std::shared_ptr<const scenario_set> engine::scenarios() const { return impl_->snapshot(); }

void engine::set_journey_observer(journey_observer observer) { impl_->observer = std::move(observer); }

result<void> engine::on_events(storage::database& db, const std::vector<storage::stored_event>& events,
                               time_point now) {
  impl::session s(db, now);
  for (const auto& stored : events) {
    auto person = impl_->person_of_event(s, stored);
    if (!person) return tl::unexpected(std::move(person.error()));
    if (auto r = impl_->react(s, view_of(stored), *person); !r) return r;
  }
  return {};
}

result<void> engine::on_subscribed(storage::database& db, const storage::subscriber_record& subscriber,
                                   time_point now) {
  impl::session s(db, now);
  event_view e;
  e.type = std::string{subscribed_event};
  e.id = "subscribed:" + subscriber.public_id + ":" + std::to_string(unix_millis(now));
  e.occurred_at = now;
  e.properties = json{{"subscription_id", subscriber.public_id}, {"categories", subscriber.categories}};
  return impl_->react(s, e, person_of(subscriber));
}

result<void> engine::on_customer_linked(storage::database& db, const storage::subscriber_record& subscriber,
                                        time_point now) {
  if (subscriber.customer_id.empty() || subscriber.public_id.empty()) return {};
  impl::session s(db, now);
  const std::string from = "s:" + subscriber.public_id;
  const std::string to = "c:" + subscriber.customer_id;
  auto mine = s.journeys->active_for_person("", from);
  if (!mine) return tl::unexpected(std::move(mine.error()));
  for (const auto& j : *mine) {
    auto theirs = s.journeys->find_active(j.scenario, to, j.journey_key);
    if (!theirs) return tl::unexpected(std::move(theirs.error()));
    if (*theirs) {
      if (auto r = impl_->end_journey(s, j, journey_state::cancelled, "merged into the customer's journey", "cancelled");
          !r) {
        return r;
      }
    } else if (auto r = s.journeys->move_to_person(j.id, to, now); !r) {
      return r;
    }
  }
  return s.journeys->move_interest(from, to);
}

result<fire_report> engine::fire_due(storage::database& db, time_point now, std::size_t limit) {
  impl::session s(db, now);
  auto due = s.journeys->due(now, limit);
  if (!due) return tl::unexpected(std::move(due.error()));
  fire_report report;
  for (const auto& j : *due) {
    auto enqueued = impl_->fire_one(s, j);
    if (!enqueued) return tl::unexpected(std::move(enqueued.error()));
    ++report.journeys;
    report.enqueued += *enqueued;
  }
  return report;
}

result<std::optional<time_point>> engine::next_due(storage::database& db) {
  return storage::make_sqlite_journey_store(db)->next_due();
}

}  // namespace webpushd::automation
