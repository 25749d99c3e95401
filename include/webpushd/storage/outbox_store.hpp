#pragma once
/// @file
/// @brief The durable outbox: every message accepted for delivery, its state,
/// attempts and outcome. At-least-once: a message claimed but not finished
/// when the process dies is queued again at the next start.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  cancelled,  ///< withdrawn before sending (journey exit, consent, erasure)
  suppressed, ///< held back at send time by a cap or quiet hours (pacing): see last_reason
};

/// @brief Text form used in the database and in the CLI ("queued", …).
const char* to_string(outbox_state s) noexcept;
/// @brief The inverse of to_string; nullopt for any other text.
std::optional<outbox_state> parse_outbox_state(std::string_view text) noexcept;

/// @brief The reason stored on messages finished as `gone` because their
/// subscription went away (rather than by their own 404/410).
inline constexpr std::string_view subscription_gone_reason = "subscription gone";
/// @brief The reason stored on messages finished as `expired`.
inline constexpr std::string_view ttl_expired_reason = "ttl expired before delivery";
/// @brief The reason stored on messages cancelled at send time because the
/// subscriber no longer grants the message's category.
inline constexpr std::string_view consent_withdrawn_reason = "consent withdrawn";
/// @brief The reason stored on messages cancelled because the subscriber
/// unsubscribed; also the `gone_reason` of an unsubscribed subscription.
inline constexpr std::string_view unsubscribed_reason = "unsubscribed";
/// @brief The reason stored on a message whose journey an exit ended while
/// it was in flight (claimed, then queued again for a retry): the exit
/// cancelled its queued siblings, and this one must not go later either.
inline constexpr std::string_view journey_exited_reason = "journey exited";
/// @brief The reason stored on messages cancelled (and wiped) by an erasure.
inline constexpr std::string_view erased_reason = "erased";

