#pragma once
/// @file
/// @brief The two simple endpoints: `GET /healthz` and `GET /v1/vapid-public-key`.

#include <functional>
#include <string>

#include "webpushd/core/error.hpp"

namespace webpushd::api {

class router;

/// @brief A liveness check of a dependency. Runs on an I/O thread for each
/// /healthz request, so it must be quick.
using health_check = std::function<result<void>()>;

/// @brief `GET /healthz` (access::open): 200 `{"status":"ok","storage":"ok","version":…}`,
/// or 503 `{"status":"unavailable","storage":"failing","error":{…}}` when
/// `storage` fails (the detail goes to the log, not to the client).
void add_health_route(router& r, health_check storage);

/// @brief `GET /v1/vapid-public-key` (access::browser): `{"publicKey":"<base64url>"}`.
void add_vapid_public_key_route(router& r, std::string public_key);

}  // namespace webpushd::api
