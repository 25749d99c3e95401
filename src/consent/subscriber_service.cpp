#include "webpushd/consent/subscriber_service.hpp"

#include <date/date.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/storage/automation_data.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/tracking_store.hpp"

namespace webpushd::consent {
namespace {

using storage::consent_action;
using json = nlohmann::json;

// A request origin after validation: what the ledger stores.
struct checked_origin {
  std::string source;
  std::string ip_truncated;
};

result<checked_origin> check_origin(const request_origin& o) {
  auto source = normalise_source(o.source);
  if (!source) return tl::unexpected(std::move(source.error()));
  auto ip = truncate_ip(o.ip);
  if (!ip) return tl::unexpected(std::move(ip.error()));
  return checked_origin{std::move(*source), std::move(*ip)};
}

error not_found(std::string field = "id") {
  return error{"not_found", "no such subscription, or the token does not match", std::move(field)};
}

// The subscriber the token belongs to; `not_found` alike for an unknown id
// and a wrong token.
result<storage::subscriber_record> authenticate(storage::subscriber_store& store, const std::string& id,
                                                const std::string& token) {
  auto found = store.verify_token(id, token);
  if (!found) return tl::unexpected(std::move(found.error()));
  if (!*found) return tl::unexpected(not_found());
  return std::move(**found);
}

// Submits typed work; a refused submit (queue full, stopping) is reported
// through `done` too, so callers have exactly one place to look.
template <class T>
void run(storage::write_queue& writer, std::function<result<T>(storage::database&)> work, callback<T> done) {
  auto submitted = writer.submit_value<T>(std::move(work), done);
  if (!submitted) done(tl::unexpected(std::move(submitted.error())));
}

void run_void(storage::write_queue& writer, std::function<result<void>(storage::database&)> work,
              callback<void> done) {
  auto submitted = writer.submit(std::move(work), done);
  if (!submitted) done(tl::unexpected(std::move(submitted.error())));
}

result<void> append_entry(storage::database& db, const std::string& public_id, consent_action action,
                          std::vector<std::string> before, std::vector<std::string> after,
                          std::string text_version, const checked_origin& origin, time_point now) {
  storage::new_ledger_entry e;
  e.subscription_public_id = public_id;
  e.at = now;
  e.action = action;
  e.categories_before = std::move(before);
  e.categories_after = std::move(after);
  e.source = origin.source;
  e.text_version = std::move(text_version);
  e.ip_truncated = origin.ip_truncated;
  auto appended = storage::make_sqlite_consent_ledger_store(db)->append(e);
  if (!appended) return tl::unexpected(std::move(appended.error()));
  return {};
}

// Moves a subscriber to a new endpoint and records it in the ledger; a
// separate subscriber that already held the new endpoint is retired (and its
// unsubscription recorded too).
result<subscribe_outcome> move_and_record(storage::database& db, storage::subscriber_store& store, std::int64_t row_id,
                                          const std::string& endpoint, const std::string& p256dh,
                                          const std::string& auth, const checked_origin& origin, time_point now) {
  auto moved = store.move_endpoint(row_id, endpoint, p256dh, auth, now);
  if (!moved) return tl::unexpected(std::move(moved.error()));
  const auto& s = moved->subscriber;
  if (auto r = append_entry(db, s.public_id, consent_action::resubscribe, s.categories, s.categories,
                            s.consent_text_version, origin, now);
      !r) {
    return tl::unexpected(std::move(r.error()));
  }
  if (moved->retired && !moved->retired->public_id.empty()) {
    const auto& gone = *moved->retired;
    if (auto r = append_entry(db, gone.public_id, consent_action::unsubscribe, gone.categories, {},
                              gone.consent_text_version, origin, now);
        !r) {
      return tl::unexpected(std::move(r.error()));
    }
  }
  return subscribe_outcome{s.public_id, {}, false};
}

// Erases one subscriber and records it; shared by both erase operations.
// `customer_data_too`: also the automation data of its customer (see
// erase_subscription in the header for when).
result<erase_outcome> erase_one(storage::database& db, const storage::subscriber_record& s,
                                const checked_origin& origin, time_point now, bool customer_data_too) {
  erase_outcome out;
  if (s.state == storage::subscription_state::erased) return out;
  auto removed = storage::make_sqlite_subscriber_store(db)->erase(s.id, now);
  if (!removed) return tl::unexpected(std::move(removed.error()));
  // The shop's events about this person (views, carts, orders) go too.
  if (auto events = storage::make_sqlite_event_store(db)->erase_for(s.customer_id, s.public_id); !events) {
    return tl::unexpected(std::move(events.error()));
  }
  // And what the scenario engine kept: journeys (with their timers), their
  // log, product interest; and the log of messages to this device in the
  // customer's journeys that stay.
  std::vector<std::string> persons;
  if (!s.public_id.empty()) persons.push_back(storage::subscriber_person(s.public_id));
  if (customer_data_too && !s.customer_id.empty()) persons.push_back(storage::customer_person(s.customer_id));
  if (auto automation = storage::erase_person_data(db, persons, {s.id}); !automation) {
    return tl::unexpected(std::move(automation.error()));
  }
  if (!s.public_id.empty()) {
    auto r = append_entry(db, s.public_id, consent_action::erase, removed->categories_before, {}, s.consent_text_version,
                          origin, now);
    if (!r) return tl::unexpected(std::move(r.error()));
  }
  out.subscriptions_erased = 1;
  out.messages_cancelled = removed->messages_cancelled;
  return out;
}


json text_or_null(const std::string& s);

// The shop's events about a person, for the GDPR exports.
result<json> events_json(storage::database& db, const std::string& customer_id, const std::string& public_id) {
  auto stored = storage::make_sqlite_event_store(db)->list_for(customer_id, public_id);
  if (!stored) return tl::unexpected(std::move(stored.error()));
  json events = json::array();
  for (const auto& e : *stored) {
    events.push_back({{"id", e.id},
                      {"type", e.type},
                      {"customer_id", text_or_null(e.customer_id)},
                      {"subscription_id", text_or_null(e.subscription_id)},
                      {"occurred_at", format_rfc3339(e.occurred_at)},
                      {"received_at", format_rfc3339(e.received_at)},
                      {"properties", json::parse(e.properties, nullptr, false)}});
  }
  return events;
}

json optional_time(const std::optional<time_point>& t) { return t ? json(format_rfc3339(*t)) : json(nullptr); }

// The scenario engine's data about these persons, for the GDPR exports:
// {"journeys": […], "product_interest": […]} merged into `doc`.
result<void> put_automation(json& doc, storage::database& db, const std::vector<std::string>& persons) {
  auto journeys = storage::list_person_journeys(db, persons);
  if (!journeys) return tl::unexpected(std::move(journeys.error()));
  json list = json::array();
  for (const auto& j : *journeys) {
    json log = json::array();
    for (const auto& l : j.log) {
      log.push_back({{"step", l.step},
                     {"outcome", l.outcome},
                     {"reason", text_or_null(l.reason)},
                     {"message_id", l.outbox_id ? json(*l.outbox_id) : json(nullptr)},
                     {"at", format_rfc3339(l.at)}});
    }
    auto context = json::parse(j.context, nullptr, false);
    list.push_back({{"scenario", j.scenario},
                    {"person", j.person},
                    {"key", j.journey_key},
                    {"state", storage::to_string(j.state)},
                    {"step", j.next_step},
                    {"next_at", optional_time(j.next_at)},
                    {"started_at", format_rfc3339(j.started_at)},
                    {"updated_at", format_rfc3339(j.updated_at)},
                    {"ended_at", optional_time(j.ended_at)},
                    {"end_reason", text_or_null(j.end_reason)},
                    {"context", context.is_discarded() ? json(j.context) : std::move(context)},
                    {"log", std::move(log)}});
  }
  auto interest = storage::list_person_interest(db, persons);
  if (!interest) return tl::unexpected(std::move(interest.error()));
  json products = json::array();
  for (const auto& i : *interest) {
    products.push_back({{"product_id", i.product_id}, {"person", i.person}, {"at", format_rfc3339(i.at)}});
  }
  doc["journeys"] = std::move(list);
  doc["product_interest"] = std::move(products);
  return {};
}

// What tracking keeps about one device, for the GDPR exports: the reports
// its service worker sent, its latest shown and clicked pushes, and the
// purchases credited to them.
result<json> tracking_json(storage::database& db, std::int64_t subscription_id) {
  auto store = storage::make_sqlite_tracking_store(db);
  auto reports = store->reports_of(subscription_id);
  if (!reports) return tl::unexpected(std::move(reports.error()));
  json report_list = json::array();
  for (const auto& r : *reports) {
    report_list.push_back({{"message_id", r.outbox_id},
                           {"type", r.type},
                           {"action", text_or_null(r.action)},
                           {"at", format_rfc3339(r.at)}});
  }
  auto touches = store->touches({subscription_id});
  if (!touches) return tl::unexpected(std::move(touches.error()));
  const auto touch_json = [](const std::optional<storage::touch>& t) {
    return t ? json{{"message_id", t->outbox_id}, {"at", format_rfc3339(t->at)}} : json(nullptr);
  };
  const auto none = storage::subscription_touches{};
  const auto& latest = touches->empty() ? none : touches->front();
  auto conversions = store->conversions_of(subscription_id);
  if (!conversions) return tl::unexpected(std::move(conversions.error()));
  json conversion_list = json::array();
  for (const auto& c : *conversions) {
    conversion_list.push_back({{"event_id", c.event_id},
                               {"kind", c.kind},
                               {"message_id", c.outbox_id},
                               {"source", c.source},
                               {"step", text_or_null(c.step)},
                               {"variant", text_or_null(c.variant)},
                               {"touch_at", format_rfc3339(c.touch_at)},
                               {"occurred_at", format_rfc3339(c.occurred_at)},
                               {"revenue", static_cast<double>(c.revenue) / 100.0},
                               {"currency", c.currency}});
  }
  return json{{"reports", std::move(report_list)},
              {"last_shown", touch_json(latest.shown)},
              {"last_clicked", touch_json(latest.clicked)},
              {"conversions", std::move(conversion_list)}};
}

json text_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

const char* state_text(storage::subscription_state s) {
  switch (s) {
    case storage::subscription_state::active: return "active";
    case storage::subscription_state::gone: return "gone";
    case storage::subscription_state::erased: return "erased";
  }
  return "unknown";
}

json categories_json(const std::string& canonical) {
  auto parsed = json::parse(canonical, nullptr, false);
  return parsed.is_discarded() ? json(canonical) : parsed;
}

// A payload is shown as JSON when it is JSON (the usual notification), else
// as base64url; either way the export stays valid UTF-8.
void put_payload(json& out, const bytes& payload) {
  auto parsed = json::parse(payload.begin(), payload.end(), nullptr, false);
  if (!parsed.is_discarded()) {
    out["payload"] = std::move(parsed);
  } else {
    out["payload_base64url"] = base64url_encode(payload);
  }
}

}  // namespace

result<std::unique_ptr<subscriber_service>> subscriber_service::create(consent_config config,
                                                                       delivery::endpoint_rules rules,
                                                                       storage::write_queue& writer,
                                                                       storage::database reader, const clock& clk) {
  if (auto r = validate_consent_config(config); !r) return tl::unexpected(std::move(r.error()));
  return std::unique_ptr<subscriber_service>(
      new subscriber_service(std::move(config), std::move(rules), writer, std::move(reader), clk));
}

subscriber_service::subscriber_service(consent_config config, delivery::endpoint_rules rules,
                                       storage::write_queue& writer, storage::database reader, const clock& clk)
    : config_(std::move(config)), rules_(std::move(rules)), writer_(writer), clock_(clk), reader_(std::move(reader)) {}

subscriber_service::~subscriber_service() = default;

void subscriber_service::set_lifecycle_hooks(lifecycle_hooks hooks) { hooks_ = std::move(hooks); }

namespace {

// Calls on_withdrawn when `now_granted` lacks some of `before`.
result<void> report_withdrawal(const decltype(lifecycle_hooks::on_withdrawn)& on_withdrawn, storage::database& db,
                               const storage::subscriber_record& s, const std::vector<std::string>& before,
                               time_point now) {
  if (!on_withdrawn) return {};
  std::vector<std::string> withdrawn;
  for (const auto& c : before) {
    if (std::find(s.categories.begin(), s.categories.end(), c) == s.categories.end()) withdrawn.push_back(c);
  }
  if (withdrawn.empty()) return {};
  return on_withdrawn(db, s, "withdraw", withdrawn, now);
}

}  // namespace

void subscriber_service::subscribe(subscribe_request request, callback<subscribe_outcome> done) {
  auto sub = validate_push_subscription(request.endpoint, request.p256dh, request.auth, rules_);
  if (!sub) return done(tl::unexpected(std::move(sub.error())));
  auto categories = validate_categories(request.categories, config_, false);
  if (!categories) return done(tl::unexpected(std::move(categories.error())));
  auto version = validate_text_version(request.text_version);
  if (!version) return done(tl::unexpected(std::move(version.error())));
  auto zone = validate_timezone(request.timezone, config_.default_timezone);
  if (!zone) return done(tl::unexpected(std::move(zone.error())));
  auto locale = validate_locale(request.locale, config_.default_locale);
  if (!locale) return done(tl::unexpected(std::move(locale.error())));
  auto origin = check_origin(request.origin);
  if (!origin) return done(tl::unexpected(std::move(origin.error())));

  storage::subscriber_fields fields;
  fields.endpoint = std::move(sub->endpoint);
  fields.p256dh = std::move(sub->p256dh);
  fields.auth = std::move(sub->auth);
  fields.timezone = std::move(*zone);
  fields.locale = std::move(*locale);
  fields.text_version = std::move(*version);
  fields.categories = std::move(*categories);
  fields.new_public_id = "sub_" + crypto::random_token(16);
  std::string token = crypto::random_token();
  fields.token_hash = crypto::sha256(as_bytes(token));

  const clock& clk = clock_;
  run<subscribe_outcome>(
      writer_,
      [fields = std::move(fields), token = std::move(token), origin = std::move(*origin), &clk,
       on_subscribed = hooks_.on_subscribed,
       on_withdrawn = hooks_.on_withdrawn](storage::database& db) -> result<subscribe_outcome> {
        const auto now = clk.now();
        auto up = storage::make_sqlite_subscriber_store(db)->upsert(fields, now);
        if (!up) return tl::unexpected(std::move(up.error()));
        const auto& s = up->subscriber;
        std::optional<consent_action> action;
        if (up->created || !up->was_active) {
          action = consent_action::grant;
        } else if (up->categories_before != s.categories || up->text_version_before != s.consent_text_version) {
          action = consent_action::change;
        }
        if (action) {
          auto r = append_entry(db, s.public_id, *action, up->was_active ? up->categories_before : std::vector<std::string>{},
                                s.categories, s.consent_text_version, origin, now);
          if (!r) return tl::unexpected(std::move(r.error()));
        }
        // A new or returning subscriber (welcome series): in this item, so
        // the journey starts with the subscription or neither is stored.
        if (on_subscribed && (up->created || !up->was_active)) {
          if (auto r = on_subscribed(db, s, now); !r) return tl::unexpected(std::move(r.error()));
        }
        if (up->was_active) {
          if (auto r = report_withdrawal(on_withdrawn, db, s, up->categories_before, now); !r) {
            return tl::unexpected(std::move(r.error()));
          }
        }
        return subscribe_outcome{s.public_id, token, up->created};
      },
      std::move(done));
}

void subscriber_service::resubscribe(resubscribe_request request, callback<subscribe_outcome> done) {
  if (request.id.empty() &&
      (request.old_endpoint.empty() || request.old_endpoint.size() > delivery::max_endpoint_length)) {
    return done(fail("invalid_endpoint", "old_endpoint must be the previous subscription's endpoint", "old_endpoint"));
  }
  auto sub = validate_push_subscription(request.endpoint, request.p256dh, request.auth, rules_);
  if (!sub) return done(tl::unexpected(std::move(sub.error())));
  auto origin = check_origin(request.origin);
  if (!origin) return done(tl::unexpected(std::move(origin.error())));

  const clock& clk = clock_;
  run<subscribe_outcome>(
      writer_,
      [id = std::move(request.id), token = std::move(request.token), old_endpoint = std::move(request.old_endpoint),
       sub = std::move(*sub), origin = std::move(*origin), &clk](storage::database& db) -> result<subscribe_outcome> {
        const auto now = clk.now();
        auto store = storage::make_sqlite_subscriber_store(db);
        if (!id.empty()) {
          // Token-authenticated: the SDK and service worker know who they are.
          auto found = authenticate(*store, id, token);
          if (!found) return tl::unexpected(std::move(found.error()));
          if (found->endpoint == sub.endpoint) return subscribe_outcome{found->public_id, {}, false};  // a retry
          return move_and_record(db, *store, found->id, sub.endpoint, sub.p256dh, sub.auth, origin, now);
        }
        auto old = store->find_by_endpoint(old_endpoint);
        if (!old) return tl::unexpected(std::move(old.error()));
        if (!*old || (*old)->public_id.empty()) {
          // Already moved (a retry after a lost response): same answer again.
          auto moved = store->find_by_endpoint(sub.endpoint);
          if (!moved) return tl::unexpected(std::move(moved.error()));
          if (*moved && !(*moved)->public_id.empty() && (*moved)->state != storage::subscription_state::erased) {
            return subscribe_outcome{(*moved)->public_id, {}, false};
          }
          return tl::unexpected(not_found("old_endpoint"));
        }
        return move_and_record(db, *store, (*old)->id, sub.endpoint, sub.p256dh, sub.auth, origin, now);
      },
      std::move(done));
}

void subscriber_service::set_consent(consent_request request, callback<consent_outcome> done) {
  // The id is not pre-checked: any id, well-formed or not, reaches the same
  // constant-time token check and the same `not_found`.
  auto categories = validate_categories(request.categories, config_, true);
  if (!categories) return done(tl::unexpected(std::move(categories.error())));
  auto version = validate_text_version(request.text_version);
  if (!version) return done(tl::unexpected(std::move(version.error())));
  auto origin = check_origin(request.origin);
  if (!origin) return done(tl::unexpected(std::move(origin.error())));

  const clock& clk = clock_;
  run<consent_outcome>(
      writer_,
      [id = std::move(request.id), token = std::move(request.token), categories = std::move(*categories),
       version = std::move(*version), origin = std::move(*origin), &clk,
       on_withdrawn = hooks_.on_withdrawn](storage::database& db) -> result<consent_outcome> {
        const auto now = clk.now();
        auto store = storage::make_sqlite_subscriber_store(db);
        auto found = authenticate(*store, id, token);
        if (!found) return tl::unexpected(std::move(found.error()));
        const auto& s = *found;
        if (s.state != storage::subscription_state::active) {
          return fail("subscription_inactive", "the subscription has ended; subscribe again", "id");
        }
        if (s.categories == categories && s.consent_text_version == version) return consent_outcome{categories, false};
        if (auto r = store->set_categories(s.id, categories, version, now); !r) return tl::unexpected(std::move(r.error()));
        const auto action = categories.empty() ? consent_action::withdraw : consent_action::change;
        if (auto r = append_entry(db, s.public_id, action, s.categories, categories, version, origin, now); !r) {
          return tl::unexpected(std::move(r.error()));
        }
        auto updated = s;
        updated.categories = categories;
        if (auto r = report_withdrawal(on_withdrawn, db, updated, s.categories, now); !r) {
          return tl::unexpected(std::move(r.error()));
        }
        return consent_outcome{categories, true};
      },
      std::move(done));
}

void subscriber_service::unsubscribe(unsubscribe_request request, callback<void> done) {
  auto origin = check_origin(request.origin);
  if (!origin) return done(tl::unexpected(std::move(origin.error())));
  const clock& clk = clock_;
  run_void(
      writer_,
      [id = std::move(request.id), token = std::move(request.token), origin = std::move(*origin), &clk,
       on_withdrawn = hooks_.on_withdrawn](storage::database& db) -> result<void> {
        const auto now = clk.now();
        auto store = storage::make_sqlite_subscriber_store(db);
        auto found = authenticate(*store, id, token);
        if (!found) return tl::unexpected(std::move(found.error()));
        const auto& s = *found;
        if (s.unsubscribed()) return {};
        auto removed = store->mark_unsubscribed(s.id, now);
        if (!removed) return tl::unexpected(std::move(removed.error()));
        if (on_withdrawn) {
          if (auto r = on_withdrawn(db, s, "unsubscribe", removed->categories_before, now); !r) return r;
        }
        return append_entry(db, s.public_id, consent_action::unsubscribe, removed->categories_before, {},
                            s.consent_text_version, origin, now);
      },
      std::move(done));
}

void subscriber_service::link_customer(std::string id, std::string customer_id, callback<void> done) {
  auto customer = validate_customer_id(customer_id);
  if (!customer) return done(tl::unexpected(std::move(customer.error())));
  if (!is_public_id(id)) return done(tl::unexpected(not_found("subscription_id")));
  const clock& clk = clock_;
  run_void(
      writer_,
      [id = std::move(id), customer = std::move(*customer), &clk,
       on_linked = hooks_.on_customer_linked](storage::database& db) -> result<void> {
        const auto now = clk.now();
        auto store = storage::make_sqlite_subscriber_store(db);
        auto found = store->find_by_public_id(id);
        if (!found) return tl::unexpected(std::move(found.error()));
        if (!*found || (*found)->state == storage::subscription_state::erased) {
          return tl::unexpected(not_found("subscription_id"));
        }
        if ((*found)->customer_id == customer) return {};
        if (auto r = store->link_customer((*found)->id, customer, now); !r) return r;
        if (!on_linked) return {};
        // The record as linked, for the engine (it moves the subscriber's
        // journeys to the customer in this same transaction).
        auto linked = store->find((*found)->id);
        if (!linked) return tl::unexpected(std::move(linked.error()));
        if (!*linked) return tl::unexpected(not_found("subscription_id"));
        return on_linked(db, **linked, now);
      },
      std::move(done));
}

void subscriber_service::erase_subscription(std::string id, request_origin origin, callback<erase_outcome> done) {
  auto checked = check_origin(origin);
  if (!checked) return done(tl::unexpected(std::move(checked.error())));
  if (!is_public_id(id)) return done(tl::unexpected(not_found()));
  const clock& clk = clock_;
  run<erase_outcome>(
      writer_,
      [id = std::move(id), origin = std::move(*checked), &clk](storage::database& db) -> result<erase_outcome> {
        auto store = storage::make_sqlite_subscriber_store(db);
        auto found = store->find_by_public_id(id);
        if (!found) return tl::unexpected(std::move(found.error()));
        if (!*found) return tl::unexpected(not_found());
        const auto& s = **found;
        // The customer's journeys follow the customer, not this device:
        // they go only with the customer's last active subscriber.
        bool last_of_customer = true;
        if (!s.customer_id.empty()) {
          auto linked = store->list_by_customer(s.customer_id);
          if (!linked) return tl::unexpected(std::move(linked.error()));
          last_of_customer = std::none_of(linked->begin(), linked->end(), [&s](const storage::subscriber_record& o) {
            return o.id != s.id && o.state == storage::subscription_state::active;
          });
        }
        return erase_one(db, s, origin, clk.now(), last_of_customer);
      },
      std::move(done));
}

void subscriber_service::erase_customer(std::string customer_id, request_origin origin,
                                        callback<erase_outcome> done) {
  auto customer = validate_customer_id(customer_id);
  if (!customer) return done(tl::unexpected(std::move(customer.error())));
  auto checked = check_origin(origin);
  if (!checked) return done(tl::unexpected(std::move(checked.error())));
  const clock& clk = clock_;
  run<erase_outcome>(
      writer_,
      [customer = std::move(*customer), origin = std::move(*checked),
       &clk](storage::database& db) -> result<erase_outcome> {
        const auto now = clk.now();
        auto linked = storage::make_sqlite_subscriber_store(db)->list_by_customer(customer);
        if (!linked) return tl::unexpected(std::move(linked.error()));
        erase_outcome total;
        // Events and automation data of a customer who never subscribed
        // are theirs as well.
        if (auto events = storage::make_sqlite_event_store(db)->erase_for(customer, ""); !events) {
          return tl::unexpected(std::move(events.error()));
        }
        if (auto automation = storage::erase_person_data(db, {storage::customer_person(customer)}); !automation) {
          return tl::unexpected(std::move(automation.error()));
        }
        for (const auto& s : *linked) {
          auto one = erase_one(db, s, origin, now, true);
          if (!one) return tl::unexpected(std::move(one.error()));
          total.subscriptions_erased += one->subscriptions_erased;
          total.messages_cancelled += one->messages_cancelled;
        }
        return total;
      },
      std::move(done));
}

result<subscriber_state> subscriber_service::describe(std::string_view id, std::string_view token) {
  std::lock_guard lock{reader_mutex_};
  auto store = storage::make_sqlite_subscriber_store(reader_);
  auto found = authenticate(*store, std::string{id}, std::string{token});
  if (!found) return tl::unexpected(std::move(found.error()));
  subscriber_state out;
  out.id = found->public_id;
  out.state = found->state == storage::subscription_state::active ? "active"
              : found->unsubscribed()                              ? "unsubscribed"
                                                                   : "gone";
  out.categories = found->categories;
  out.timezone = found->timezone;
  out.locale = found->locale;
  out.text_version = found->consent_text_version;
  return out;
}

result<nlohmann::json> subscriber_service::export_subscription(std::string_view id) {
  if (!is_public_id(id)) return tl::unexpected(not_found());
  std::lock_guard lock{reader_mutex_};
  // One read transaction, so the document is one consistent snapshot.
  if (auto r = reader_.exec("BEGIN"); !r) return tl::unexpected(std::move(r.error()));
  auto doc = export_one(std::string{id});
  (void)reader_.exec("COMMIT");
  return doc;
}

result<nlohmann::json> subscriber_service::export_customer(std::string_view customer_id) {
  auto customer = validate_customer_id(customer_id);
  if (!customer) return tl::unexpected(std::move(customer.error()));
  std::lock_guard lock{reader_mutex_};
  // One read transaction, so the document is one consistent snapshot.
  if (auto r = reader_.exec("BEGIN"); !r) return tl::unexpected(std::move(r.error()));
  const auto end_read = [this] { (void)reader_.exec("COMMIT"); };
  auto linked = storage::make_sqlite_subscriber_store(reader_)->list_by_customer(*customer);
  if (!linked) {
    end_read();
    return tl::unexpected(std::move(linked.error()));
  }
  // Events of the customer id itself (also those from before a subscription).
  auto events = events_json(reader_, *customer, "");
  if (!events) {
    end_read();
    return tl::unexpected(std::move(events.error()));
  }
  json doc{{"customer_id", *customer}, {"subscriptions", json::array()}, {"events", std::move(*events)}};
  if (auto r = put_automation(doc, reader_, {storage::customer_person(*customer)}); !r) {
    end_read();
    return tl::unexpected(std::move(r.error()));
  }
  for (const auto& s : *linked) {
    auto one = export_one(s.public_id);
    if (!one) {
      end_read();
      return tl::unexpected(std::move(one.error()));
    }
    doc["subscriptions"].push_back(std::move(*one));
  }
  end_read();
  return doc;
}

result<nlohmann::json> subscriber_service::export_one(const std::string& public_id) {
  auto found = storage::make_sqlite_subscriber_store(reader_)->find_by_public_id(public_id);
  if (!found) return tl::unexpected(std::move(found.error()));
  if (!*found) return tl::unexpected(not_found());
  const auto& s = **found;
  const bool erased = s.state == storage::subscription_state::erased;
  json sub{
      {"id", s.public_id},
      {"state", state_text(s.state)},
      {"state_reason", text_or_null(s.gone_reason)},
      {"endpoint", erased ? json(nullptr) : json(s.endpoint)},
      {"keys", erased ? json(nullptr) : json{{"p256dh", s.p256dh}, {"auth", s.auth}}},
      {"customer_id", text_or_null(s.customer_id)},
      {"categories", s.categories},
      {"consent_text_version", text_or_null(s.consent_text_version)},
      {"timezone", text_or_null(s.timezone)},
      {"locale", text_or_null(s.locale)},
      {"created_at", format_rfc3339(s.created_at)},
      {"updated_at", format_rfc3339(s.updated_at)},
      {"last_seen_at", optional_time(s.last_seen_at)},
      {"ended_at", optional_time(s.gone_at)},
  };
  json ledger = json::array();
  auto entries = storage::make_sqlite_consent_ledger_store(reader_)->for_subscription(public_id);
  if (!entries) return tl::unexpected(std::move(entries.error()));
  for (const auto& e : *entries) {
    ledger.push_back({{"seq", e.seq},
                      {"at", format_rfc3339(from_unix_millis(e.at_ms))},
                      {"action", e.action},
                      {"categories_before", categories_json(e.categories_before)},
                      {"categories_after", categories_json(e.categories_after)},
                      {"source", e.source},
                      {"text_version", e.text_version},
                      {"ip_truncated", e.ip_truncated},
                      {"hash", hex_encode(e.hash)}});
  }
  json messages = json::array();
  auto rows = storage::make_sqlite_outbox_store(reader_)->list_for_subscription(s.id);
  if (!rows) return tl::unexpected(std::move(rows.error()));
  for (const auto& m : *rows) {
    json msg{{"id", m.id},
             {"state", storage::to_string(m.state)},
             {"category", text_or_null(m.category)},
             {"source", m.source},
             {"created_at", format_rfc3339(m.created_at)},
             {"finished_at", optional_time(m.finished_at)},
             {"attempts", m.attempts},
             {"last_status", m.last_status ? json(*m.last_status) : json(nullptr)},
             {"last_reason", text_or_null(m.last_reason)}};
    if (!m.payload.empty()) put_payload(msg, m.payload);
    messages.push_back(std::move(msg));
  }
  auto events = events_json(reader_, s.customer_id, s.public_id);
  if (!events) return tl::unexpected(std::move(events.error()));
  auto tracking = tracking_json(reader_, s.id);
  if (!tracking) return tl::unexpected(std::move(tracking.error()));
  json doc{{"subscription", std::move(sub)},
           {"consent_ledger", std::move(ledger)},
           {"messages", std::move(messages)},
           {"events", std::move(*events)},
           {"tracking", std::move(*tracking)}};
  std::vector<std::string> persons{storage::subscriber_person(s.public_id)};
  if (!s.customer_id.empty()) persons.push_back(storage::customer_person(s.customer_id));
  if (auto r = put_automation(doc, reader_, persons); !r) return tl::unexpected(std::move(r.error()));
  return doc;
}

result<storage::ledger_verification> subscriber_service::verify_ledger() {
  std::lock_guard lock{reader_mutex_};
  return storage::make_sqlite_consent_ledger_store(reader_)->verify();
}

}  // namespace webpushd::consent