/// @brief What a producer hands to the outbox.
struct new_outbox_message {
  std::int64_t subscription_id = 0;
  bytes payload;               ///< plaintext; encrypted only when sent
  /// Seconds the message stays useful from its first possible attempt:
  /// expires_at = max(created_at, not_before) + ttl. 0 means "now or never": the first attempt is always
  /// made when the message is first claimed (however late), any retry after
  /// that is expired instead.
  std::int32_t ttl_seconds = 86400;
  std::string urgency = "normal";  ///< very-low | low | normal | high
  std::string topic;           ///< empty: none
  std::string source;          ///< who made it: "cli", "scenario:<name>/<step>", "campaign:<id>"
  std::optional<time_point> not_before;  ///< earliest send time (default: now)
  /// Consent category it is sent under ("cart_reminders"…); empty: none (an
  /// operator's one-off). The subscriber must grant it when it is enqueued
  /// and again when it is claimed.
  std::string category;
  std::optional<std::int64_t> journey_id;  ///< the scenario journey that made it
  std::string delivery_id;                 ///< the id its tracking beacons carry ("d_…"); empty: none
  /// Who wins when messages compete for a subscriber's slot (caps): higher
  /// priority first, then higher expected value (e.g. the cart total).
  int priority = 0;
  std::optional<double> value;
  /// The latest moment a cap or quiet hours may defer it to; past that it is
  /// suppressed. Empty: never deferred, suppressed at once.
  std::optional<time_point> defer_limit;
  /// The A/B variant of its step it carries ("b"); empty: the step has one
  /// message. Counters of its sends, clicks and unsubscribes carry it.
  std::string variant;
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
  std::string category;       ///< empty: none
  time_point due_at{};        ///< when this attempt fell due (next_attempt_at when claimed)
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
  std::string variant;  ///< A/B variant; empty: none
  time_point created_at{};
  time_point next_attempt_at{};
  std::optional<time_point> finished_at;
  std::int32_t ttl_seconds = 0;
  std::string urgency;
  std::string topic;
  time_point expires_at{};
  std::optional<time_point> claimed_at;  ///< the latest claim
  std::size_t payload_size = 0;          ///< bytes of plaintext
  std::string category;                  ///< empty: none
  bytes payload;  ///< loaded only by list_for_subscription (exports); empty elsewhere
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

/// @brief A due message the send-time gate decides on, the first time it is
/// about to be claimed (a retry of an admitted message is not asked again).
struct gate_candidate {
  std::int64_t message_id = 0;
  std::int64_t subscription_id = 0;
  std::string source;    ///< "scenario:<name>/<step>", "campaign:<id>", "cli", …
  std::string variant;   ///< A/B variant of its step; empty: none
  std::string category;  ///< empty: none
  std::string timezone;  ///< the subscriber's IANA zone; empty: unknown
  std::optional<std::int64_t> journey_id;
  int priority = 0;
  std::optional<double> value;
  time_point due{};  ///< when it became due (next_attempt_at)
  std::optional<time_point> defer_limit;
};

/// @brief The gate's answer for one candidate.
struct gate_verdict {
  enum class kind { admit, defer, suppress };
  kind what = kind::admit;
  time_point until{};  ///< defer: the next moment it may go
  std::string reason;  ///< defer/suppress: stored as last_reason ("quiet hours until 08:00 Europe/Warsaw")
};

/// @brief Decides at send time whether a message may go now (frequency
/// caps, quiet hours: see pacing/gate.hpp). Called by claim_due and record
/// inside their transactions, on the outbox store's own connection, so a
/// decision and the history it reads and writes are atomic with the claim:
/// two claims racing for a subscriber's last slot cannot both pass.
class outbox_gate {
 public:
  virtual ~outbox_gate() = default;
  /// @brief One candidate. Candidates of one subscription in one claim come
  /// highest priority first, then highest value, then earliest due, so the
  /// more valuable message wins a contested slot.
  virtual result<gate_verdict> decide(const gate_candidate& candidate, time_point now) = 0;
  /// @brief A push service said the subscription is gone (404/410).
  virtual result<void> subscription_gone(std::int64_t subscription_id, time_point now) = 0;
};

/// @brief Counts by state, for metrics and health.
struct outbox_counts {
  std::int64_t queued = 0, sending = 0, sent = 0, gone = 0, failed = 0, dead = 0, expired = 0, cancelled = 0,
               suppressed = 0;
  /// @brief The counter of state `s`.
  std::int64_t& of(outbox_state s) noexcept;
};

/// @brief What waits to be sent (metrics, status).
struct outbox_backlog {
  std::int64_t queued = 0;   ///< waiting, due or not yet
  std::int64_t due = 0;      ///< of the queued, those due now
  std::int64_t sending = 0;  ///< claimed, outcome not yet recorded
  std::optional<time_point> oldest_due;  ///< when the longest-waiting due message fell due; none: nothing due
};

/// @brief Repository interface (SQLite now; another backend later).
class outbox_store {
 public:
  virtual ~outbox_store() = default;
  /// @brief Durably stores messages in one transaction; returns their ids in
  /// order. Nothing is stored if any subscription id is unknown or not active
  /// (error `unknown_subscription`, field "subscription_id"), or if a message
  /// has a category its subscriber does not grant (error `consent_missing`,
  /// field "category").
  virtual result<std::vector<std::int64_t>> enqueue(const std::vector<new_outbox_message>& messages,
                                                    time_point now) = 0;
  /// @brief Atomically moves up to `limit` due messages (queued,
  /// next_attempt_at <= now) to `sending` and returns them, oldest due first.
  /// Checked at send time, in the same transaction: a message whose
  /// subscriber no longer grants its category is finished as `cancelled`
  /// (reason consent_withdrawn_reason); one whose subscriber unsubscribed as
  /// `cancelled` (unsubscribed_reason); one whose journey ended by an exit as
  /// `cancelled` (journey_exited_reason); one whose subscription is otherwise
  /// not active as `gone`. With a gate (set_gate), a message not admitted
  /// before is then put to it: deferred (queued again for later, its TTL
  /// counted from then) or `suppressed` unless admitted. None of these is
  /// returned.
  virtual result<std::vector<outbox_message>> claim_due(time_point now, std::size_t limit) = 0;
  /// @brief Records many attempt results in one transaction (group commit).
  ///
  /// A result applies only to a message still in `sending`; a stale one (the
  /// message was requeued or already finished) is ignored, so it can never
  /// resurrect a finished message. `subscription_gone` also marks the
  /// subscription gone and finishes its queued messages as `gone`. Errors:
  /// `invalid_attempt_result` (new_state `sending`; nothing is written),
  /// `storage_busy`, `storage_error`. A `sent` result counts "sent" for the
  /// message's source and step (pacing_counters); a gone one tells the gate.
  virtual result<void> record(const std::vector<attempt_result>& results, time_point now) = 0;
  /// @brief Puts claims and gone results through `gate` (not owned; it must
  /// use this store's connection). nullptr: no gate, every message is admitted.
  virtual void set_gate(outbox_gate* gate) = 0;
  /// @brief Puts every `sending` message back to `queued` (start-up after a
  /// crash). Returns how many.
  virtual result<std::size_t> requeue_inflight(time_point now) = 0;
  /// @brief The earliest next_attempt_at among queued messages, if any (so a
  /// dispatcher can sleep until then).
  virtual result<std::optional<time_point>> next_due() = 0;
  /// @brief One message's stored view.
  virtual result<std::optional<outbox_row>> get(std::int64_t id) = 0;
  /// @brief Counts by state. Reads every row: for the CLI and tests, not
  /// for something polled (see backlog()).
  virtual result<outbox_counts> counts() = 0;
  /// @brief The live part of counts(), and how late the oldest due message
  /// is, read from the partial indexes on queued and sending messages only,
  /// so it costs the same however many finished messages the outbox keeps.
  virtual result<outbox_backlog> backlog(time_point now) = 0;
  /// @brief Stored views, newest first, optionally only in one state (for
  /// inspection; not on the delivery path). Backends without it answer
  /// `not_supported`.
  virtual result<std::vector<outbox_row>> list(std::optional<outbox_state> state, std::size_t limit);
  /// @brief Every message of one subscription, oldest first, payload
  /// included (for GDPR exports). Backends without it answer `not_supported`.
  virtual result<std::vector<outbox_row>> list_for_subscription(std::int64_t subscription_id);
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<outbox_store> make_sqlite_outbox_store(database& db);

}  // namespace webpushd::storage
