#pragma once
/// @file
/// @brief One-off campaigns (schema v5 + v6): the stored campaign with its
/// fan-out cursor and counters, the keyset-paginated audience query the
/// fan-out reads, and cancellation of a campaign's queued messages.
///
/// Every method runs on the connection the store was made from. The
/// automation module's campaign runner calls them inside a write_queue work
/// item, so a chunk's outbox messages and the cursor that moved past them
/// commit together: a restart goes on after the last committed chunk and
/// never enqueues a subscriber twice.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/outbox_store.hpp"

namespace webpushd::storage {

class database;

/// @brief Where a campaign is.
enum class campaign_state {
  scheduled,  ///< waiting for due_at
  running,    ///< fan-out under way (cursor moves chunk by chunk)
  completed,  ///< every targeted subscriber was handled
  cancelled,  ///< withdrawn (its queued messages were cancelled)
};

/// @brief Text form ("scheduled", …).
const char* to_string(campaign_state s) noexcept;
/// @brief The inverse of to_string; nullopt for any other text.
std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept;

/// @brief The outbox `source` of a campaign's messages: "campaign:<id>".
std::string campaign_source(std::string_view campaign_id);

/// @brief A stored campaign.
struct campaign_row {
  std::string id;          ///< "cmp_…"
  std::string name;
  std::string category;    ///< consent category the audience must grant
  std::string definition;  ///< JSON: message, audience, ttl, urgency, … (the automation module's form)
  /// @brief When to send. For a local-time campaign: the wall-clock time
  /// read as if it were UTC ("09:00" local is stored as 09:00Z).
  time_point send_at{};
  bool local_time = false;
  /// @brief When the fan-out starts: send_at, or for a local-time campaign
  /// send_at − 14 h (when it is that time in UTC+14, the earliest zone).
  time_point due_at{};
  campaign_state state = campaign_state::scheduled;
  std::int64_t cursor = 0;    ///< the last subscription id the fan-out handled
  std::int64_t targeted = 0;  ///< subscribers matching category and audience so far
  std::int64_t enqueued = 0;  ///< outbox messages created so far
  std::int64_t skipped = 0;   ///< targeted but not enqueued
  std::string skipped_reasons = "{}";  ///< JSON object: reason → count
  std::string created_by;     ///< the API key's name
  std::string end_reason;     ///< why it was cancelled; empty otherwise
  time_point created_at{};
  std::optional<time_point> started_at;
  std::optional<time_point> finished_at;
};

/// @brief One subscriber of a campaign's audience, as the fan-out needs it.
struct campaign_recipient {
  std::int64_t subscription_id = 0;
  std::string public_id;  ///< the subscription's public id (A/B variants are assigned by it)
  std::string locale;    ///< empty: none given
  std::string timezone;  ///< empty: none given
  bool linked = false;   ///< linked to a shop customer
};

/// @brief What every message of one fan-out chunk shares.
struct campaign_message_batch {
  std::string campaign_id;   ///< source becomes "campaign:<id>"
  std::string category;      ///< the consent category they are sent under
  std::int32_t ttl_seconds = 86400;
  std::string urgency = "normal";
  int priority = 10;  ///< pacing: who wins a contested slot
  /// Pacing: how long past its moment a cap or quiet hours may hold a
  /// message; nullopt: suppressed at once.
  std::optional<std::chrono::milliseconds> defer_max;
};

/// @brief One subscriber's message of a fan-out chunk.
struct campaign_message {
  std::int64_t subscription_id = 0;
  std::string payload;                   ///< plaintext JSON
  std::optional<time_point> not_before;  ///< local time: that subscriber's moment; none: now
  std::string delivery_id;
  std::string variant;  ///< the campaign's A/B variant it carries; empty: none
};

/// @brief What a cancellation did.
struct campaign_cancel_outcome {
  campaign_state state_before = campaign_state::scheduled;
  std::size_t messages_cancelled = 0;  ///< queued messages finished as `cancelled`
};

/// @brief The reason stored on messages cancelled with their campaign.
inline constexpr std::string_view campaign_cancelled_reason = "campaign cancelled";

/// @brief Repository interface (SQLite now).
class campaign_store {
 public:
  virtual ~campaign_store() = default;
  /// @brief Stores a new campaign (state, counters and cursor as given).
  /// Errors: `campaign_conflict` when the id exists, `storage_*`.
  virtual result<void> insert(const campaign_row& c) = 0;
  /// @brief One campaign.
  virtual result<std::optional<campaign_row>> get(std::string_view id) = 0;
  /// @brief Campaigns newest first (created_at, then id), at most `limit`.
  virtual result<std::vector<campaign_row>> list(std::size_t limit) = 0;
  /// @brief Scheduled or running campaigns with due_at <= now, earliest
  /// first, at most `limit`.
  virtual result<std::vector<campaign_row>> due(time_point now, std::size_t limit) = 0;
  /// @brief The earliest due_at of a scheduled or running campaign.
  virtual result<std::optional<time_point>> next_due() = 0;
  /// @brief Up to `limit` active subscriptions granting `category` with id
  /// greater than `after`, in id order (one index range scan; the statement
  /// is prepared once per store and reused).
  virtual result<std::vector<campaign_recipient>> recipients(std::string_view category, std::int64_t after,
                                                             std::size_t limit) = 0;
  /// @brief Writes a chunk's outbox messages exactly as
  /// outbox_store::enqueue would store them (state queued, next_attempt_at =
  /// not_before or now, expires_at = max(now, not_before) + ttl), with one
  /// prepared INSERT reused for every row and none of enqueue's per-message
  /// checks: the caller read these subscriptions as active and granting the
  /// category in the same transaction. (enqueue's INSERT … RETURNING makes
  /// SQLite keep a statement journal for every row, which cost four fifths
  /// of a fan-out's time.) Errors: `invalid_ttl`, `invalid_urgency`, `storage_*`.
  virtual result<void> enqueue_messages(const campaign_message_batch& batch,
                                        const std::vector<campaign_message>& messages, time_point now) = 0;
  /// @brief Writes state, cursor, counters, skipped_reasons, started_at,
  /// finished_at and end_reason of `c` (by id).
  virtual result<void> save_progress(const campaign_row& c) = 0;
  /// @brief Cancels: state `cancelled` (finished_at = now, end_reason) unless
  /// it already is, and every queued message of the campaign is finished as
  /// `cancelled` (reason campaign_cancelled_reason) — also after it
  /// completed, when local-time messages may still wait for their moment.
  /// Messages already being sent are not recalled. nullopt for an unknown id.
  virtual result<std::optional<campaign_cancel_outcome>> cancel(std::string_view id, std::string_view reason,
                                                               time_point now) = 0;
  /// @brief The campaign's outbox messages counted by state (the outbox's
  /// index on source).
  virtual result<outbox_counts> message_counts(std::string_view id) = 0;
  /// @brief How many outbox messages the campaign's fan-out queued in
  /// [from, to) (by created_at; stats: the campaign's `entered`).
  virtual result<std::int64_t> messages_queued(std::string_view id, time_point from, time_point to) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<campaign_store> make_sqlite_campaign_store(database& db);

}  // namespace webpushd::storage
