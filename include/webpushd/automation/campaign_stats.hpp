#pragma once
/// @file
/// @brief What a campaign earned and what it cost: the read side behind
/// `GET /v1/campaigns/{id}/stats` (docs/API.md, "Campaign stats").
///
/// The figures are the hourly counters of the campaign's source
/// ("campaign:<id>", storage::pacing_store) as stats_figures reads them;
/// `entered` counts the outbox messages its fan-out queued in the range.
/// Without `from`, the range starts with the hour the campaign was created.

#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/stats_figures.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/campaign_store.hpp"

namespace webpushd::storage {
class database;
}

namespace webpushd::automation {

/// @brief Everything `GET /v1/campaigns/{id}/stats` answers.
struct campaign_stats {
  storage::campaign_row campaign;
  stats_range range;
  time_point generated_at{};
  stats_figures totals;               ///< funnel.entered: messages queued in the range
  std::vector<day_stats> per_day;     ///< every UTC day the range touches, earliest first
  std::vector<variant_stats> variants;  ///< empty when its messages carry no variant
};

/// @brief Reads one campaign's stats through `db` (a read connection).
/// `unknown_campaign` (404, field "id") for an id never stored; the
/// parse_stats_range errors for a bad query.
result<campaign_stats> read_campaign_stats(storage::database& db, std::string_view id, const stats_query& query,
                                           time_point now);

/// @brief The JSON of docs/API.md, "Campaign stats".
nlohmann::json to_json(const campaign_stats& stats);

}  // namespace webpushd::automation
