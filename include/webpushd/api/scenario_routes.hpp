#pragma once
/// @file
/// @brief `GET /v1/scenarios` and `GET /v1/scenarios/{name}/stats` (reader
/// access: a Bearer API key or a dashboard session): thin handlers over
/// automation::scenario_stats_service (docs/API.md, "Scenario stats").

#include "webpushd/api/router.hpp"
#include "webpushd/automation/scenario_stats.hpp"

namespace webpushd::api {

/// @brief Adds the scenario routes. `service` must outlive the router.
void add_scenario_routes(router& r, automation::scenario_stats_service& service);

}  // namespace webpushd::api
