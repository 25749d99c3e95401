#pragma once
/// @file
/// @brief Shop events sent by the backend (`POST /v1/events`): what the
/// scenario engine will react to. Stored once per event id, so a backend may
/// retry a batch without double counting.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief One validated event, as stored.
struct stored_event {
  std::string id;               ///< chosen by the sender; the idempotency key
  std::string type;             ///< e.g. "purchase"
  std::string customer_id;      ///< empty: none
  std::string subscription_id;  ///< public subscription id; empty: none
  time_point occurred_at{};
  time_point received_at{};
  std::string properties;  ///< the validated properties, serialised JSON
  bool operator==(const stored_event&) const = default;
};

/// @brief Repository interface (SQLite now; another backend later).
class event_store {
 public:
  virtual ~event_store() = default;
  /// @brief Stores the event unless one with the same id is there: true when
  /// stored, false for a duplicate (the first copy is kept unchanged).
  virtual result<bool> insert_if_new(const stored_event& e) = 0;
  /// @brief The event with this id, nullopt if none.
  virtual result<std::optional<stored_event>> find(const std::string& id) = 0;
  /// @brief Every event of a person, oldest first: those carrying
  /// `customer_id` or `subscription_id` (either may be empty: not matched).
  /// For GDPR exports.
  virtual result<std::vector<stored_event>> list_for(const std::string& customer_id,
                                                     const std::string& subscription_id) = 0;
  /// @brief Deletes the same set (GDPR erasure). Returns how many.
  virtual result<std::size_t> erase_for(const std::string& customer_id, const std::string& subscription_id) = 0;
  /// @brief Retention (`events.retention`, `events.unknown_retention`):
  /// deletes the events that occurred before `before`, and those that
  /// occurred before `unknown_before` and name a person no subscriber is:
  /// a customer_id no subscription is linked to and no subscription_id of
  /// a subscriber that is not erased (an event naming neither, such as a
  /// shop-wide back-in-stock, is not about a person and keeps the full
  /// retention). Also deletes product_interest rows older than `before`,
  /// and those older than `unknown_before` whose person ("c:<customer>" or
  /// "s:<public id>") is no subscriber in the same sense. Returns how many
  /// events were deleted. Both tables in one transaction scope (a
  /// savepoint inside a write_queue item).
  virtual result<std::size_t> purge(time_point before, time_point unknown_before) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<event_store> make_sqlite_event_store(database& db);

}  // namespace webpushd::storage
