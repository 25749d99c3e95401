#pragma once
/// @file
/// @brief What tracking keeps besides the reports themselves (schema v9):
/// the outbox message behind a delivery id, each subscription's latest
/// shown and latest clicked push (the touches conversion attribution
/// reads), and the purchases attributed to a push.
///
/// Every method runs on the connection it was made from: the beacon
/// recorder and the event ingestor call them inside their write_queue
/// items, so a report and what it counts, or a purchase and its
/// attribution, commit together.

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

/// @brief An outbox message as tracking sees it.
struct tracked_push {
  std::int64_t outbox_id = 0;
  std::int64_t subscription_id = 0;
  std::string source;   ///< as stored: "scenario:<name>/<step>", "campaign:<id>", …
  std::string variant;  ///< A/B variant; empty: none
  bool subscription_erased = false;  ///< its subscriber was erased (GDPR)
};

/// @brief One touch: which push, reported when.
struct touch {
  std::int64_t outbox_id = 0;
  time_point at{};
};

/// @brief A subscription's latest shown and latest clicked push.
struct subscription_touches {
  std::int64_t subscription_id = 0;
  std::optional<touch> shown;
  std::optional<touch> clicked;
};

/// @brief What a touch is.
enum class touch_kind { shown, clicked };

/// @brief A purchase credited to a push.
struct conversion {
  std::string event_id;  ///< the purchase event's id (one conversion each)
  std::string kind;      ///< "converted" (after a click) | "influenced" (after a push shown, not clicked)
  std::int64_t subscription_id = 0;  ///< the device the touch was on
  std::int64_t outbox_id = 0;        ///< the push credited
  std::string source;                ///< its source without the step ("scenario:cart", "campaign:cmp_1")
  std::string step;                  ///< its step; empty for campaigns
  std::string variant;               ///< its A/B variant; empty: none
  time_point touch_at{};             ///< when the click or show was reported
  time_point occurred_at{};          ///< the purchase's occurred_at
  std::int64_t revenue = 0;          ///< the purchase's total in hundredths of the unit
  std::string currency;              ///< ISO 4217 code, as the event gave it
  time_point attributed_at{};
};

/// @brief A report of a subscription's push, for GDPR exports.
struct push_report {
  std::int64_t outbox_id = 0;
  std::string type;    ///< shown | clicked | closed
  std::string action;  ///< the button clicked; empty: the body, or not a click
  time_point at{};
};

/// @brief Repository interface (SQLite now).
class tracking_store {
 public:
  virtual ~tracking_store() = default;

  /// @brief The outbox message carrying `delivery_id` (the v9 index), if any.
  virtual result<std::optional<tracked_push>> find_delivery(std::string_view delivery_id) = 0;
  /// @brief One outbox message by id, if it exists.
  virtual result<std::optional<tracked_push>> find_push(std::int64_t outbox_id) = 0;
  /// @brief Whether the message's push was reported clicked.
  virtual result<bool> was_clicked(std::int64_t outbox_id) = 0;

  /// @brief Remembers `outbox_id` as the subscription's latest push of that
  /// kind, unless the one kept was reported later than `at`.
  virtual result<void> touch(std::int64_t subscription_id, touch_kind kind, std::int64_t outbox_id,
                             time_point at) = 0;
  /// @brief The touches of these subscriptions (those with none left out),
  /// in the order of `subscription_ids`.
  virtual result<std::vector<subscription_touches>> touches(const std::vector<std::int64_t>& subscription_ids) = 0;

  /// @brief Stores a conversion once: false when its event was attributed
  /// before (nothing is written then).
  virtual result<bool> record_conversion(const conversion& c) = 0;
  /// @brief A subscription's conversions, oldest purchase first.
  virtual result<std::vector<conversion>> conversions_of(std::int64_t subscription_id) = 0;
  /// @brief The reports of a subscription's pushes, oldest first.
  virtual result<std::vector<push_report>> reports_of(std::int64_t subscription_id) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<tracking_store> make_sqlite_tracking_store(database& db);

}  // namespace webpushd::storage
