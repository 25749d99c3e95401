#pragma once
/// @file
/// @brief The durable outbox: every message accepted for delivery, its state,
/// attempts and outcome. At-least-once: a message claimed but not finished
/// when the process dies is queued again at the next start.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief Where a message is in its life.
enum class outbox_state {
  queued,     ///< waiting for next_attempt_at
  sending,    ///< claimed by a dispatcher; back to queued after a crash
  sent,       ///< a push service answered 201/202
  gone,       ///< the subscription is gone (404/410), or was gone when due
  failed,     ///< permanent rejection (413, other 4xx): see last_status/last_reason
  dead,       ///< retries exhausted (dead letter): see last_reason
  expired,    ///< its TTL ran out before it could be delivered
  cancelled,  ///< withdrawn before sending (journey exit, erasure)
};

/// @brief Text form used in the database and in the CLI ("queued", …).
const char* to_string(outbox_state s) noexcept;

/// @brief What a producer hands to the outbox.
struct new_outbox_message {
  std::int64_t subscription_id = 0;
  bytes payload;               ///< plaintext; encrypted only when sent
  std::int32_t ttl_seconds = 86400;
  std::string urgency = "normal";  ///< very-low | low | normal | high
  std::string topic;           ///< empty: none
  std::string source;          ///< who made it: "cli", "scenario:<name>/<step>", "campaign:<id>"
  std::optional<time_point> not_before;  ///< earliest send time (default: now)
};

/// @brief A message claimed for sending, joined with its subscription.
struct outbox_message {
  std::int64_t id = 0;
  std::int64_t subscription_id = 0;
  std::string endpoint;
  std::string p256dh;
  std::string auth;
  bytes payload;
  std::int32_t ttl_seconds = 0;
  std::string urgency;
  std::string topic;
  std::int32_t attempts = 0;  ///< attempts made before this one
  time_point created_at{};
  time_point expires_at{};    ///< created_at + ttl: past it the message is useless
};

/// @brief The stored view of a message (for inspection, the CLI and tests).
struct outbox_row {
  std::int64_t id = 0;
  std::int64_t subscription_id = 0;
  outbox_state state = outbox_state::queued;
  std::int32_t attempts = 0;
  std::optional<std::int32_t> last_status;
  std::string last_reason;
  std::string location;
  std::string source;
  time_point created_at{};
  time_point next_attempt_at{};
  std::optional<time_point> finished_at;
};

/// @brief The outcome of one attempt, as the dispatcher records it.
struct attempt_result {
  std::int64_t message_id = 0;
  outbox_state new_state = outbox_state::sent;  ///< queued means "retry at retry_at"
  std::optional<std::int32_t> http_status;
  std::string reason;            ///< diagnosis: body excerpt, curl error, "Retry-After 30s"
  std::string location;          ///< the push service's message URL (for recall, RFC 8030 §7.3)
  std::optional<time_point> retry_at;  ///< when new_state == queued
  bool subscription_gone = false;      ///< also mark the subscription gone
  bool count_attempt = true;           ///< false when no request was made (e.g. expired before send)
};

/// @brief Counts by state, for metrics and health.
struct outbox_counts {
  std::int64_t queued = 0, sending = 0, sent = 0, gone = 0, failed = 0, dead = 0, expired = 0, cancelled = 0;
};

/// @brief Repository interface (SQLite now; another backend later).
class outbox_store {
 public:
  virtual ~outbox_store() = default;
  /// @brief Durably stores messages in one transaction; returns their ids in
  /// order. Nothing is stored if any subscription id is unknown or not active
  /// (error `unknown_subscription`, field "subscription_id").
  virtual result<std::vector<std::int64_t>> enqueue(const std::vector<new_outbox_message>& messages,
                                                    time_point now) = 0;
  /// @brief Atomically moves up to `limit` due messages (queued,
  /// next_attempt_at <= now) to `sending` and returns them, oldest due first.
  /// Messages whose subscription is not active are finished as `gone`
  /// instead of being returned.
  virtual result<std::vector<outbox_message>> claim_due(time_point now, std::size_t limit) = 0;
  /// @brief Records many attempt results in one transaction (group commit).
  virtual result<void> record(const std::vector<attempt_result>& results, time_point now) = 0;
  /// @brief Puts every `sending` message back to `queued` (start-up after a
  /// crash). Returns how many.
  virtual result<std::size_t> requeue_inflight(time_point now) = 0;
  /// @brief The earliest next_attempt_at among queued messages, if any (so a
  /// dispatcher can sleep until then).
  virtual result<std::optional<time_point>> next_due() = 0;
  /// @brief One message's stored view.
  virtual result<std::optional<outbox_row>> get(std::int64_t id) = 0;
  /// @brief Counts by state.
  virtual result<outbox_counts> counts() = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<outbox_store> make_sqlite_outbox_store(database& db);

}  // namespace webpushd::storage
