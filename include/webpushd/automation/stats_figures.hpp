#pragma once
/// @file
/// @brief What scenario stats and campaign stats share (docs/API.md,
/// "Scenario stats" and "Campaign stats"): the range a request counts, the
/// figures read from the hourly counters of one source (a scenario or a
/// campaign) — sends, pacing, unsubscribes, the funnel after delivery,
/// revenue — per day, and per A/B variant with a significance indication.
///
/// ## The counters (storage::pacing_store, per source, step, variant, hour)
/// `sent`, `deferred:<reason>`, `suppressed:<reason>`,
/// `unsubscribed:<kind>`; from the service worker's reports `shown`,
/// `closed`, `clicked` and `clicked:<action or body>`; from conversion
/// attribution `converted`, `influenced`, `revenue:<CUR>` and
/// `influenced_revenue:<CUR>` (hundredths of the unit).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/pacing_store.hpp"

namespace webpushd::automation {

/// @brief The hours stats count: [from, to), both on an hour boundary (UTC).
struct stats_range {
  time_point from{};
  time_point to{};
};

/// @brief The range without `from` and `to`: this long, up to the end of the
/// hour now is in.
inline constexpr std::chrono::hours default_stats_range{24 * 7};
/// @brief The longest range one request may ask for.
inline constexpr std::chrono::hours max_stats_range{24 * 400};

/// @brief The query of a stats request, as sent (RFC 3339 texts).
struct stats_query {
  std::optional<std::string> from;  ///< absent: `to` − default_stats_range (or the `earliest` hour)
  std::optional<std::string> to;    ///< absent: the end of the hour now is in
};

/// @brief Checks a stats query and widens it to whole hours (`from` down,
/// `to` up). Without `from`, the range starts at the hour of `earliest`
/// when given (a campaign's creation) — but spans at least an hour and at
/// most max_stats_range — else default_stats_range before `to`. Errors,
/// all 422: `invalid_from` / `invalid_to` (not an RFC 3339 date-time),
/// `invalid_range` (`to` not after `from`: field "to"; longer than
/// max_stats_range: field "from").
result<stats_range> parse_stats_range(const stats_query& query, time_point now,
                                      std::optional<time_point> earliest = std::nullopt);

/// @brief Counts by name (reason, kind, outcome, action, currency).
using count_map = std::map<std::string, std::int64_t, std::less<>>;

/// @brief Counts of one step, one variant, or a whole scenario or campaign,
/// over a range. deferred, suppressed, unsubscribes and journeys hold every
/// reason, kind or outcome the daemon knows (0 when none happened) and any
/// other one the data holds.
struct stats_figures {
  /// Scenario: journeys entered; a step: journeys that reached it; a
  /// campaign: messages queued. Not read from counters: set by the caller.
  std::int64_t entered = 0;
  std::int64_t sent = 0;        ///< accepted by a push service
  std::int64_t shown = 0;       ///< reported shown by the service worker
  std::int64_t closed = 0;      ///< reported dismissed
  std::int64_t clicked = 0;     ///< reported clicked (body or an action)
  std::int64_t converted = 0;   ///< purchases attributed to a click
  std::int64_t influenced = 0;  ///< purchases after a push shown, not clicked
  count_map clicks_by_action;   ///< action name or "body" → clicks
  count_map revenue;            ///< conversions' revenue: currency → hundredths
  count_map influenced_revenue;  ///< influenced purchases' revenue: currency → hundredths
  count_map deferred;            ///< by pacing hold reason
  count_map suppressed;          ///< by pacing hold reason
  count_map unsubscribes;        ///< by kind: gone, unsubscribe, withdraw
  count_map journeys;            ///< journey_log lines by outcome (scenarios)

