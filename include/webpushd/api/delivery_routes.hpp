#pragma once
/// @file
/// @brief `POST /v1/deliveries/{id}/events`: the service worker's shown /
/// clicked / closed reports.

#include "webpushd/api/router.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::api {

/// @brief Adds the beacon route (browser access: CORS for the shop origins).
void add_delivery_event_routes(router& r, tracking::beacon_recorder& recorder);

}  // namespace webpushd::api
