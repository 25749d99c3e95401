#pragma once
/// @file
/// @brief The marketers' dashboard: `GET /dashboard` (the page, or the login
/// form without a session), `POST /dashboard/login`, `POST /dashboard/logout`,
/// `GET /dashboard/session` and the page's files (web/dashboard/, embedded).
/// The page itself reads only the JSON API, through `reader` routes.
///
/// Every page is sent with a strict Content-Security-Policy (scripts and
/// styles only from files of this origin, no inline script, no framing) and
/// `Cache-Control: no-store`. Login and logout are refused from other
/// origins (`Origin` must be this daemon's), and answer HTML to a browser's
/// form (`Accept: text/html`) and the project's JSON errors otherwise.

#include <string>

#include "webpushd/api/dashboard_auth.hpp"
#include "webpushd/api/router.hpp"

namespace webpushd::api {

/// @brief The Content-Security-Policy of the dashboard's pages.
inline constexpr std::string_view dashboard_csp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// @brief Settings of the dashboard routes.
struct dashboard_options {
  /// @brief The daemon's public origin (`https://push.shop.example`), also
  /// accepted as the `Origin` of a login behind a proxy; empty: none.
  std::string public_origin;
};

/// @brief Adds the dashboard's routes. `auth` must outlive the router.
void add_dashboard_routes(router& r, dashboard_auth& auth, dashboard_options options = {});

/// @brief Whether a login or logout with this `Origin` (empty: none sent)
/// comes from the daemon's own pages: the origin's host (and port) is the
/// request's `Host`, or the origin is `public_origin`.
bool same_origin_request(std::string_view origin, std::string_view host, std::string_view public_origin);

}  // namespace webpushd::api
