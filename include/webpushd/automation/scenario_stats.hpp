#pragma once
/// @file
/// @brief What a scenario costs and what it saves: the read side behind
/// `GET /v1/scenarios` and `GET /v1/scenarios/{name}/stats` (docs/API.md,
/// "Scenario stats").
///
/// ## Where the figures come from
/// - storage::pacing_store's hourly counters per source ("scenario:<name>")
///   and step: `sent` when a push service accepted a message,
///   `deferred:<reason>` and `suppressed:<reason>` from the send-time gate,
///   `unsubscribed:<kind>` when an unsubscribe was attributed to one of the
///   scenario's pushes; its adaptive level, the log of level changes and the
///   attributions themselves.
/// - the same counters from tracking: `shown`, `closed`, `clicked`,
///   `clicked:<action>` from the service worker's reports; `converted`,
///   `influenced` and revenue from conversion attribution — per step and
///   per A/B variant (stats_figures.hpp).
/// - journey_log: what the scenario's journeys did (entered, exited, …) and
///   which journeys reached each step (the funnel's `entered`).
/// - The current scenario set and pacing policy, asked for at every call,
///   so a config reload shows at once.
///
/// ## Time
/// Counters are hourly, so every range is whole UTC hours: a requested one
/// is widened to them (the answer says which hours it counted), and the
/// default and the rolling windows end with the hour now is in.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/scenario.hpp"
#include "webpushd/automation/stats_figures.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/pacing/policy.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/pacing_store.hpp"

namespace webpushd::automation {

/// @brief How many level changes and attributed unsubscribes stats show.
inline constexpr std::size_t stats_recent_limit = 20;

/// @brief One step's figures.
struct step_stats {
  std::string name;
  /// @brief false: not a step of the loaded scenario (data from before the
  /// step was renamed or removed, or from a scenario no longer loaded).
  bool configured = true;
  stats_figures figures;  ///< entered: journeys that reached the step
  std::vector<variant_stats> variants;  ///< its A/B variants; empty when its messages carry none
};

/// @brief Sends and attributed unsubscribes over a stretch of time.
struct send_figures {
  std::int64_t sent = 0;
  std::int64_t unsubscribes = 0;
};

/// @brief A rolling window ending with the hour now is in.
struct window_stats {
  std::string name;  ///< "24h", "7d", "30d"
  send_figures figures;
};

/// @brief A scenario's pacing: as configured, and as in force now.
struct scenario_pacing_view {
  pacing::scenario_pacing configured;  ///< defaults when the policy has nothing for it
  int level = 0;                       ///< in force (0 unless adaptive)
  std::optional<time_point> level_changed_at;
  std::vector<storage::level_change> level_log;  ///< newest first, at most stats_recent_limit
};

/// @brief An attributed unsubscribe as stats show it.
struct recent_unsubscribe {
  storage::unsubscribe_attribution attribution;
  std::string subscription;  ///< the subscription's public id; empty for one without (made by v1 tools)
};

/// @brief Everything `GET /v1/scenarios/{name}/stats` answers.
struct scenario_stats {
  std::string scenario;
  bool loaded = true;  ///< in the current scenario set (else: only its stored data)
  stats_range range;
  time_point generated_at{};
  stats_figures totals;          ///< every step together, plus journey-level log lines; entered: journeys entered
  std::vector<step_stats> steps;  ///< the loaded steps in order, then others with data by name
  std::vector<day_stats> per_day;  ///< every UTC day the range touches, earliest first
  std::vector<window_stats> windows;  ///< 24h, 7d, 30d
  scenario_pacing_view pacing;
  std::vector<recent_unsubscribe> recent_unsubscribes;  ///< in the range, newest first
};

/// @brief The JSON of docs/API.md, "Scenario stats".
nlohmann::json to_json(const scenario_stats& stats);

/// @brief One loaded scenario in `GET /v1/scenarios`.
struct scenario_overview {
  scenario_def scenario;
  send_figures last_7d;  ///< as the "7d" window of its stats
  int level = 0;         ///< in force
};

/// @brief The JSON of one entry of `GET /v1/scenarios`.
nlohmann::json to_json(const scenario_overview& overview);

/// @brief The stats reads. Uses its own connection, serialised by a mutex
/// (a connection serves one thread at a time); each call reads the current
/// scenario set and policy from the providers.
class scenario_stats_service {
 public:
  using scenarios_provider = std::function<std::shared_ptr<const scenario_set>()>;
  using policy_provider = std::function<std::shared_ptr<const pacing::policy>()>;

  /// @brief `reader` is a connection to the daemon's database, owned by the
  /// service; `clk` must outlive it.
  scenario_stats_service(storage::database reader, scenarios_provider scenarios, policy_provider policy,
                         const clock& clk);
  scenario_stats_service(const scenario_stats_service&) = delete;
  scenario_stats_service& operator=(const scenario_stats_service&) = delete;

  /// @brief One scenario's stats over the query's range. `unknown_scenario`
  /// (404) when it is not loaded and nothing is stored about it; the
  /// parse_stats_range errors for a bad query.
  result<scenario_stats> stats(std::string_view name, const stats_query& query);

  /// @brief The loaded scenarios in their order, each with its last 7 days.
  result<std::vector<scenario_overview>> list();

 private:
  scenarios_provider scenarios_;
  policy_provider policy_;
  const clock& clock_;
  std::mutex reader_mutex_;
  storage::database reader_;
};

}  // namespace webpushd::automation
