#pragma once
/// @file
/// @brief The journey engine: reacts to shop events (start, restart or end
/// journeys) and fires due steps (check, render, enqueue), durably.
///
/// The engine has no thread and no clock of its own. Every entry point takes
/// the database connection of the caller's write transaction and `now`:
/// - on_events runs inside the ingestor's work item, so the events and the
///   journeys they start or end commit together (a purchase acknowledged
///   with 202 has already cancelled the cart reminders);
/// - fire_due runs inside the scheduler's work item, so a step's outbox
///   messages and the journey's move to its next step commit together: a
///   crash can neither lose a reminder nor send one twice.
/// The scheduler (scheduler.hpp) drives fire_due in real time; tests and
/// `webpushctl simulate` drive it in virtual time.
///
/// What a reload does: the scenario set is swapped whole (set_scenarios).
/// Journeys keep running by scenario and step *name*: a journey of a removed
/// scenario is cancelled when its next step comes due; one whose next step
/// was removed ends (cancelled, "step removed"); changed texts, conditions
/// and delays apply from the next step on (a changed delay applies when the
/// journey is next scheduled, not to a timer already set). A disabled
/// scenario starts no journey, but its running journeys finish.

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/automation/message.hpp"
#include "webpushd/automation/scenario.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

namespace webpushd::storage {
class database;
}
namespace webpushd::tracking {
class delivery_signer;
}

namespace webpushd::automation {

/// @brief What the engine needs besides the scenarios.
struct engine_options {
  std::string default_locale = "en";     ///< for subscribers without one
  std::string default_timezone = "UTC";
  shop_view shop;
  /// @brief Base of the report URL in each push ("https://push.shop.example").
  std::string public_url = "http://127.0.0.1:8080";
  /// @brief Persons one product-level event may start journeys for at most
  /// (back in stock for a best-seller); the rest are logged as skipped.
  std::size_t max_audience = 100'000;
};

/// @brief What one fire_due call did.
struct fire_report {
  std::size_t journeys = 0;  ///< journeys whose due step was handled
  std::size_t enqueued = 0;  ///< outbox messages created
};

/// @brief See the file comment. Thread-safe: set_scenarios may be called
/// while another thread runs the entry points (each call uses one snapshot).
class engine {
 public:
  /// @brief `signer` must outlive the engine.
  engine(std::shared_ptr<const scenario_set> scenarios, engine_options options,
         const tracking::delivery_signer& signer);

  /// @brief Swaps the scenario set (config reload).
  void set_scenarios(std::shared_ptr<const scenario_set> scenarios);
  /// @brief Replaces the shop fields templates read (config reload).
  void set_shop(shop_view shop);
  /// @brief Sets the base of report URLs (the daemon knows its port only once
  /// it listens).
  void set_public_url(std::string url);
  /// @brief The current scenario set.
  std::shared_ptr<const scenario_set> scenarios() const;

  /// @brief Told every journey log entry's scenario and outcome ("entered",
  /// "exited", "completed", "cancelled", "sent", "skipped", …) as the engine
  /// writes it, on the thread of the entry point (for metrics). It runs
  /// inside the caller's transaction: a batch that fails to commit later
  /// (a storage error) has been reported all the same.
  using journey_observer = std::function<void(std::string_view scenario, std::string_view outcome)>;
  /// @brief Sets (or clears) the observer. Call before the entry points run.
  void set_journey_observer(journey_observer observer);

  /// @brief Reacts to newly stored events, in order: records product
  /// interest, ends journeys their exits match, then starts or restarts
  /// journeys their triggers match. Call inside a write transaction.
  result<void> on_events(storage::database& db, const std::vector<storage::stored_event>& events, time_point now);

  /// @brief A subscriber was created or came back: the `subscribed` trigger
  /// (welcome series). Call inside a write transaction.
  result<void> on_subscribed(storage::database& db, const storage::subscriber_record& subscriber, time_point now);

  /// @brief A subscriber was linked to a customer: the subscriber's own
  /// journeys ("s:<id>") become the customer's ("c:<id>") unless the
  /// customer already has one of the same scenario and key (then the
  /// subscriber's is ended as merged).
  result<void> on_customer_linked(storage::database& db, const storage::subscriber_record& subscriber,
                                  time_point now);

  /// @brief Handles up to `limit` due journeys: each due step is checked
  /// (lateness, conditions, recipients, consent, template fields) and its
  /// messages enqueued, then the journey moves to its next step or ends.
  result<fire_report> fire_due(storage::database& db, time_point now, std::size_t limit);

  /// @brief When the next step is due, if any journey is active.
  result<std::optional<time_point>> next_due(storage::database& db);

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

/// @brief The person a subscriber's journeys belong to: "c:<customer id>"
/// when linked, else "s:<public id>".
std::string person_of(const storage::subscriber_record& subscriber);

}  // namespace webpushd::automation
