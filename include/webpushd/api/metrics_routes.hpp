#pragma once
/// @file
/// @brief `GET /metrics` (open: the Prometheus text exposition, for the
/// operator's scraper) and `GET /v1/status` (reader access: an API key or a
/// dashboard session; the live health figures as JSON): thin handlers over metrics::registry
/// (docs/API.md, "Metrics" and "Status").

#include "webpushd/api/router.hpp"
#include "webpushd/metrics/registry.hpp"

namespace webpushd::api {

/// @brief Adds both routes. `registry` must outlive the router.
void add_metrics_routes(router& r, metrics::registry& registry);

/// @brief The `GET /v1/status` body for a snapshot.
nlohmann::json status_json(const metrics::status_snapshot& s);

}  // namespace webpushd::api
