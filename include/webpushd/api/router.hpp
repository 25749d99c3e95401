#pragma once
/// @file
/// @brief Routes requests to handlers by method and path pattern, applying
/// each route's access rule (credentials and CORS) before the handler runs.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/api/auth.hpp"
#include "webpushd/api/cors.hpp"
#include "webpushd/api/failure_limiter.hpp"
#include "webpushd/api/http.hpp"

namespace webpushd::api {

/// @brief Who may call a route. Decides the credential scheme and CORS.
enum class access {
  open,        ///< anyone, no credential, no CORS (operators: /healthz, /metrics)
  browser,     ///< anyone, no credential, CORS for the shop origins (/v1/vapid-public-key, /sdk/*)
  subscriber,  ///< `Authorization: Subscriber <token>` required (the handler verifies it); CORS
  backend,     ///< `Authorization: Bearer <api key>` checked against the key set; never CORS
  reader,      ///< read-only figures: a backend API key as for `backend`, or (with no Authorization
               ///< header) a valid dashboard session cookie; never CORS. See authenticate_reader.
};

/// @brief One answered request, as an observer sees it (metrics).
struct answered_request {
  std::string_view method;  ///< as sent
  /// @brief The pattern of the route the path matched (also when the method
  /// did not: 405), "" when no route matched (404, unreadable target).
  std::string_view route;
  int status = 0;
  std::chrono::steady_clock::duration elapsed{};  ///< from routing to the answer
};

/// @brief Called once per request with its answer, on the thread that
/// answered (an I/O thread, the writer's, …): keep it quick.
using request_observer = std::function<void(const answered_request&)>;

/// @brief Method + pattern → handler.
///
/// Patterns are literal segments and `{name}` placeholders matching one
/// non-empty segment: `/v1/subscriptions/{id}/consent`. Where two patterns
/// match, the one with a literal segment earlier wins. Unknown path → 404;
/// known path, other method → 405 with `Allow`; `HEAD` runs the `GET` route
/// (the server drops the body); `OPTIONS` answers CORS preflights for
/// browser-facing routes and lists `Allow` otherwise.
class router {
 public:
  /// @brief `cors` applies to browser and subscriber routes, `keys` to backend
  /// and reader routes, `sessions` (the dashboard's session cookie; none: no
  /// session is ever valid) to reader routes.
  explicit router(cors_policy cors = cors_policy{}, api_key_set keys = api_key_set{},
                  session_check sessions = {});
  ~router();
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  /// @brief Adds a route. Call before the server starts; the route table is
  /// read concurrently afterwards and must not change. Aborts on a malformed
  /// pattern or a duplicate (method, pattern): both are programming errors.
  void add(std::string_view method, std::string_view pattern, access who, handler h);

  /// @brief Tells `observer` about every request dispatch() answers. Call
  /// before the server starts.
  void set_observer(request_observer observer);

  /// @brief Limits wrong API keys per client address on backend and reader
  /// routes: each request whose `Authorization` header holds a key that is
  /// not configured counts as a failure, and an address over the limit gets
  /// 429 `rate_limited` with `Retry-After` — a right key too — until the
  /// window passes. Both must outlive the router. Call before the server starts.
  void set_key_limiter(failure_limiter& limiter, const clock& clk);

  /// @brief Routes one request (from the server; tests may call it directly).
  /// Fills `path`, `query` and `params` from `target`; an undecodable target
  /// is answered 400. Exceptions from the handler become a generic 500.
  void dispatch(request&& req, respond_fn respond) const;

 private:
  struct route;
  std::vector<std::unique_ptr<route>> routes_;
  cors_policy cors_;
  api_key_set keys_;
  session_check sessions_;
  request_observer observer_;
  failure_limiter* key_limiter_ = nullptr;
  const clock* clock_ = nullptr;
};

/// @brief Percent-decodes `text`; with `plus_is_space` (query strings) '+'
/// becomes ' '. nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space);

}  // namespace webpushd::api
