#include "webpushd/automation/stats_figures.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "webpushd/core/text.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/pacing/rules.hpp"

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

// A whole hour or day as a time_point. The arithmetic before it is done in
// hours and days, so rounding near the ends of time_point's range
// (nanosecond ticks: 1677–2262) saturates instead of overflowing.
template <class Unit>
time_point to_time(std::chrono::time_point<std::chrono::system_clock, Unit> t) {
  return from_unix_millis(std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

// The counter vocabulary of the file comment in stats_figures.hpp.
struct metric {
  enum class kind {
    sent, deferred, suppressed, unsubscribed, shown, closed, clicked, clicked_by, converted, influenced, revenue,
    influenced_revenue, other
  } what = kind::other;
  std::string detail;  // reason, kind, action or currency
};

metric parse_metric(std::string_view text) {
  using k = metric::kind;
  constexpr std::array<std::pair<std::string_view, k>, 6> plain{{{"sent", k::sent},
                                                                  {"shown", k::shown},
                                                                  {"closed", k::closed},
                                                                  {"clicked", k::clicked},
                                                                  {"converted", k::converted},
                                                                  {"influenced", k::influenced}}};
  for (const auto& [name, what] : plain) {
    if (text == name) return {what, {}};
  }
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return {};
  constexpr std::array<std::pair<std::string_view, k>, 6> detailed{{{"deferred", k::deferred},
                                                                     {"suppressed", k::suppressed},
                                                                     {"unsubscribed", k::unsubscribed},
                                                                     {"clicked", k::clicked_by},
                                                                     {"revenue", k::revenue},
                                                                     {"influenced_revenue", k::influenced_revenue}}};
  const auto prefix = text.substr(0, colon);
  for (const auto& [name, what] : detailed) {
    if (prefix == name) return {what, std::string{text.substr(colon + 1)}};
  }
  return {};
}

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// Hundredths by currency → units by currency.
json money_json(const count_map& hundredths) {
  json out = json::object();
  for (const auto& [currency, n] : hundredths) out[currency] = static_cast<double>(n) / 100.0;
  return out;
}

json revenue_json(const stats_figures& f) {
  return {{"converted", money_json(f.revenue)}, {"influenced", money_json(f.influenced_revenue)}};
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Judges `v` against `base` on click rate (clicked ÷ sent).
automation::significance judge(const variant_stats& base, const variant_stats& v) {
  automation::significance s;
  s.baseline = base.name;
  const auto& b = base.figures;
  const auto& f = v.figures;
  const auto base_rate = ratio(b.clicked, b.sent);
  const auto rate = ratio(f.clicked, f.sent);
  if (base_rate && rate && *base_rate > 0) s.lift = (*rate - *base_rate) / *base_rate;
  const auto test = two_proportion_z_test(b.clicked, b.sent, f.clicked, f.sent);
  if (test) {
    s.z = test->z;
    s.p_value = test->p_value;
  }
  const bool enough = b.sent >= min_sends_for_significance && f.sent >= min_sends_for_significance;
  const std::string sends = " (" + base.name + ": " + std::to_string(b.sent) + ", " + v.name + ": " +
                            std::to_string(f.sent) + ")";
  if (!enough) {
    s.note = "too few sends to judge: each variant needs at least " + std::to_string(min_sends_for_significance) +
             sends;
  } else if (!test) {
    s.note = f.clicked > f.sent || b.clicked > b.sent
                 ? "more clicks than sends in this range (clicks on pushes sent before it): widen the range"
                 : "nothing to compare: the click rates are both " + fixed(base_rate.value_or(0) * 100, 0) + "%";
  } else if (test->p_value >= significance_level) {
    s.note = "not significant: p = " + fixed(test->p_value, 3) + " is not below " + fixed(significance_level, 2) +
             ", the difference may be chance";
  } else {
    s.significant = true;
    s.note = "significant: p = " + fixed(test->p_value, 3) + " is below " + fixed(significance_level, 2);
  }
  return s;
}

json significance_json(const std::optional<automation::significance>& s) {
  if (!s) return nullptr;
  return {{"baseline", s->baseline},       {"metric", "click_rate"},
          {"lift", optional_json(s->lift)}, {"z", optional_json(s->z)},
          {"p_value", optional_json(s->p_value)}, {"significant", s->significant},
          {"note", s->note}};
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

void stats_figures::add(std::string_view counter, std::int64_t n) {
  auto m = parse_metric(counter);
  using k = metric::kind;
  switch (m.what) {
    case k::sent: sent += n; break;
    case k::deferred: deferred[std::move(m.detail)] += n; break;
    case k::suppressed: suppressed[std::move(m.detail)] += n; break;
    case k::unsubscribed: unsubscribes[std::move(m.detail)] += n; break;
    case k::shown: shown += n; break;
    case k::closed: closed += n; break;
    case k::clicked: clicked += n; break;
    case k::clicked_by: clicks_by_action[std::move(m.detail)] += n; break;
    case k::converted: converted += n; break;
    case k::influenced: influenced += n; break;
    case k::revenue: revenue[std::move(m.detail)] += n; break;
    case k::influenced_revenue: influenced_revenue[std::move(m.detail)] += n; break;
    case k::other: break;
  }
}

void day_stats::add(std::string_view counter, std::int64_t n) {
  auto m = parse_metric(counter);
  using k = metric::kind;
  switch (m.what) {
    case k::sent: sent += n; break;
    case k::deferred: deferred += n; break;
    case k::suppressed: suppressed += n; break;
    case k::unsubscribed: unsubscribes += n; break;
    case k::shown: shown += n; break;
    case k::clicked: clicked += n; break;
    case k::converted: converted += n; break;
    case k::influenced: influenced += n; break;
    case k::revenue: revenue[std::move(m.detail)] += n; break;
    case k::closed:
    case k::clicked_by:
    case k::influenced_revenue:
    case k::other: break;
  }
}

std::int64_t total(const count_map& by) {
  return std::accumulate(by.begin(), by.end(), std::int64_t{0},
                         [](std::int64_t sum, const auto& entry) { return sum + entry.second; });
}

std::optional<double> ratio(std::int64_t part, std::int64_t whole) {
  if (whole <= 0) return std::nullopt;
  return static_cast<double>(part) / static_cast<double>(whole);
}

std::optional<double> unsubscribe_rate(std::int64_t unsubscribes, std::int64_t sent) {
  return ratio(unsubscribes, sent);
}

result<stats_range> parse_stats_range(const stats_query& query, time_point now, std::optional<time_point> earliest) {
  const auto parse = [](const std::string& text) -> std::optional<time_point> {
    // parse_rfc3339 saturates beyond what time_point holds: nothing is stored there.
    const auto t = ingest::parse_rfc3339(text);
    if (!t || *t == time_point::min() || *t == time_point::max()) return std::nullopt;
    return t;
  };
  auto to = std::chrono::floor<hours>(now) + hours{1};
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
  } else if (earliest) {
    from = std::clamp(std::chrono::floor<hours>(*earliest), to - max_stats_range, to - hours{1});
  }
  if (to <= from) return fail("invalid_range", "to must be later than from", "to");
  if (to - from > max_stats_range) {
    return fail("invalid_range", "a range spans at most " + format_duration(max_stats_range), "from");
  }
  return stats_range{to_time(from), to_time(to)};
}

std::vector<day_stats> days_of(const stats_range& range, const std::vector<storage::daily_total>& counters) {
  const auto first = std::chrono::floor<days>(range.from);
  const auto last = std::chrono::floor<days>(range.to - hours{1});
  std::vector<day_stats> out;
  for (auto d = first; d <= last; d += days{1}) {
    day_stats day;
    day.day = to_time(d);
    out.push_back(std::move(day));
  }
  for (const auto& c : counters) {
    const auto index = (std::chrono::floor<days>(c.day) - first).count();
    if (index >= 0 && index < std::ssize(out)) out[static_cast<std::size_t>(index)].add(c.metric, c.n);
  }
  return out;
}

std::optional<z_test> two_proportion_z_test(std::int64_t x1, std::int64_t n1, std::int64_t x2, std::int64_t n2) {
  if (n1 <= 0 || n2 <= 0 || x1 < 0 || x2 < 0 || x1 > n1 || x2 > n2) return std::nullopt;
  const double p1 = static_cast<double>(x1) / static_cast<double>(n1);
  const double p2 = static_cast<double>(x2) / static_cast<double>(n2);
  const double pooled = static_cast<double>(x1 + x2) / static_cast<double>(n1 + n2);
  const double se =
      std::sqrt(pooled * (1 - pooled) * (1 / static_cast<double>(n1) + 1 / static_cast<double>(n2)));
  if (!(se > 0)) return std::nullopt;
  const double z = (p2 - p1) / se;
  return z_test{z, std::erfc(std::fabs(z) / std::sqrt(2.0))};
}

std::vector<variant_stats> variants_of(const std::vector<variant_config>& configured,
                                       std::map<std::string, stats_figures, std::less<>> data) {
  data.erase("");
  std::vector<variant_stats> out;
  for (const auto& c : configured) {
    variant_stats v{c.name, c.weight, true, {}, std::nullopt};
    if (const auto it = data.find(c.name); it != data.end()) {
      v.figures = std::move(it->second);
      data.erase(it);
    }
    out.push_back(std::move(v));
  }
  // The rest by name (std::map's order).
  for (auto& [name, figures] : data) out.push_back(variant_stats{name, std::nullopt, false, std::move(figures), {}});
  for (std::size_t i = 1; i < out.size(); ++i) out[i].significance = judge(out.front(), out[i]);
  return out;
}

nlohmann::json figures_json(const stats_figures& f, bool with_journeys) {
  const auto with_total = [](const count_map& by) {
    json out = {{"total", total(by)}};
    for (const auto& [name, n] : by) out[name] = n;
    return out;
  };
  json out = {{"sent", f.sent},
              {"deferred", with_total(f.deferred)},
              {"suppressed", with_total(f.suppressed)},
              {"unsubscribes", with_total(f.unsubscribes)},
              {"unsubscribe_rate", optional_json(unsubscribe_rate(total(f.unsubscribes), f.sent))},
              {"funnel",
               {{"entered", f.entered},
                {"sent", f.sent},
                {"shown", f.shown},
                {"clicked", f.clicked},
                {"converted", f.converted}}},
              {"influenced", f.influenced},
              {"closed", f.closed},
              {"clicks_by_action", f.clicks_by_action},
              {"rates",
               {{"show_rate", optional_json(ratio(f.shown, f.sent))},
                {"click_rate", optional_json(ratio(f.clicked, f.sent))},
                {"conversion_rate", optional_json(ratio(f.converted, f.clicked))}}},
              {"revenue", revenue_json(f)}};
  if (with_journeys) out["journeys"] = f.journeys;
  return out;
}

nlohmann::json day_json(const day_stats& d) {
  return {{"date", format_rfc3339(d.day).substr(0, 10)},
          {"sent", d.sent},
          {"deferred", d.deferred},
          {"suppressed", d.suppressed},
          {"unsubscribes", d.unsubscribes},
          {"unsubscribe_rate", optional_json(unsubscribe_rate(d.unsubscribes, d.sent))},
          {"shown", d.shown},
          {"clicked", d.clicked},
          {"converted", d.converted},
          {"influenced", d.influenced},
          {"revenue", money_json(d.revenue)}};
}

nlohmann::json variant_json(const variant_stats& v) {
  const auto& f = v.figures;
  const auto unsubscribes = total(f.unsubscribes);
  return {{"name", v.name},
          {"weight", optional_json(v.weight)},
          {"configured", v.configured},
          {"sent", f.sent},
          {"shown", f.shown},
          {"clicked", f.clicked},
          {"converted", f.converted},
          {"influenced", f.influenced},
          {"revenue", revenue_json(f)},
          {"unsubscribes", unsubscribes},
          {"click_rate", optional_json(ratio(f.clicked, f.sent))},
          {"conversion_rate", optional_json(ratio(f.converted, f.clicked))},
          {"unsubscribe_rate", optional_json(unsubscribe_rate(unsubscribes, f.sent))},
          {"significance", significance_json(v.significance)}};
}

}  // namespace webpushd::automation
