#pragma once
/// @file
/// @brief Adaptive caps: a scenario whose pushes drive people away throttles
/// itself. Run periodically (the scheduler does, every few minutes); each
/// run judges every scenario with `pacing.adaptive` on the sends and
/// attributed unsubscribes since its last level change (at most its window
/// back), so a new level is judged on its own effect, and moves the level
/// one step at most (see adaptive_policy). Every change is stored with the
/// figures behind it (pacing_level_log) and logged.

#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/pacing/policy.hpp"
#include "webpushd/storage/pacing_store.hpp"

namespace webpushd::storage {
class database;
}

namespace webpushd::pacing {

/// @brief Judges every adaptive scenario of `p` at `now` on `connection`
/// (inside the caller's transaction); returns the level changes made.
result<std::vector<storage::level_change>> adjust_levels(storage::database& connection, const policy& p, time_point now);

}  // namespace webpushd::pacing
