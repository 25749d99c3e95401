#pragma once
/// @file
/// @brief What pacing (caps, quiet hours, unsubscribe learning) keeps
/// (schema v7): each subscription's recent admission times per scope, the
/// hourly counters per source and step, the adaptive level of each
/// scenario with the log of its changes, and unsubscribes attributed to the
/// push that most likely caused them.
///
/// Every method runs on the connection it was made from; the send-time gate
/// calls them inside the outbox's claim transaction, so a decision and the
/// history it is based on are one atomic step.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief History scope of every push a subscription receives.
inline constexpr std::string_view every_push_scope = "";
/// @brief History scope of one scenario's pushes: "s:<scenario>".
std::string scenario_scope(std::string_view scenario);
/// @brief History scope of one consent category's pushes: "c:<category>".
std::string category_scope(std::string_view category);

/// @brief An outbox source split for counting: "scenario:cart/first" →
/// {"scenario:cart", "first"}; "campaign:c_1" → {"campaign:c_1", ""}.
std::pair<std::string, std::string> split_source(std::string_view source);

/// @brief One counter of one source over a range: `metric` is "sent",
/// "deferred:<reason>", "suppressed:<reason>" or "unsubscribed:<kind>".
struct counter_total {
  std::string step;
  std::string variant;  ///< the A/B variant; empty: none
  std::string metric;
  std::int64_t n = 0;
};

/// @brief One counter of one source, every step together, over one UTC day.
struct daily_total {
  time_point day{};  ///< the day's first moment (00:00 UTC)
  std::string metric;
  std::int64_t n = 0;
};

/// @brief A change of a scenario's adaptive level, with the figures behind it.
struct level_change {
  std::string scenario;
  time_point at{};
  int from_level = 0;
  int to_level = 0;
  std::int64_t sends = 0;         ///< over the scenario's window when decided
  std::int64_t unsubscribes = 0;  ///< attributed to it over the same window
  std::string reason;             ///< human-readable: rate, threshold, resulting cap
};

/// @brief A scenario's current adaptive level (0: its configured caps).
struct level_state {
  int level = 0;
  std::optional<time_point> changed_at;
};

/// @brief An unsubscribe and the push it is attributed to.
struct unsubscribe_attribution {
  std::int64_t subscription_id = 0;
  time_point at{};
  std::string kind;      ///< gone (404/410) | unsubscribe (SDK) | withdraw (a category withdrawn)
  std::string category;  ///< the withdrawn category, for `withdraw`
  std::string source;    ///< "scenario:<name>" | "campaign:<id>" | …
  std::string step;
  std::string variant;  ///< the blamed push's A/B variant; empty: none
  std::int64_t outbox_id = 0;
  time_point sent_at{};
};

/// @brief Repository interface (SQLite now).
class pacing_store {
 public:
  virtual ~pacing_store() = default;

  /// @brief Admission times of one subscription in one scope, newest first.
  virtual result<std::vector<time_point>> history(std::int64_t subscription_id, std::string_view scope) = 0;
  /// @brief Replaces them (the caller keeps only as many as its caps need).
  virtual result<void> save_history(std::int64_t subscription_id, std::string_view scope,
                                    const std::vector<time_point>& newest_first) = 0;

  /// @brief Adds `n` to a counter of one step's variant (empty: none) in the
  /// hour of `at`.
  virtual result<void> count(std::string_view source, std::string_view step, std::string_view variant, time_point at,
                             std::string_view metric, std::int64_t n) = 0;
  /// @brief Sums per step, variant and metric over the hours in [from, to).
  virtual result<std::vector<counter_total>> totals(std::string_view source, time_point from, time_point to) = 0;
  /// @brief Sums per UTC day and metric, every step together, over the
  /// hours in [from, to); earliest day first, days without counts left out.
  virtual result<std::vector<daily_total>> daily_totals(std::string_view source, time_point from, time_point to) = 0;

  /// @brief A scenario's adaptive level.
  virtual result<level_state> level(std::string_view scenario) = 0;
  /// @brief Sets a scenario's level and logs the change.
  virtual result<void> change_level(const level_change& change) = 0;
  /// @brief Changes of one scenario's level, newest first.
  virtual result<std::vector<level_change>> level_log(std::string_view scenario, std::size_t limit) = 0;

  /// @brief Attributes an unsubscribe to the most recent push the
  /// subscription received (a push service accepted it) within `window`
  /// before `now`, stores the attribution and counts
  /// "unsubscribed:<kind>" for that push's source and step. Nothing when no
  /// push falls in the window.
  virtual result<std::optional<unsubscribe_attribution>> attribute_unsubscribe(
      std::int64_t subscription_id, std::string_view kind, std::string_view category, time_point now,
      std::chrono::milliseconds window) = 0;
  /// @brief Attributions to one source ("scenario:<name>"; empty: every
  /// source), newest first.
  virtual result<std::vector<unsubscribe_attribution>> attributions(std::string_view source, time_point from,
                                                                     time_point to, std::size_t limit) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<pacing_store> make_sqlite_pacing_store(database& db);

}  // namespace webpushd::storage
