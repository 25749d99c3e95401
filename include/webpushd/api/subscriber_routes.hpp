#pragma once
/// @file
/// @brief The subscriber, consent and GDPR routes of docs/API.md: thin
/// handlers that parse JSON into the consent module's request structs, call
/// consent::subscriber_service, and map its result to HTTP.

#include <string>

#include "webpushd/api/router.hpp"
#include "webpushd/consent/subscriber_service.hpp"

namespace webpushd::api {

/// @brief Settings of the subscriber routes.
struct subscriber_routes_options {
  /// @brief Secret under which the shop backend signs customer ids for
  /// `POST /v1/subscriptions/{id}/identify` (hex HMAC-SHA-256). Empty: the
  /// route answers 403, and only the backend can link customers.
  std::string identify_secret;
};

/// @brief Browser-facing routes: consent texts, subscribe, read, change
/// consent, replace endpoint, identify, unsubscribe.
void add_subscriber_routes(router& r, consent::subscriber_service& service, subscriber_routes_options options);

/// @brief Backend routes: link a customer, GDPR export and erasure.
void add_gdpr_routes(router& r, consent::subscriber_service& service);

}  // namespace webpushd::api
