// Scenario stats: a handful of indexed aggregate reads per request (counters
// by step and by day, journey_log by step and outcome, the level and its log,
// the latest attributions) on the service's own connection. They are
// separate statements, not one snapshot: a push recorded in between may show
// in one figure and not yet in another, which stats can live with.
#include "webpushd/automation/scenario_stats.hpp"

#include <algorithm>
#include <array>
#include <numeric>

#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/pacing/rules.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

namespace webpushd::automation {
namespace {

using nlohmann::json;
using std::chrono::days;
using std::chrono::hours;

// What the daemon records, so that every figure is present, 0 or not.
constexpr std::array hold_reasons{pacing::hold_reason::quiet_hours, pacing::hold_reason::min_gap,
                                  pacing::hold_reason::global_cap, pacing::hold_reason::scenario_cap,
                                  pacing::hold_reason::category_cap};
constexpr std::array<std::string_view, 3> unsubscribe_kinds{"gone", "unsubscribe", "withdraw"};
constexpr std::array<std::string_view, 9> journey_outcomes{"entered",   "sent",   "deferred",  "suppressed", "skipped",
                                                           "restarted", "exited", "completed", "cancelled"};

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

// The counter vocabulary of storage::pacing_store: "sent",
// "deferred:<reason>", "suppressed:<reason>", "unsubscribed:<kind>".
struct metric {
  enum class kind { sent, deferred, suppressed, unsubscribed, other } what = kind::other;
  std::string detail;  // reason or kind
};

metric parse_metric(std::string_view text) {
  if (text == "sent") return {metric::kind::sent, {}};
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return {};
  const auto prefix = text.substr(0, colon);
  std::string detail{text.substr(colon + 1)};
  if (prefix == "deferred") return {metric::kind::deferred, std::move(detail)};
  if (prefix == "suppressed") return {metric::kind::suppressed, std::move(detail)};
  if (prefix == "unsubscribed") return {metric::kind::unsubscribed, std::move(detail)};
  return {};
}

// Metrics this version does not show (later ones, such as clicks) are left out.
void add(stats_figures& f, std::string_view counter, std::int64_t n) {
  auto m = parse_metric(counter);
  switch (m.what) {
    case metric::kind::sent: f.sent += n; break;
    case metric::kind::deferred: f.deferred[std::move(m.detail)] += n; break;
    case metric::kind::suppressed: f.suppressed[std::move(m.detail)] += n; break;
    case metric::kind::unsubscribed: f.unsubscribes[std::move(m.detail)] += n; break;
    case metric::kind::other: break;
  }
}

void add(day_stats& d, std::string_view counter, std::int64_t n) {
  switch (parse_metric(counter).what) {
    case metric::kind::sent: d.sent += n; break;
    case metric::kind::deferred: d.deferred += n; break;
    case metric::kind::suppressed: d.suppressed += n; break;
    case metric::kind::unsubscribed: d.unsubscribes += n; break;
    case metric::kind::other: break;
  }
}

std::int64_t total(const std::map<std::string, std::int64_t, std::less<>>& by) {
  return std::accumulate(by.begin(), by.end(), std::int64_t{0},
                         [](std::int64_t sum, const auto& entry) { return sum + entry.second; });
}

result<send_figures> sends_over(storage::pacing_store& store, std::string_view scenario, time_point from,
                                time_point to) {
  auto counters = store.totals(source_of(scenario), from, to);
  if (!counters) return tl::unexpected(std::move(counters.error()));
  stats_figures f;
  for (const auto& c : *counters) add(f, c.metric, c.n);
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
stats_figures& step_named(std::vector<step_stats>& steps, const std::string& name) {
  const auto it = std::find_if(steps.begin(), steps.end(), [&](const step_stats& s) { return s.name == name; });
  if (it != steps.end()) return it->figures;
  return steps.emplace_back(step_stats{name, false, {}}).figures;
}

std::vector<day_stats> days_of(const stats_range& range, const std::vector<storage::daily_total>& counters) {
  const auto first = std::chrono::floor<days>(range.from);
  const auto last = std::chrono::floor<days>(range.to - hours{1});
  std::vector<day_stats> out;
  for (auto d = first; d <= last; d += days{1}) out.push_back(day_stats{to_time(d)});
  for (const auto& c : counters) {
    const auto index = (std::chrono::floor<days>(c.day) - first).count();
    if (index >= 0 && index < std::ssize(out)) add(out[static_cast<std::size_t>(index)], c.metric, c.n);
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

json figures_json(const stats_figures& f) {
  const auto with_total = [](const std::map<std::string, std::int64_t, std::less<>>& by) {
    json out = {{"total", total(by)}};
    for (const auto& [name, n] : by) out[name] = n;
    return out;
  };
  return {{"sent", f.sent},
          {"deferred", with_total(f.deferred)},
          {"suppressed", with_total(f.suppressed)},
          {"unsubscribes", with_total(f.unsubscribes)},
          {"unsubscribe_rate", rate_json(total(f.unsubscribes), f.sent)},
          {"journeys", f.journeys}};
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

stats_figures::stats_figures() {
  for (const auto r : hold_reasons) {
    deferred.emplace(pacing::to_string(r), 0);
    suppressed.emplace(pacing::to_string(r), 0);
  }
  for (const auto k : unsubscribe_kinds) unsubscribes.emplace(k, 0);
  for (const auto o : journey_outcomes) journeys.emplace(o, 0);
}

std::optional<double> unsubscribe_rate(std::int64_t unsubscribes, std::int64_t sent) {
  if (sent <= 0) return std::nullopt;
  return static_cast<double>(unsubscribes) / static_cast<double>(sent);
}

result<stats_range> parse_stats_range(const stats_query& query, time_point now) {
  const auto parse = [](const std::string& text) -> std::optional<time_point> {
    // parse_rfc3339 saturates beyond what time_point holds: nothing is stored there.
    const auto t = ingest::parse_rfc3339(text);
    if (!t || *t == time_point::min() || *t == time_point::max()) return std::nullopt;
    return t;
  };
  auto to = end_of_hour(now);
  if (query.to) {
    const auto t = parse(*query.to);
    if (!t) return fail("invalid_to", "must be an RFC 3339 date-time such as 2026-03-08T00:00:00Z", "to");
    to = std::chrono::ceil<hours>(*t);
  }
  auto from = to - default_stats_range;
  if (query.from) {
    const auto t = parse(*query.from);
    if (!t) return fail("invalid_from", "must be an RFC 3339 date-time such as 2026-03-01T00:00:00Z", "from");
    from = std::chrono::floor<hours>(*t);
  }
  if (to <= from) return fail("invalid_range", "to must be later than from", "to");
  if (to - from > max_stats_range) {
    return fail("invalid_range", "a range spans at most " + format_duration(max_stats_range), "from");
  }
  return stats_range{to_time(from), to_time(to)};
}

nlohmann::json to_json(const scenario_stats& s) {
  json steps = json::array();
  for (const auto& step : s.steps) {
    json one = figures_json(step.figures);
    one["name"] = step.name;
    one["configured"] = step.configured;
    steps.push_back(std::move(one));
  }
  json per_day = json::array();
  for (const auto& d : s.per_day) {
    per_day.push_back({{"date", format_rfc3339(d.day).substr(0, 10)},
                       {"sent", d.sent},
                       {"deferred", d.deferred},
                       {"suppressed", d.suppressed},
                       {"unsubscribes", d.unsubscribes},
                       {"unsubscribe_rate", rate_json(d.unsubscribes, d.sent)}});
  }
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
          {"totals", figures_json(s.totals)},
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
    for (const auto& step : loaded->steps) out.steps.push_back(step_stats{step.name, true, {}});
  }
  const auto configured_steps = static_cast<std::ptrdiff_t>(out.steps.size());
  auto counters = store->totals(source_of(name), range->from, range->to);
  if (!counters) return tl::unexpected(std::move(counters.error()));
  for (const auto& c : *counters) {
    add(out.totals, c.metric, c.n);
    if (!c.step.empty()) add(step_named(out.steps, c.step), c.metric, c.n);
  }
  auto outcomes = storage::make_sqlite_journey_store(reader_)->count_outcomes(name, range->from, range->to);
  if (!outcomes) return tl::unexpected(std::move(outcomes.error()));
  for (const auto& o : *outcomes) {
    out.totals.journeys[o.outcome] += o.n;
    if (!o.step.empty()) step_named(out.steps, o.step).journeys[o.outcome] += o.n;
  }
  std::sort(out.steps.begin() + configured_steps, out.steps.end(),
            [](const step_stats& a, const step_stats& b) { return a.name < b.name; });

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
