// Conversion attribution inside the ingest transaction: a few primary-key
// and indexed reads per purchase (the person's subscriptions, their
// touches, the credited push), one insert and a few counter upserts.
#include "webpushd/tracking/attribution.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/pacing_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/tracking_store.hpp"

namespace webpushd::tracking {
namespace {

// Totals from here up are not credible revenue (and would overflow the
// counters' hundredths long before int64 does).
constexpr double max_revenue_units = 1e13;

struct purchase {
  std::int64_t revenue = 0;  // hundredths
  std::string currency;
};

// The validated properties (schemas/events/purchase.schema.json: `total`
// a number ≥ 0, `currency` three capitals); nullopt if they are not.
std::optional<purchase> purchase_of(const storage::stored_event& e) {
  const auto props = nlohmann::json::parse(e.properties, nullptr, false);
  if (!props.is_object()) return std::nullopt;
  const auto total = props.find("total");
  const auto currency = props.find("currency");
  if (total == props.end() || !total->is_number() || currency == props.end() || !currency->is_string()) {
    return std::nullopt;
  }
  const double units = total->get<double>();
  if (!std::isfinite(units) || units < 0) return std::nullopt;
  return purchase{units < max_revenue_units ? std::llround(units * 100.0) : 0, currency->get<std::string>()};
}

// The person's devices: the event's subscription and every subscription
// linked to its customer, each once.
result<std::vector<std::int64_t>> devices_of(storage::subscriber_store& subscribers, const storage::stored_event& e) {
  std::vector<std::int64_t> ids;
  if (!e.customer_id.empty()) {
    auto linked = subscribers.list_by_customer(e.customer_id);
    if (!linked) return tl::unexpected(std::move(linked.error()));
    for (const auto& s : *linked) ids.push_back(s.id);
  }
  if (!e.subscription_id.empty()) {
    auto own = subscribers.find_by_public_id(e.subscription_id);
    if (!own) return tl::unexpected(std::move(own.error()));
    if (*own && std::find(ids.begin(), ids.end(), (*own)->id) == ids.end()) ids.push_back((*own)->id);
  }
  return ids;
}

struct candidate {
  std::int64_t subscription_id = 0;
  storage::touch touch;
};

bool within(time_point at, time_point occurred_at, std::chrono::milliseconds window) {
  return at <= occurred_at && at >= occurred_at - window;
}

// Latest first; the higher message id breaks a tie (the newer push).
bool later(const candidate& a, const candidate& b) {
  return a.touch.at != b.touch.at ? a.touch.at > b.touch.at : a.touch.outbox_id > b.touch.outbox_id;
}

// The touch a purchase is credited to, and as what.
result<std::optional<std::pair<std::string, candidate>>> choose(storage::tracking_store& store,
                                                                 const std::vector<storage::subscription_touches>& all,
                                                                 time_point occurred_at,
                                                                 const attribution_windows& windows) {
  std::optional<candidate> click;
  std::vector<candidate> shown;
  for (const auto& t : all) {
    if (t.clicked && within(t.clicked->at, occurred_at, windows.click)) {
      const candidate c{t.subscription_id, *t.clicked};
      if (!click || later(c, *click)) click = c;
    }
    if (t.shown && within(t.shown->at, occurred_at, windows.view)) shown.push_back({t.subscription_id, *t.shown});
  }
  using chosen = std::optional<std::pair<std::string, candidate>>;
  if (click) return chosen{{"converted", *click}};
  // View-through only for a push that was not clicked: a click outside its
  // window earns nothing, it does not fall back to a view.
  std::sort(shown.begin(), shown.end(), later);
  for (const auto& c : shown) {
    auto clicked = store.was_clicked(c.touch.outbox_id);
    if (!clicked) return tl::unexpected(std::move(clicked.error()));
    if (!*clicked) return chosen{{"influenced", c}};
  }
  return chosen{};
}

}  // namespace

result<attribution_tally> attribute_purchases(storage::database& db, const std::vector<storage::stored_event>& events,
                                              const attribution_windows& windows, time_point now) {
  attribution_tally tally;
  auto subscribers = storage::make_sqlite_subscriber_store(db);
  auto store = storage::make_sqlite_tracking_store(db);
  auto counters = storage::make_sqlite_pacing_store(db);
  for (const auto& e : events) {
    if (e.type != "purchase") continue;
    const auto bought = purchase_of(e);
    if (!bought) continue;
    auto devices = devices_of(*subscribers, e);
    if (!devices) return tl::unexpected(std::move(devices.error()));
    if (devices->empty()) continue;
    auto touches = store->touches(*devices);
    if (!touches) return tl::unexpected(std::move(touches.error()));
    auto chosen = choose(*store, *touches, e.occurred_at, windows);
    if (!chosen) return tl::unexpected(std::move(chosen.error()));
    if (!*chosen) continue;
    const auto& [kind, winner] = **chosen;
    auto push = store->find_push(winner.touch.outbox_id);
    if (!push) return tl::unexpected(std::move(push.error()));
    if (!*push) continue;  // touches name outbox rows, which are never deleted

    storage::conversion c;
    c.event_id = e.id;
    c.kind = kind;
    c.subscription_id = winner.subscription_id;
    c.outbox_id = winner.touch.outbox_id;
    std::tie(c.source, c.step) = storage::split_source((*push)->source);
    c.variant = (*push)->variant;
    c.touch_at = winner.touch.at;
    c.occurred_at = e.occurred_at;
    c.revenue = bought->revenue;
    c.currency = bought->currency;
    c.attributed_at = now;
    auto fresh = store->record_conversion(c);
    if (!fresh) return tl::unexpected(std::move(fresh.error()));
    if (!*fresh) continue;  // attributed before: counted then

    const bool converted = kind == "converted";
    const std::string revenue_metric = (converted ? "revenue:" : "influenced_revenue:") + c.currency;
    if (auto r = counters->count(c.source, c.step, c.variant, e.occurred_at, kind, 1); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    if (auto r = counters->count(c.source, c.step, c.variant, e.occurred_at, revenue_metric, c.revenue); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    ++(converted ? tally.converted : tally.influenced);
  }
  return tally;
}

}  // namespace webpushd::tracking