  stats_figures();
  /// @brief Adds a counter (the vocabulary in the file comment); other
  /// metrics are left out.
  void add(std::string_view metric, std::int64_t n);
};

/// @brief The sum of a count_map.
std::int64_t total(const count_map& by);

/// @brief part ÷ whole; nullopt when whole is 0.
std::optional<double> ratio(std::int64_t part, std::int64_t whole);

/// @brief Unsubscribes ÷ sent; nullopt when nothing was sent.
std::optional<double> unsubscribe_rate(std::int64_t unsubscribes, std::int64_t sent);

/// @brief One UTC day of a range, every step together.
struct day_stats {
  time_point day{};  ///< 00:00 UTC
  std::int64_t sent = 0;
  std::int64_t deferred = 0;
  std::int64_t suppressed = 0;
  std::int64_t unsubscribes = 0;
  std::int64_t shown = 0;
  std::int64_t clicked = 0;
  std::int64_t converted = 0;
  std::int64_t influenced = 0;
  count_map revenue;  ///< conversions' revenue: currency → hundredths

  /// @brief Adds a counter, as stats_figures::add.
  void add(std::string_view metric, std::int64_t n);
};

/// @brief Every UTC day `range` touches, earliest first, with `counters` added.
std::vector<day_stats> days_of(const stats_range& range, const std::vector<storage::daily_total>& counters);

/// @brief A two-proportion z-test: z of p2 − p1 over the pooled standard
/// error, and its two-sided p-value (erfc(|z|/√2)).
struct z_test {
  double z = 0;
  double p_value = 1;
};

/// @brief Tests x2/n2 against x1/n1. nullopt when it cannot be computed: a
/// side without trials, more successes than trials, or nothing to tell the
/// sides apart by (no success at all, or only successes: the pooled
/// standard error is 0).
std::optional<z_test> two_proportion_z_test(std::int64_t x1, std::int64_t n1, std::int64_t x2, std::int64_t n2);

/// @brief The significance level a variant's difference must beat.
inline constexpr double significance_level = 0.05;
/// @brief Sends each side needs before a difference is called significant:
/// below it the normal approximation behind the z-test is too rough, and
/// an early lead too often vanishes.
inline constexpr std::int64_t min_sends_for_significance = 100;

/// @brief A variant's click rate against the baseline's.
struct significance {
  std::string baseline;          ///< the baseline variant's name
  std::optional<double> lift;    ///< (rate − baseline's) ÷ baseline's; nullopt when the baseline's is 0 or unknown
  std::optional<double> z;       ///< nullopt when the test cannot be computed
  std::optional<double> p_value;
  bool significant = false;      ///< p < significance_level and both sides have min_sends_for_significance
  std::string note;              ///< why (not) significant, for people
};

/// @brief A variant as configured (names and weights from the scenario or
/// campaign).
struct variant_config {
  std::string name;
  double weight = 0;
};

/// @brief One variant's figures.
struct variant_stats {
  std::string name;
  std::optional<double> weight;  ///< nullopt: not configured (found only in the data)
  bool configured = false;
  stats_figures figures;
  std::optional<automation::significance> significance;  ///< nullopt for the baseline
};

/// @brief The variants of one step or campaign: the configured ones in
/// their order, then those found only in `data` by name (a variant no longer
/// configured, or all of them while the loaded definition has none). The
/// first is the baseline; every other gets a significance against it.
/// Figures of the variant "" (a message without variants) are left out.
std::vector<variant_stats> variants_of(const std::vector<variant_config>& configured,
                                       std::map<std::string, stats_figures, std::less<>> data);

/// @brief A figures object of the API: sent, deferred, suppressed,
/// unsubscribes, unsubscribe_rate, journeys (with `with_journeys`), funnel,
/// influenced, closed, clicks_by_action, rates, revenue.
nlohmann::json figures_json(const stats_figures& f, bool with_journeys);
/// @brief One per_day entry.
nlohmann::json day_json(const day_stats& d);
/// @brief One variants entry.
nlohmann::json variant_json(const variant_stats& v);

}  // namespace webpushd::automation
