#pragma once
/// @file
/// @brief What pacing enforces: frequency caps over rolling windows, a
/// minimum gap, quiet hours in the subscriber's own time zone, per-scenario
/// caps that tighten by themselves when a scenario drives people away
/// (adaptive), and how an unsubscribe is attributed. Built from the config
/// (`pacing:`) and the scenario files (`pacing:` of each scenario); the
/// send-time gate (gate.hpp) applies it to every message of every scenario
/// and campaign.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace webpushd::pacing {

/// @brief At most `count` pushes in any window of length `per`.
struct cap {
  int count = 1;
  std::chrono::milliseconds per{std::chrono::hours{24}};
  friend bool operator==(const cap&, const cap&) = default;
};

/// @brief "2 per 1d", "5 per 7d", "1 per 4h".
std::string describe(const cap& c);
/// @brief The inverse: "<count> per <duration>" (count 1–9999, duration as
/// parse_duration takes it, more than zero); nullopt if malformed.
std::optional<cap> parse_cap(std::string_view text);

/// @brief No pushes between `from` and `to`, local minutes after midnight.
/// from > to spans midnight (21:00–08:00); from == to means none.
struct quiet_hours {
  int from_minute = 21 * 60;
  int to_minute = 8 * 60;
};

/// @brief "21:00–08:00".
std::string describe(const quiet_hours& q);
/// @brief "HH:MM" (00:00–23:59) as minutes after midnight; nullopt if malformed.
std::optional<int> parse_clock_time(std::string_view text);
/// @brief "1%", "0.5%" as a fraction (0.01, 0.005), 0–100 %; nullopt if malformed.
std::optional<double> parse_percent(std::string_view text);

/// @brief Self-throttling of one scenario (opt-in).
///
/// Every `hold` at most, the scenario's unsubscribe rate over `window`
/// (attributed unsubscribes ÷ sends) is compared with the thresholds: above
/// `tighten_above`, its caps tighten one step (each cap's count − 1, not
/// below `min_count`); below `relax_below`, they relax one step. With fewer
/// than `min_sends` sends in the window nothing is judged: a handful of
/// unsubscribes among a dozen pushes is noise.
struct adaptive_policy {
  double tighten_above = 0.01;
  double relax_below = 0.005;
  std::chrono::milliseconds window{std::chrono::hours{24 * 7}};
  std::int64_t min_sends = 200;
  std::chrono::milliseconds hold{std::chrono::hours{24}};
  int min_count = 1;
};

/// @brief A scenario's own pacing (scenario files, `pacing:`).
struct scenario_pacing {
  std::vector<cap> caps;  ///< per subscription, this scenario's pushes only
  bool quiet_hours = true;  ///< false: this scenario may push in quiet hours (e.g. a requested alert)
  /// When a step meets a cap or quiet hours: true: wait for the next allowed
  /// moment, but no longer than `defer_max` after it was due (a cart reminder
  /// three days late is worse than none); false: drop it at once.
  bool defer = true;
  std::chrono::milliseconds defer_max{std::chrono::hours{12}};
  /// Context path of the number that ranks equal-priority messages competing
  /// for one slot ("cart.total"); empty: none.
  std::string value_field;
  std::optional<adaptive_policy> adaptive;
};

/// @brief The daemon's pacing, as configured.
struct policy {
  std::vector<cap> caps;  ///< every push a subscription receives, any source
  std::chrono::milliseconds min_gap{0};  ///< between any two pushes to a subscription
  std::map<std::string, std::vector<cap>, std::less<>> category_caps;  ///< by consent category
  std::optional<quiet_hours> quiet;
  std::string default_timezone = "UTC";  ///< for subscriptions that did not tell theirs
  /// An unsubscribe counts against the latest push the subscription received
  /// within this window before it.
  std::chrono::milliseconds unsubscribe_window{std::chrono::hours{24}};
  std::map<std::string, scenario_pacing, std::less<>> scenarios;  ///< by scenario name
};

/// @brief `caps` tightened by `level` steps: each count minus level, never
/// below min_count (nor below 1).
std::vector<cap> tightened(const std::vector<cap>& caps, int level, int min_count);
/// @brief The caps a scenario's messages meet at adaptive `level`: its
/// configured caps tightened to that level, or as configured when it is not
/// adaptive (its stored level is then not applied).
std::vector<cap> effective_caps(const scenario_pacing& s, int level);
/// @brief How many steps `caps` can tighten before every count is at min_count.
int max_level(const std::vector<cap>& caps, int min_count);

}  // namespace webpushd::pacing
