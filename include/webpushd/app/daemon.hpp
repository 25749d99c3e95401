#pragma once
/// @file
/// @brief The daemon's parts wired together: storage, VAPID identity,
/// sender and outbox dispatcher. main() only parses flags and handles signals.

#include <filesystem>
#include <memory>
#include <string>

#include "webpushd/app/config.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::api {
class router;
class http_server;
}  // namespace webpushd::api

namespace webpushd::app {

/// @brief Loads the VAPID key at `path`, or makes one (mode 0600) if there is
/// none. Sets `created` when it made one.
result<std::string> ensure_vapid_key(const std::filesystem::path& path, bool& created);

/// @brief A running webpushd.
class daemon {
 public:
  /// @brief Opens storage, loads or creates the VAPID key, prepares delivery.
  /// Nothing runs until start(). Errors name what could not be prepared.
  static result<std::unique_ptr<daemon>> create(const config& cfg, const clock& clk);
  ~daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  /// @brief Starts delivering (requeues what a crash left in flight).
  result<void> start();
  /// @brief Drains: stops taking work, lets sends in flight finish for up to
  /// `grace`, records outcomes. Idempotent.
  void stop(std::chrono::milliseconds grace);
  /// @brief Applies a new, already validated config: what can change live
  /// (log level and format) changes; what needs a restart is logged.
  void reload(const config& next);
  /// @brief The application server key browsers subscribe with (base64url).
  const std::string& vapid_public_key() const;
  /// @brief The routes the listener dispatches to, ready from create() on:
  /// requests can be handled in-process (the http_request fuzzer does)
  /// without start(); their writes are committed by the daemon's writer.
  const api::router& routes() const;
  /// @brief The listener (made by create(), listening after start()).
  const api::http_server& listener() const;

 private:
  daemon();
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::app
