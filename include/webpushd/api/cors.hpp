#pragma once
/// @file
/// @brief CORS limited to the shop origins in the config.
///
/// Only routes the router marks browser-facing (access::browser and
/// access::subscriber) ever carry CORS headers; backend routes never do, so a
/// browser cannot call them even with a leaked key (the preflight is refused).

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/api/http.hpp"

namespace webpushd::api {

/// @brief The origins allowed to call browser-facing routes.
class cors_policy {
 public:
  /// @brief How long browsers may cache a preflight answer (seconds).
  static constexpr int max_age_seconds = 600;

  /// @brief `allowed_origins` as browsers send them: `https://shop.example`
  /// or `http://localhost:3000` (scheme, host, optional port; no path).
  /// Compared exactly, ignoring ASCII case; there is no wildcard.
  explicit cors_policy(std::vector<std::string> allowed_origins = {});

  /// @brief Whether `origin` (an `Origin` header value) is allowed.
  bool allows(std::string_view origin) const;

  /// @brief For a browser-facing route's response: adds `Vary: Origin`, and
  /// `Access-Control-Allow-Origin` echoing `origin` (the request's `Origin`
  /// header) if it is allowed.
  void decorate(std::string_view origin, response& res) const;

  /// @brief Answers a preflight (`OPTIONS` with `Origin` and
  /// `Access-Control-Request-Method`) for a path whose browser-facing methods
  /// are `methods`: 204 with the CORS headers if the origin is allowed and the
  /// method is one of them, else 403 without any CORS header.
  response preflight(const request& req, std::span<const std::string> methods) const;

  /// @brief The configured origins (normalised to lower case).
  const std::vector<std::string>& origins() const { return origins_; }

 private:
  std::vector<std::string> origins_;
};

}  // namespace webpushd::api
