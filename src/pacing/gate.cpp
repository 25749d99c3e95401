#include "webpushd/pacing/gate.hpp"

#include <date/date.h>
#include <date/tz.h>
#include <spdlog/spdlog.h>

#include "webpushd/core/text.hpp"
#include "webpushd/pacing/rules.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/pacing_store.hpp"

namespace webpushd::pacing {
namespace {

constexpr std::string_view scenario_kind = "scenario:";
constexpr std::string_view campaign_kind = "campaign:";

const scenario_pacing* pacing_of(const policy& p, std::string_view scenario) {
  if (scenario.empty()) return nullptr;
  const auto it = p.scenarios.find(scenario);
  return it == p.scenarios.end() ? nullptr : &it->second;
}

const std::vector<cap>* category_caps_of(const policy& p, std::string_view category) {
  if (category.empty()) return nullptr;
  const auto it = p.category_caps.find(category);
  return it == p.category_caps.end() ? nullptr : &it->second;
}

}  // namespace

send_gate::send_gate(storage::database& connection, std::shared_ptr<const policy> p)
    : store_(storage::make_sqlite_pacing_store(connection)),
      journeys_(storage::make_sqlite_journey_store(connection)),
      policy_(std::move(p)) {}

send_gate::~send_gate() = default;

void send_gate::set_policy(std::shared_ptr<const policy> p) {
  const std::lock_guard lock(policy_mutex_);
  policy_ = std::move(p);
}

void send_gate::set_held_observer(held_observer observer) { held_observer_ = std::move(observer); }

std::shared_ptr<const policy> send_gate::current_policy() const {
  const std::lock_guard lock(policy_mutex_);
  return policy_;
}

const date::time_zone* send_gate::zone_of(const std::string& name, const policy& p) {
  const std::string& wanted = name.empty() ? p.default_timezone : name;
  if (const auto it = zones_.find(wanted); it != zones_.end()) return it->second;
  const date::time_zone* zone = nullptr;
  try {
    zone = date::locate_zone(wanted);
  } catch (const std::exception&) {
    // Zones are checked when subscribers tell them; one the system's tzdata
    // no longer knows falls back to UTC rather than blocking the message.
    spdlog::warn("pacing: unknown time zone '{}', quiet hours use UTC for it", wanted);
  }
  zones_.emplace(wanted, zone);
  return zone;
}

result<storage::gate_verdict> send_gate::decide(const storage::gate_candidate& c, time_point now) {
  const auto p = current_policy();
  const auto [source, step] = storage::split_source(c.source);
  const bool from_scenario = source.starts_with(scenario_kind);
  const bool paced = from_scenario || source.starts_with(campaign_kind);
  const std::string scenario = from_scenario ? source.substr(scenario_kind.size()) : std::string{};
  const scenario_pacing* own = pacing_of(*p, scenario);
  const std::vector<cap>* category = category_caps_of(*p, c.category);
  const bool scenario_scoped = own != nullptr && !own->caps.empty();

  history h;
  auto every = store_->history(c.subscription_id, storage::every_push_scope);
  if (!every) return tl::unexpected(std::move(every.error()));
  h.every = std::move(*every);
  if (scenario_scoped) {
    auto mine = store_->history(c.subscription_id, storage::scenario_scope(scenario));
    if (!mine) return tl::unexpected(std::move(mine.error()));
    h.scenario = std::move(*mine);
  }
  if (category != nullptr) {
    auto same = store_->history(c.subscription_id, storage::category_scope(c.category));
    if (!same) return tl::unexpected(std::move(same.error()));
    h.category = std::move(*same);
  }

  if (paced) {
    int level = 0;
    if (own != nullptr && own->adaptive) {
      auto state = store_->level(scenario);
      if (!state) return tl::unexpected(std::move(state.error()));
      level = state->level;
    }
    const message_facts facts{scenario, c.category, zone_of(c.timezone, *p)};
    if (const auto held = check(*p, facts, h, level, now)) {
      storage::gate_verdict v;
      const std::string why = std::string{to_string(held->reason)} + ": " + held->detail;
      const bool defer = c.defer_limit && held->until <= *c.defer_limit;
      if (defer) {
        v.what = storage::gate_verdict::kind::defer;
        v.until = held->until;
        v.reason = why + "; deferred to " + format_rfc3339(held->until);
      } else {
        v.what = storage::gate_verdict::kind::suppress;
        v.reason = c.defer_limit ? why + "; the next allowed moment, " + format_rfc3339(held->until) + ", is past its useful life"
                                 : why;
      }
      const std::string metric = std::string{defer ? "deferred:" : "suppressed:"} + to_string(held->reason);
      if (auto r = store_->count(source, step, c.variant, now, metric, 1); !r) return tl::unexpected(std::move(r.error()));
      if (auto r = note(c, scenario, step, defer ? "deferred" : "suppressed", v.reason, now); !r) {
        return tl::unexpected(std::move(r.error()));
      }
      if (held_observer_) held_observer_(defer, to_string(held->reason));
      return v;
    }
  }

  // Admitted: remember it in every scope a cap or the gap may look at.
  remember(h.every, now, p->caps);
  if (auto r = store_->save_history(c.subscription_id, storage::every_push_scope, h.every); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  if (scenario_scoped) {
    remember(h.scenario, now, own->caps);
    if (auto r = store_->save_history(c.subscription_id, storage::scenario_scope(scenario), h.scenario); !r) {
      return tl::unexpected(std::move(r.error()));
    }
  }
  if (category != nullptr) {
    remember(h.category, now, *category);
    if (auto r = store_->save_history(c.subscription_id, storage::category_scope(c.category), h.category); !r) {
      return tl::unexpected(std::move(r.error()));
    }
  }
  return storage::gate_verdict{};
}

result<void> send_gate::note(const storage::gate_candidate& c, const std::string& scenario, const std::string& step,
                             const char* outcome, const std::string& reason, time_point now) {
  if (!c.journey_id) return {};
  auto journey = journeys_->get(*c.journey_id);
  if (!journey) return tl::unexpected(std::move(journey.error()));
  storage::journey_log_entry e;
  e.journey_id = *c.journey_id;
  e.scenario = scenario;
  e.step = step;
  e.person = *journey ? (*journey)->person : std::string{};
  e.subscription_id = c.subscription_id;
  e.outcome = outcome;
  e.reason = reason;
  e.outbox_id = c.message_id;
  e.at = now;
  return journeys_->log(e);
}

result<void> send_gate::subscription_gone(std::int64_t subscription_id, time_point now) {
  const auto p = current_policy();
  auto attributed = store_->attribute_unsubscribe(subscription_id, "gone", "", now, p->unsubscribe_window);
  if (!attributed) return tl::unexpected(std::move(attributed.error()));
  return {};
}

result<void> attribute_unsubscribe(storage::database& connection, const policy& p, std::int64_t subscription_id,
                                   std::string_view kind, const std::vector<std::string>& withdrawn, time_point now) {
  std::string categories;
  for (const auto& c : withdrawn) categories += (categories.empty() ? "" : ",") + c;
  auto attributed = storage::make_sqlite_pacing_store(connection)->attribute_unsubscribe(
      subscription_id, kind, categories, now, p.unsubscribe_window);
  if (!attributed) return tl::unexpected(std::move(attributed.error()));
  return {};
}

}  // namespace webpushd::pacing
