// Scenario stats: a handful of indexed aggregate reads per request (counters
// by step and by day, journey_log by step and outcome, the level and its log,
// the latest attributions) on the service's own connection. They are
// separate statements, not one snapshot: a push recorded in between may show
// in one figure and not yet in another, which stats can live with.
#include "webpushd/automation/scenario_stats.hpp"

#include <algorithm>
#include <array>

#include "webpushd/core/text.hpp"
#include "webpushd/pacing/rules.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;
using std::chrono::hours;

struct window_def {
  std::string_view name;
  hours span;
};
constexpr std::array<window_def, 3> rolling_windows{
    {{"24h", hours{24}}, {"7d", default_stats_range}, {"30d", hours{24 * 30}}}};

std::string source_of(std::string_view scenario) { return "scenario:" + std::string{scenario}; }

// A whole hour or day as a time_point. The arithmetic before it is done in
// hours and days, so rounding near the ends of time_point's range
// (nanosecond ticks: 1677–2262) saturates instead of overflowing.
template <class Unit>
time_point to_time(std::chrono::time_point<std::chrono::system_clock, Unit> t) {
  return from_unix_millis(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

std::chrono::time_point<std::chrono::system_clock, hours> end_of_hour(time_point now) {
  return std::chrono::floor<hours>(now) + hours{1};
}

result<send_figures> sends_over(storage::pacing_store& store, std::string_view scenario, time_point from,
                                time_point to) {
  auto counters = store.totals(source_of(scenario), from, to);
  if (!counters) return tl::unexpected(std::move(counters.error()));
  stats_figures f;
  for (const auto& c : *counters) f.add(c.metric, c.n);
  return send_figures{f.sent, total(f.unsubscribes)};
}

const pacing::scenario_pacing* pacing_of(const pacing::policy* p, std::string_view scenario) {
  if (p == nullptr) return nullptr;
  const auto it = p->scenarios.find(scenario);
  return it == p->scenarios.end() ? nullptr : &it->second;
}

// The send-time gate applies a stored level only to an adaptive scenario.
result<storage::level_state> level_in_force(storage::pacing_store& store, const pacing::scenario_pacing* own,
                                            std::string_view scenario) {
  if (own == nullptr || !own->adaptive) return storage::level_state{};
  return store.level(scenario);
}

// Whether anything is stored about a scenario that is no longer loaded.
result<bool> has_history(storage::database& db, std::string_view scenario) {
  const auto always_from = time_point::min();
  const auto always_to = time_point::max();
  auto pacing = storage::make_sqlite_pacing_store(db);
  auto counters = pacing->totals(source_of(scenario), always_from, always_to);
  if (!counters) return tl::unexpected(std::move(counters.error()));
  if (!counters->empty()) return true;
  auto outcomes = storage::make_sqlite_journey_store(db)->count_outcomes(scenario, always_from, always_to);
  if (!outcomes) return tl::unexpected(std::move(outcomes.error()));
  if (!outcomes->empty()) return true;
  auto changes = pacing->level_log(scenario, 1);
  if (!changes) return tl::unexpected(std::move(changes.error()));
  return !changes->empty();
}

// The step named `name`, appended as not configured if it is new.
step_stats& step_named(std::vector<step_stats>& steps, const std::string& name) {
  const auto it = std::find_if(steps.begin(), steps.end(), [&](const step_stats& s) { return s.name == name; });
  if (it != steps.end()) return *it;
  return steps.emplace_back(step_stats{name, false, {}, {}});
}

// A step's variants as the loaded scenario configures them, baseline first;
// none for a step without variants or not loaded (then variants_of shows
// the ones its messages carried, as found in the data).
std::vector<variant_config> configured_variants(const scenario_def* loaded, const std::string& step) {
  std::vector<variant_config> out;
  if (loaded == nullptr) return out;
  for (const auto& s : loaded->steps) {
    if (s.name != step) continue;
    for (const auto& v : s.variants) out.push_back(variant_config{v.name, v.weight});
  }
  return out;
}

json rate_json(std::int64_t unsubscribes, std::int64_t sent) {
  const auto rate = unsubscribe_rate(unsubscribes, sent);
  return rate ? json(*rate) : json(nullptr);
}

json send_figures_json(const send_figures& f) {
  return {{"sent", f.sent}, {"unsubscribes", f.unsubscribes}, {"unsubscribe_rate", rate_json(f.unsubscribes, f.sent)}};
}

json caps_json(const std::vector<pacing::cap>& caps) {
  json out = json::array();
  for (const auto& c : caps) out.push_back({{"count", c.count}, {"per", format_duration(c.per)}});
  return out;
}

json time_or_null(const std::optional<time_point>& t) { return t ? json(format_rfc3339(*t)) : json(nullptr); }

json text_or_null(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

json pacing_json(const scenario_pacing_view& p) {
  const auto& own = p.configured;
  json adaptive = nullptr;
  if (own.adaptive) {
    const auto& a = *own.adaptive;
    adaptive = {{"tighten_above", a.tighten_above}, {"relax_below", a.relax_below},
                {"window", format_duration(a.window)}, {"min_sends", a.min_sends},
                {"hold", format_duration(a.hold)},     {"min_count", a.min_count}};
  }
  json log = json::array();
  for (const auto& c : p.level_log) {
    log.push_back({{"at", format_rfc3339(c.at)}, {"from_level", c.from_level}, {"to_level", c.to_level},
                   {"sent", c.sends},           {"unsubscribes", c.unsubscribes}, {"reason", c.reason}});
  }
  return {{"caps", caps_json(own.caps)},
          {"quiet_hours", own.quiet_hours},
          {"defer", own.defer},
          {"defer_max", format_duration(own.defer_max)},
          {"adaptive", std::move(adaptive)},
          {"level", p.level},
          {"level_changed_at", time_or_null(p.level_changed_at)},
          {"effective_caps", caps_json(pacing::effective_caps(own, p.level))},
          {"level_log", std::move(log)}};
}

}  // namespace

nlohmann::json to_json(const scenario_stats& s) {
  json steps = json::array();
  for (const auto& step : s.steps) {
    json one = figures_json(step.figures, true);
    one["name"] = step.name;
    one["configured"] = step.configured;
    json variants = json::array();
    for (const auto& v : step.variants) variants.push_back(variant_json(v));
    one["variants"] = std::move(variants);
    steps.push_back(std::move(one));
  }
  json per_day = json::array();
  for (const auto& d : s.per_day) per_day.push_back(day_json(d));
  json windows = json::object();
  for (const auto& w : s.windows) windows[w.name] = send_figures_json(w.figures);
  json unsubscribes = json::array();
  for (const auto& u : s.recent_unsubscribes) {
    const auto& a = u.attribution;
    unsubscribes.push_back({{"at", format_rfc3339(a.at)},
                            {"kind", a.kind},
                            {"category", text_or_null(a.category)},
                            {"step", a.step},
                            {"sent_at", format_rfc3339(a.sent_at)},
                            {"subscription", text_or_null(u.subscription)}});
  }
  return {{"scenario", s.scenario},
          {"loaded", s.loaded},
          {"from", format_rfc3339(s.range.from)},
          {"to", format_rfc3339(s.range.to)},
          {"generated_at", format_rfc3339(s.generated_at)},
          {"totals", figures_json(s.totals, true)},
          {"steps", std::move(steps)},
          {"per_day", std::move(per_day)},
          {"windows", std::move(windows)},
          {"pacing", pacing_json(s.pacing)},
          {"recent_unsubscribes", std::move(unsubscribes)}};
}

nlohmann::json to_json(const scenario_overview& o) {
  const auto& sc = o.scenario;
  json steps = json::array();
  for (const auto& step : sc.steps) steps.push_back({{"name", step.name}, {"after", format_duration(step.after)}});
  return {{"name", sc.name},
          {"description", sc.description},
          {"enabled", sc.enabled},
          {"category", sc.category},
          {"priority", sc.priority},
          {"trigger", {{"event", sc.trigger.event}}},
          {"steps", std::move(steps)},
          {"last_7d", send_figures_json(o.last_7d)},
          {"level", o.level}};
}

scenario_stats_service::scenario_stats_service(storage::database reader, scenarios_provider scenarios,
                                               policy_provider policy, const clock& clk)
    : scenarios_(std::move(scenarios)), policy_(std::move(policy)), clock_(clk), reader_(std::move(reader)) {}

result<scenario_stats> scenario_stats_service::stats(std::string_view name, const stats_query& query) {
  const time_point now = clock_.now();
  auto range = parse_stats_range(query, now);
  if (!range) return tl::unexpected(std::move(range.error()));
  const auto set = scenarios_();
  const auto policy = policy_();
  const scenario_def* loaded = set ? set->find(name) : nullptr;
  const auto* own = pacing_of(policy.get(), name);

  const std::lock_guard lock(reader_mutex_);
  if (loaded == nullptr) {
    auto known = has_history(reader_, name);
    if (!known) return tl::unexpected(std::move(known.error()));
    if (!*known) return fail("unknown_scenario", "no scenario named " + std::string{name}, "name");
  }
  auto store = storage::make_sqlite_pacing_store(reader_);
  scenario_stats out;
  out.scenario = std::string{name};
  out.loaded = loaded != nullptr;
  out.range = *range;
  out.generated_at = now;

  if (loaded != nullptr) {
    for (const auto& step : loaded->steps) out.steps.push_back(step_stats{step.name, true, {}, {}});
  }
  const auto configured_steps = static_cast<std::ptrdiff_t>(out.steps.size());
  auto counters = store->totals(source_of(name), range->from, range->to);
  if (!counters) return tl::unexpected(std::move(counters.error()));
  // step → variant → figures
  std::map<std::string, std::map<std::string, stats_figures, std::less<>>, std::less<>> by_variant;
  for (const auto& c : *counters) {
    out.totals.add(c.metric, c.n);
    if (c.step.empty()) continue;
    step_named(out.steps, c.step).figures.add(c.metric, c.n);
    if (!c.variant.empty()) by_variant[c.step][c.variant].add(c.metric, c.n);
  }
  auto journeys = storage::make_sqlite_journey_store(reader_);
  auto outcomes = journeys->count_outcomes(name, range->from, range->to);
  if (!outcomes) return tl::unexpected(std::move(outcomes.error()));
  for (const auto& o : *outcomes) {
    out.totals.journeys[o.outcome] += o.n;
    if (!o.step.empty()) step_named(out.steps, o.step).figures.journeys[o.outcome] += o.n;
  }
  out.totals.entered = out.totals.journeys["entered"];
  auto reached = journeys->count_step_reach(name, range->from, range->to);
  if (!reached) return tl::unexpected(std::move(reached.error()));
  for (const auto& r : *reached) step_named(out.steps, r.step).figures.entered = r.journeys;
  std::sort(out.steps.begin() + configured_steps, out.steps.end(),
            [](const step_stats& a, const step_stats& b) { return a.name < b.name; });
  for (auto& step : out.steps) {
    auto data = by_variant.extract(step.name);
    step.variants =
        variants_of(configured_variants(loaded, step.name),
                    data.empty() ? std::map<std::string, stats_figures, std::less<>>{} : std::move(data.mapped()));
  }

  auto daily = store->daily_totals(source_of(name), range->from, range->to);
  if (!daily) return tl::unexpected(std::move(daily.error()));
  out.per_day = days_of(*range, *daily);

  const auto window_end = end_of_hour(now);
  for (const auto& w : rolling_windows) {
    auto figures = sends_over(*store, name, to_time(window_end - w.span), to_time(window_end));
    if (!figures) return tl::unexpected(std::move(figures.error()));
    out.windows.push_back(window_stats{std::string{w.name}, *figures});
  }

  if (own != nullptr) out.pacing.configured = *own;
  auto level = level_in_force(*store, own, name);
  if (!level) return tl::unexpected(std::move(level.error()));
  out.pacing.level = level->level;
  out.pacing.level_changed_at = level->changed_at;
  auto changes = store->level_log(name, stats_recent_limit);
  if (!changes) return tl::unexpected(std::move(changes.error()));
  out.pacing.level_log = std::move(*changes);

  auto attributions = store->attributions(source_of(name), range->from, range->to, stats_recent_limit);
  if (!attributions) return tl::unexpected(std::move(attributions.error()));
  auto subscribers = storage::make_sqlite_subscriber_store(reader_);
  for (auto& a : *attributions) {
    // Named as GDPR exports name it; an erasure deletes its attributions.
    auto who = subscribers->find(a.subscription_id);
    if (!who) return tl::unexpected(std::move(who.error()));
    out.recent_unsubscribes.push_back(recent_unsubscribe{std::move(a), *who ? (*who)->public_id : std::string{}});
  }
  return out;
}

result<std::vector<scenario_overview>> scenario_stats_service::list() {
  const auto set = scenarios_();
  const auto policy = policy_();
  const auto end = end_of_hour(clock_.now());
  std::vector<scenario_overview> out;
  if (!set) return out;

  const std::lock_guard lock(reader_mutex_);
  auto store = storage::make_sqlite_pacing_store(reader_);
  for (const auto& sc : set->scenarios) {
    auto recent = sends_over(*store, sc.name, to_time(end - default_stats_range), to_time(end));
    if (!recent) return tl::unexpected(std::move(recent.error()));
    auto level = level_in_force(*store, pacing_of(policy.get(), sc.name), sc.name);
    if (!level) return tl::unexpected(std::move(level.error()));
    out.push_back(scenario_overview{sc, *recent, level->level});
  }
  return out;
}

}  // namespace webpushd::automation
