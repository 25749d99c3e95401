#pragma once
/// @file
/// @brief Subscribers: subscriptions seen as people who consented — a public
/// id, a token (only its hash is stored), a customer link, time zone, locale
/// and the consent categories they grant. The same `subscriptions` rows as
/// subscription_store, with the columns schema v2 added.
///
/// Methods that change several rows open a transaction scope, which nests as
/// a savepoint inside a write_queue batch; the consent module runs each
/// change and its ledger entry in one work item, so they commit together.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/consent_ledger_store.hpp"
#include "webpushd/storage/subscription_store.hpp"

namespace webpushd::storage {

class database;

/// @brief A stored subscriber (never carries the token hash).
struct subscriber_record {
  std::int64_t id = 0;              ///< internal row id (outbox.subscription_id)
  std::string public_id;            ///< "sub_…"; empty for rows made by v1 tools
  std::string endpoint;             ///< a tombstone ("erased:…") once erased
  std::string p256dh;
  std::string auth;
  subscription_state state = subscription_state::active;
  std::string gone_reason;          ///< unsubscribed_reason when the subscriber left
  std::optional<time_point> gone_at;
  std::string customer_id;          ///< empty: not linked
  std::string timezone;
  std::string locale;
  std::string consent_text_version;
  std::vector<std::string> categories;  ///< granted, sorted
  std::optional<std::int64_t> replaced_by;
  time_point created_at{};
  time_point updated_at{};
  std::optional<time_point> last_seen_at;

  /// @brief Whether the subscriber unsubscribed (a `gone` state they asked for).
  bool unsubscribed() const;
};

/// @brief What subscribe writes.
struct subscriber_fields {
  std::string endpoint;
  std::string p256dh;
  std::string auth;
  std::string timezone;
  std::string locale;
  std::string text_version;
  std::vector<std::string> categories;
  std::string new_public_id;  ///< given to the row if it has none yet
  ledger_hash token_hash{};   ///< SHA-256 of the new token; replaces the stored one
};

/// @brief The outcome of upsert: the row after, and what it was before.
struct subscriber_upsert {
  subscriber_record subscriber;
  bool created = false;                        ///< a new row (else an update of the same endpoint)
  bool was_active = false;                     ///< before the update
  std::vector<std::string> categories_before;  ///< empty when created
  std::string text_version_before;
};

/// @brief The outcome of moving a subscriber to a new endpoint.
struct subscriber_move {
  subscriber_record subscriber;          ///< after, with the new endpoint
  std::optional<subscriber_record> retired;  ///< another subscriber that held the new endpoint and was merged away
};

/// @brief What an erasure or unsubscription touched.
struct subscriber_removal {
  std::vector<std::string> categories_before;
  std::size_t messages_cancelled = 0;
};

/// @brief How many subscriptions are in each state.
struct subscription_counts {
  std::int64_t active = 0;
  std::int64_t gone = 0;    ///< the push service said 404/410, or the subscriber unsubscribed
  std::int64_t erased = 0;  ///< tombstones of GDPR erasures
};

/// @brief Repository interface (SQLite now; another backend later).
class subscriber_store {
 public:
  virtual ~subscriber_store() = default;
  /// @brief Inserts a subscriber, or updates the one with the same endpoint
  /// (keys, time zone, locale, categories, text version, token hash; a gone
  /// subscriber is reactivated; last_seen_at = now). Categories must already
  /// be validated. Errors: `invalid_subscription`, `storage_busy`, `storage_error`.
  virtual result<subscriber_upsert> upsert(const subscriber_fields& fields, time_point now) = 0;
  /// @brief Finds by internal id.
  virtual result<std::optional<subscriber_record>> find(std::int64_t id) = 0;
  /// @brief Finds by public id.
  virtual result<std::optional<subscriber_record>> find_by_public_id(std::string_view public_id) = 0;
  /// @brief Finds by endpoint.
  virtual result<std::optional<subscriber_record>> find_by_endpoint(std::string_view endpoint) = 0;
  /// @brief The subscriber with `public_id` if `token` is its token, else
  /// nullopt — the same answer, in about the same time, for an unknown id, a
  /// wrong token and an erased subscriber. Compares SHA-256 hashes with
  /// crypto::constant_time_equal.
  virtual result<std::optional<subscriber_record>> verify_token(std::string_view public_id, std::string_view token) = 0;
  /// @brief Replaces the granted categories and the text version they were
  /// granted under. Errors: `unknown_subscription`.
  virtual result<void> set_categories(std::int64_t id, const std::vector<std::string>& categories,
                                      std::string_view text_version, time_point now) = 0;
  /// @brief Links a shop customer id (one customer may have many subscribers).
  /// Errors: `unknown_subscription`.
  virtual result<void> link_customer(std::int64_t id, std::string_view customer_id, time_point now) = 0;
  /// @brief Every subscriber linked to `customer_id`, oldest first.
  virtual result<std::vector<subscriber_record>> list_by_customer(std::string_view customer_id) = 0;
  /// @brief pushsubscriptionchange: gives subscriber `id` a new endpoint and
  /// keys, keeping its id, public id, consent, customer link and outbox
  /// history (and reactivating it). If another subscriber already holds the
  /// new endpoint, that one is retired into this one: its endpoint becomes a
  /// tombstone, its categories are dropped, its queued messages cancelled,
  /// and replaced_by points here. Errors: `unknown_subscription`.
  virtual result<subscriber_move> move_endpoint(std::int64_t id, std::string_view endpoint, std::string_view p256dh,
                                                std::string_view auth, time_point now) = 0;
  /// @brief The subscriber unsubscribed: state `gone` with reason
  /// unsubscribed_reason, categories dropped, queued messages cancelled
  /// (reason unsubscribed_reason). The token stays valid, so a repeated
  /// DELETE is answered the same way. Idempotent. Errors: `unknown_subscription`.
  virtual result<subscriber_removal> mark_unsubscribed(std::int64_t id, time_point now) = 0;
  /// @brief Erases personal data: the endpoint becomes a random tombstone
  /// (a later subscribe with the same endpoint is a new subscriber), keys,
  /// token hash, customer link, time zone, locale and categories are
  /// removed, and every outbox message of the subscriber loses its payload,
  /// topic and location (queued or sending ones are cancelled, reason
  /// erased_reason). The row keeps its public id and dates, which the
  /// ledger's erase entry refers to. Errors: `unknown_subscription`.
  virtual result<subscriber_removal> erase(std::int64_t id, time_point now) = 0;
  /// @brief Subscriptions by state (metrics, status). In SQLite this reads
  /// every subscription row (no index holds the state), about a second per
  /// million rows: callers cache it.
  virtual result<subscription_counts> count_by_state() = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<subscriber_store> make_sqlite_subscriber_store(database& db);

}  // namespace webpushd::storage
