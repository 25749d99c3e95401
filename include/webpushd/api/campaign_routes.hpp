#pragma once
/// @file
/// @brief `POST /v1/campaigns`, `GET /v1/campaigns`, `GET /v1/campaigns/{id}`
/// and `DELETE /v1/campaigns/{id}` (backend access: Bearer API key): thin
/// handlers over automation::campaign_service (docs/API.md, "Campaigns").

#include "webpushd/api/router.hpp"
#include "webpushd/automation/campaigns.hpp"

namespace webpushd::api {

/// @brief Adds the campaign routes. `service` must outlive the router.
void add_campaign_routes(router& r, automation::campaign_service& service);

}  // namespace webpushd::api
