#pragma once
/// @file
/// @brief `POST /v1/campaigns` and `DELETE /v1/campaigns/{id}` (backend
/// access: Bearer API key), `GET /v1/campaigns`, `GET /v1/campaigns/{id}` and
/// `GET /v1/campaigns/{id}/stats` (reader access: the API key or a dashboard
/// session): thin handlers over automation::campaign_service (docs/API.md,
/// "Campaigns" and "Campaign stats").

#include "webpushd/api/router.hpp"
#include "webpushd/automation/campaigns.hpp"

namespace webpushd::api {

/// @brief Adds the campaign routes. `service` must outlive the router.
void add_campaign_routes(router& r, automation::campaign_service& service);

}  // namespace webpushd::api
