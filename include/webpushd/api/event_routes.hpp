#pragma once
/// @file
/// @brief `POST /v1/events`: shop events from the backend, answered once durable.

#include "webpushd/api/router.hpp"
#include "webpushd/ingest/events.hpp"

namespace webpushd::api {

/// @brief Adds the event route (backend access: Bearer API key).
void add_event_routes(router& r, ingest::event_ingestor& ingestor);

}  // namespace webpushd::api
