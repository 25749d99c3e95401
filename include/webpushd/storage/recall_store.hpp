#pragma once
/// @file
/// @brief Recalls (RFC 8030 §7.3): messages a push service accepted (201 with
/// a Location) that became unwanted before the device may have received them
/// — a journey exited, a campaign was cancelled — and are withdrawn with a
/// DELETE of their Location.
///
/// A recall lives in its message's outbox row (schema v7): `recall_state` is
/// `requested` until the DELETE has an outcome, `recall_reason` says why it
/// is where it is. While a recall is requested, the row's `next_attempt_at`
/// — which a sent message no longer uses — is when it is next due. Claiming
/// a recall moves that time a lease ahead instead of changing its state, so
/// a recall whose outcome was never recorded (the process died) is simply
/// still requested: release_claims() makes it due again at the next start.
/// At least once is enough: a DELETE of the same Location is idempotent.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief Where a recall is.
enum class recall_state {
  requested,    ///< waiting for (or in) its DELETE
  recalled,     ///< the push service removed the message (2xx)
  too_late,     ///< already delivered, expired or gone (404/410, or past expires_at)
  unsupported,  ///< the push service cannot recall (400/403/405/501)
  failed,       ///< not attempted (a Location the rules refuse) or retries exhausted: see the reason
};

/// @brief Text form used in the database and the CLI ("requested", …).
const char* to_string(recall_state s) noexcept;
/// @brief The inverse of to_string; nullopt for any other text.
std::optional<recall_state> parse_recall_state(std::string_view text) noexcept;

/// @brief A requested recall, claimed for its DELETE.
struct recall_job {
  std::int64_t message_id = 0;
  std::string location;      ///< the message URL the push service answered (its choice: untrusted)
  std::string endpoint;      ///< the subscription's endpoint: the Location must be on its origin
  time_point expires_at{};   ///< past it the push service has dropped the message anyway
};

/// @brief The outcome of one recall attempt, as the dispatcher records it.
struct recall_result {
  std::int64_t message_id = 0;
  recall_state new_state = recall_state::recalled;  ///< requested means "try again at retry_at"
  std::string reason;
  std::optional<time_point> retry_at;  ///< when new_state == requested
};

/// @brief A message's recall, for inspection (the CLI, tests).
struct recall_status {
  recall_state state = recall_state::requested;
  std::string reason;
};

/// @brief Repository interface (SQLite now).
class recall_store {
 public:
  virtual ~recall_store() = default;
  /// @brief Requests the recall of every message of the journey that a push
  /// service accepted with a Location, that has not expired and has no recall
  /// yet; `reason` says why. Returns how many.
  virtual result<std::size_t> request_for_journey(std::int64_t journey_id, std::string_view reason,
                                                  time_point now) = 0;
  /// @brief The same for the messages of a campaign (source `campaign:<id>`).
  virtual result<std::size_t> request_for_campaign(std::string_view campaign_id, std::string_view reason,
                                                   time_point now) = 0;
  /// @brief Up to `limit` requested recalls due at `now`, oldest message
  /// first, joined with their subscription's endpoint. Each is not due again
  /// for `lease`, which must outlast the DELETE and the recording of its
  /// outcome: a recall whose outcome is not recorded by then is claimed again.
  virtual result<std::vector<recall_job>> claim_due(time_point now, std::chrono::milliseconds lease,
                                                    std::size_t limit) = 0;
  /// @brief Records many outcomes in one transaction. An outcome applies only
  /// to a recall still requested, so a stale one changes nothing. Errors:
  /// `invalid_recall_result` (requested without retry_at; nothing is
  /// written), `storage_busy`, `storage_error`.
  virtual result<void> record(const std::vector<recall_result>& results) = 0;
  /// @brief Makes every requested recall due at `now`, claimed or waiting
  /// for a retry (start-up after a crash: DELETE is idempotent, restarts are
  /// rare). Returns how many.
  virtual result<std::size_t> release_claims(time_point now) = 0;
  /// @brief When the earliest requested recall is due, if any.
  virtual result<std::optional<time_point>> next_due() = 0;
  /// @brief The recall of one message; nullopt when none was requested.
  virtual result<std::optional<recall_status>> get(std::int64_t message_id) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<recall_store> make_sqlite_recall_store(database& db);

}  // namespace webpushd::storage
