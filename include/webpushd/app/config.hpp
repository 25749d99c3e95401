#pragma once
/// @file
/// @brief The daemon's configuration: loaded from YAML or JSON, validated
/// against schemas/config.schema.json (embedded in the binary), then turned
/// into plain structs. Errors name the file, the line and the key.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "webpushd/automation/scenario.hpp"
#include "webpushd/automation/scenario_file.hpp"
#include "webpushd/consent/config.hpp"
#include "webpushd/core/text.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/pacing/policy.hpp"
#include "webpushd/tracking/attribution.hpp"

namespace webpushd::app {

/// @brief `server.api_keys[]` — one backend API key.
struct api_key_config {
  std::string name;  ///< shown in logs
  std::string key;   ///< the secret, never logged
  bool operator==(const api_key_config&) const = default;
};

/// @brief `server:` — the HTTP listener.
struct server_config {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  unsigned threads = 0;                   ///< I/O threads; 0: one per core
  std::size_t body_limit = 1024 * 1024;   ///< bytes; larger request bodies get 413
  std::size_t header_limit = 16 * 1024;   ///< bytes; larger request heads get 431
  std::chrono::milliseconds read_timeout{10000};  ///< to receive a whole request
  std::chrono::milliseconds idle_timeout{60000};  ///< an idle keep-alive connection is kept
  std::size_t max_connections = 10000;
  std::size_t max_batch_events = 1000;    ///< events in one POST /v1/events at most; more get 413
  bool trust_forwarded_for = false;       ///< client address from X-Forwarded-For (behind a proxy)
  /// @brief Wrong API keys from one client address (IPv6: its /64) within
  /// `api_key_window` at most; then 429 until the oldest is that old.
  unsigned api_key_max_failures = 10;
  std::chrono::milliseconds api_key_window{std::chrono::minutes{5}};
  std::vector<std::string> cors_origins;  ///< shop origins allowed to call browser endpoints
  std::vector<api_key_config> api_keys;   ///< backend keys (Authorization: Bearer)
  std::string identify_secret;            ///< signs customer ids for identify(); empty: disabled
  /// @brief How browsers reach this daemon ("https://push.shop.example"):
  /// the base of the report URL in every push. Empty: http://listen_host:listen_port.
  std::string public_url;
  bool operator==(const server_config&) const = default;
};

/// @brief `vapid:` — the application server identity.
struct vapid_config {
  std::string subject;
  std::filesystem::path private_key_file = "vapid_private.pem";  ///< resolved against data_dir
  std::chrono::seconds token_lifetime{std::chrono::hours{12}};
};

/// @brief `delivery.retry:`.
struct retry_config {
  int max_attempts = 8;
  std::chrono::milliseconds base_delay{1000};
  std::chrono::milliseconds max_delay{std::chrono::hours{1}};
};

/// @brief `delivery.endpoints:`.
struct endpoints_config {
  std::vector<std::string> allowed_hosts;  ///< empty: the built-in push-service list
  bool allow_http = false;
  bool allow_private_addresses = false;
};

/// @brief `delivery:`.
struct delivery_config {
  unsigned workers = 0;  ///< 0: one per core
  std::size_t max_in_flight = 2000;
  long max_connections_per_host = 32;
  bool http2 = true;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds poll_interval{500};
  retry_config retry;
  endpoints_config endpoints;
};

/// @brief `events:` — shop events (POST /v1/events).
struct events_config {
  /// @brief Events are deleted this long after they occurred.
  std::chrono::milliseconds retention{std::chrono::hours{24 * 180}};
  /// @brief Events of a customer with no subscription are deleted sooner:
  /// kept this long so a shopper who subscribes later still starts scenarios.
  std::chrono::milliseconds unknown_retention{std::chrono::hours{24 * 30}};
  /// @brief Custom event types: name → JSON Schema of their `properties`.
  std::map<std::string, nlohmann::json> custom_types;
};

/// @brief `automation:` — scenarios and what their messages share.
struct automation_config {
  /// @brief Scenario files (resolved against the config file's folder), in order.
  std::vector<std::filesystem::path> scenario_files;
  std::string shop_name;  ///< `{{shop.name}}`
  std::string shop_url;   ///< `{{shop.url}}`
  automation::utm_def utm;
  /// @brief The loaded scenarios (never null after load_config; empty set
  /// when there are no files).
  std::shared_ptr<const automation::scenario_set> scenarios;
  /// @brief Lint warnings of the scenario files (errors fail load_config).
  std::vector<std::string> warnings;
};

/// @brief `pacing:` — caps, quiet hours, unsubscribe attribution.
struct pacing_config {
  /// @brief The shop-wide policy; load_config adds each scenario's own
  /// pacing (policy.scenarios) once the scenario files are read.
  pacing::policy policy;
  bool configured = false;  ///< the section was there (absent: nothing is capped, and the daemon says so)
  std::chrono::milliseconds adaptive_interval{std::chrono::minutes{10}};
};

/// @brief `dashboard.users[]` — one person who may log in to GET /dashboard.
struct dashboard_user_config {
  std::string name;           ///< the login name, shown in logs
  std::string password_hash;  ///< `$scrypt$…` from `webpushctl dashboard hash-password` (checked at load)
  bool operator==(const dashboard_user_config&) const = default;
};

/// @brief `dashboard:` — the marketers' page and who may log in to it.
struct dashboard_config {
  /// @brief Empty: one user `admin` whose password the daemon generates at
  /// first start into data_dir (see README, "Reading the dashboard").
  std::vector<dashboard_user_config> users;
  std::chrono::milliseconds session_lifetime{std::chrono::hours{12}};  ///< 5m–30d
  bool operator==(const dashboard_config&) const = default;
};
/// @brief `tracking:` — conversion attribution windows.
using tracking_config = tracking::attribution_windows;

/// @brief `logging:`.
struct logging_config {
  std::string format = "auto";  ///< auto | json | text
  std::string level = "info";
};

/// @brief The whole configuration.
struct config {
  std::filesystem::path source;  ///< the file it came from
  server_config server;
  std::filesystem::path data_dir = "data";  ///< resolved against the config file's folder
  vapid_config vapid;
  consent::consent_config consent;  ///< categories and texts (default: one category, "updates")
  delivery_config delivery;
  events_config events;
  automation_config automation;
  pacing_config pacing;
  dashboard_config dashboard;
  tracking_config tracking;
  logging_config logging;
};

/// @brief Reads, validates and converts a config file. Error code
/// `config_invalid` with a message like
/// `shop.yaml:14:3: delivery.retry.max_attempts: must be at least 1`.
result<config> load_config(const std::filesystem::path& file);

/// @brief The same from text already in memory; `source_name` is used in
/// messages and `base_dir` to resolve relative paths.
result<config> parse_config(std::string_view text, const std::string& source_name,
                            const std::filesystem::path& base_dir);

/// @brief Durations in config files (`30s`, `12h`, `7d`): core/text.hpp.
using ::webpushd::parse_duration;

/// @brief The JSON Schema the config is validated against (schemas/config.schema.json).
std::string_view config_schema_text();

}  // namespace webpushd::app
