#pragma once
/// @file
/// @brief Where subscriptions (push endpoints and their keys) are kept.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief Lifecycle of a subscription.
enum class subscription_state {
  active,  ///< may be sent to
  gone,    ///< the push service answered 404/410: never send again
  erased,  ///< erased on request (GDPR); only a tombstone remains
};

/// @brief A stored subscription.
struct subscription_record {
  std::int64_t id = 0;
  std::string endpoint;  ///< the push service URL (treat as a secret in logs)
  std::string p256dh;    ///< base64url, as the browser gave it
  std::string auth;      ///< base64url
  subscription_state state = subscription_state::active;
  time_point created_at{};
  time_point updated_at{};
  std::optional<time_point> gone_at;
  std::string gone_reason;
};

/// @brief Repository interface (SQLite now; another backend later).
class subscription_store {
 public:
  virtual ~subscription_store() = default;
  /// @brief Inserts, or updates the keys of the subscription with the same
  /// endpoint (and reactivates it if gone or erased: a browser subscribing
  /// again is a fresh start). The id is kept. Errors: `invalid_subscription`
  /// (empty endpoint or key), `storage_busy`, `storage_error`.
  virtual result<std::int64_t> upsert(const std::string& endpoint, const std::string& p256dh,
                                      const std::string& auth, time_point now) = 0;
  /// @brief Finds by id.
  virtual result<std::optional<subscription_record>> find(std::int64_t id) = 0;
  /// @brief Marks gone; its queued messages are finished as `gone` (reason
  /// storage::subscription_gone_reason) in the same transaction. Idempotent;
  /// an erased subscription stays erased. Errors: `unknown_subscription`.
  virtual result<void> mark_gone(std::int64_t id, const std::string& reason, time_point now) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<subscription_store> make_sqlite_subscription_store(database& db);

}  // namespace webpushd::storage
