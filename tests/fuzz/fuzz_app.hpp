#pragma once
// The daemon the fuzz targets talk to: webpushd::app::daemon made from
// examples/shop.yaml (its categories, custom event types and scenarios) over
// a temporary data folder, never started. Requests go through the same
// router the listener dispatches to, and are answered by the real handlers
// after the real writer commits them to a real SQLite file.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_check.hpp"
#include "webpushd/api/http.hpp"
#include "webpushd/api/http_server.hpp"
#include "webpushd/app/config.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::fuzz {

/// @brief The daemon, made once per process.
class fixture {
 public:
  /// @brief The one instance (made on first use, stopped at exit).
  static fixture& instance();

  /// @brief Routes `req` as the listener would and waits for the answer.
  /// Checks what holds for every answer: answered exactly once, a status of
  /// 200–599 and never 500, and every JSON error body carries
  /// `{"error":{"code"(non-empty),"message","field"}}`.
  api::response dispatch(api::request req) const;

  /// @brief A request as a client sends it (remote address 203.0.113.7).
  static api::request make_request(std::string method, std::string target,
                                   std::vector<std::pair<std::string, std::string>> headers, std::string body);

  const app::config& config() const { return cfg_; }
  /// @brief The listener's settings (limits) as the daemon made them.
  const api::server_options& listener_options() const;
  /// @brief The backend API key the config was given ("fuzz-backend").
  static constexpr const char* api_key = "fuzz-api-key-0123456789abcdef";
  /// @brief Signs delivery ids with the daemon's own tracking key.
  const tracking::delivery_signer& delivery_signer() const { return *signer_; }

  ~fixture();
  fixture(const fixture&) = delete;
  fixture& operator=(const fixture&) = delete;

 private:
  fixture();
  struct impl;
  app::config cfg_;
  std::string dir_;
  std::unique_ptr<tracking::delivery_signer> signer_;
  std::unique_ptr<impl> impl_;
};

/// @brief Checks an error body: a JSON object with `error.code` (non-empty
/// string), `error.message` and `error.field` (strings).
void check_error_body(const api::response& res);

}  // namespace webpushd::fuzz
