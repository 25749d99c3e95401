#pragma once
/// @file
/// @brief The HTTP values handlers work with: a plain request, a plain
/// response, the callback that delivers it, and the one mapping from error
/// codes to HTTP status. No Beast types: handlers never see the transport.

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "webpushd/core/error.hpp"

namespace webpushd::api {

/// @brief One parsed HTTP request, owned by the handler that receives it.
struct request {
  std::string method;                                        ///< "GET", "POST", … (as sent, upper case)
  std::string target;                                        ///< raw request target, e.g. "/v1/x?a=b"
  std::string path;                                          ///< percent-decoded path without the query
  std::map<std::string, std::string> query;                  ///< decoded; a repeated name keeps the first value
  std::map<std::string, std::string> params;                 ///< from the route pattern, e.g. {id}
  std::vector<std::pair<std::string, std::string>> headers;  ///< in arrival order, names as sent
  std::string body;
  std::string remote_ip;  ///< peer address, or X-Forwarded-For's last entry if trusted
  unsigned version = 11;  ///< 10 for HTTP/1.0, 11 for HTTP/1.1
  std::string route;      ///< the matched pattern, e.g. "/v1/subscriptions/{id}" (for logs and metrics)
  /// @brief Set by the router on access::backend routes, and on access::reader
  /// routes called with a key: the name of the API key that matched.
  std::string api_key_name;
  /// @brief Set by the router on access::reader routes called with a
  /// dashboard session: the logged-in user's name.
  std::string dashboard_user;
  /// @brief Set by the router on access::subscriber routes: the token from
  /// `Authorization: Subscriber <token>`, not yet verified (the handler checks
  /// it against the subscription it names).
  std::string subscriber_token;

  /// @brief The first header named `name` (case-insensitive), "" if absent.
  std::string header(std::string_view name) const;
  /// @brief How many headers are named `name` (case-insensitive).
  std::size_t header_count(std::string_view name) const;
};

/// @brief What a handler answers. The server adds Content-Length, Date,
/// Server, Connection, and `Cache-Control: no-store` unless `headers` sets a
/// Cache-Control of its own.
struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers

  /// @brief Adds a header (no check for duplicates).
  response& set_header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
    return *this;
  }
};

/// @brief Delivers the response. Call it exactly once, from any thread; later
/// calls are ignored. If every copy is destroyed without a call, the client
/// gets a 500 (and the log says a handler dropped its request).
using respond_fn = std::function<void(response)>;

/// @brief Handles one request: answer at once or later (e.g. after a durable
/// write on another thread). It runs on an I/O thread, so it must not block:
/// hand slow work (a commit, a crypto batch) to its own thread and call the
/// respond_fn from there. Return errors through error_response(), not by
/// throwing; an exception still becomes a generic 500 and a log line.
using handler = std::function<void(request&&, respond_fn)>;

/// @brief THE mapping from error codes to HTTP status, used by error_response:
///
/// | code | status |
/// |---|---|
/// | `malformed_*`, `invalid_json`, `bad_request` | 400 |
/// | `unauthorized` | 401 |
/// | `forbidden` | 403 |
/// | `not_found`, `unknown_*` (except `unknown_category`) | 404 |
/// | `subscription_inactive` | 409 |
/// | `method_not_allowed` | 405 |
/// | `conflict`, `*_conflict`, `already_*` | 409 |
/// | `gone` | 410 |
/// | `payload_too_large`, `*_too_large` (except headers) | 413 |
/// | `unsupported_media_type` | 415 |
/// | `invalid_*`, `*_invalid`, `missing_*`, `*_required`, `*_not_allowed`, `unknown_category`, `consent_missing` | 422 |
/// | `rate_limited` | 429 |
/// | `headers_too_large` | 431 |
/// | `storage_*`, `unavailable`, `shutting_down` | 503 |
/// | anything else | 500 |
///
/// 400 is for a request that could not be read at all; 422 for a readable one
/// whose values are wrong (the error's `field` says which).
int status_for(std::string_view error_code);

/// @brief A JSON response. Never throws for invalid UTF-8 in strings (it is
/// replaced with U+FFFD).
response json_response(int status, const nlohmann::json& body);

/// @brief `{"error":{"code":…,"message":…,"field":…}}` with status_for(code);
/// `field` is always present ("" when none). For 5xx the message the client
/// sees is generic and the detail goes to the log.
response error_response(const error& e);

/// @brief Shorthand: error_response(error{code, message, field}).
response error_response(std::string code, std::string message, std::string field = {});

}  // namespace webpushd::api
