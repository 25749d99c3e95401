#pragma once
/// @file
/// @brief The pacing decision as a pure function of the policy, the
/// subscription's recent pushes and the time: may this message go now, and
/// if not, why and when is the next moment it may. No I/O: the gate
/// (gate.hpp) loads the history and stores the outcome; tests drive it with
/// any clock.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/pacing/policy.hpp"

namespace date {
class time_zone;
}

namespace webpushd::pacing {

/// @brief Admission times of one subscription's recent pushes, newest first.
struct history {
  std::vector<time_point> every;     ///< any source
  std::vector<time_point> scenario;  ///< this message's scenario
  std::vector<time_point> category;  ///< this message's consent category
};

/// @brief What a message is, for pacing.
struct message_facts {
  std::string scenario;  ///< empty: not a scenario's (a campaign's)
  std::string category;  ///< empty: none
  const date::time_zone* zone = nullptr;  ///< the subscriber's; nullptr: UTC
};

/// @brief Why a message may not go now. The text form ("quiet_hours",
/// "global_cap" …) names counters and the stats API's reasons.
enum class hold_reason { quiet_hours, min_gap, global_cap, scenario_cap, category_cap };
const char* to_string(hold_reason r) noexcept;

/// @brief A message held back: the first rule it meets now, and the earliest
/// moment every rule allows it (quiet hours, caps and gap together).
struct hold {
  hold_reason reason = hold_reason::global_cap;
  std::string detail;  ///< "2 per 1d", "21:00–08:00 Europe/Warsaw", "2h"
  time_point until{};
};

/// @brief nullopt: it may go now. `level` is the scenario's adaptive level.
std::optional<hold> check(const policy& p, const message_facts& m, const history& h, int level, time_point now);

/// @brief When quiet hours hold at `now` in `zone` (nullptr: UTC), the moment
/// they end (DST-aware: a local end time skipped by a clock change is the
/// moment of the change); otherwise nullopt.
std::optional<time_point> quiet_until(const quiet_hours& q, const date::time_zone* zone, time_point now);

/// @brief Adds `now` to a history and drops what no cap (nor the gap) of
/// `caps` can still need: at most the largest count, none older than the
/// longest window.
void remember(std::vector<time_point>& newest_first, time_point now, const std::vector<cap>& caps);

}  // namespace webpushd::pacing
