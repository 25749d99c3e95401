#pragma once
/// @file
/// @brief Conversion attribution: which push a purchase is credited to.
///
/// ## The model (last touch)
/// The service worker's reports keep, per device, the latest push reported
/// clicked and the latest reported shown (storage::tracking_store). When a
/// `purchase` event is stored, the person's devices are looked up — the
/// event's subscription and every subscription linked to its customer id —
/// and among their touches:
/// - the latest click reported at most `click` before the purchase's
///   occurred_at (both edges included) makes the purchase a *conversion*
///   of that push, with the order's total as its revenue;
/// - otherwise the latest push reported shown at most `view` before it,
///   and never reported clicked, makes it *influenced* (view-through), with
///   the total as influenced revenue;
/// - otherwise it is nobody's.
/// Each purchase is attributed once (its event id), and counted in the
/// hour it occurred for the push's source, step and variant: `converted` or
/// `influenced`, and `revenue:<CUR>` or `influenced_revenue:<CUR>` in
/// hundredths of the currency's unit.
///
/// ## Limits
/// - Attribution happens when the purchase is ingested: a click reported
///   later (a browser offline, a purchase on another device before the
///   report arrived) does not turn it into a conversion afterwards.
/// - Only each device's latest click and latest shown push are kept: an
///   earlier push is not credited once a newer one was reported, even for a
///   purchase sent late with an earlier occurred_at.
/// - A purchase naming neither a customer nor a subscription, or a device
///   not linked to the customer the purchase names, cannot be matched.
/// - Revenue is stored in hundredths: currencies with three decimals lose
///   the third; totals of 10^13 units or more count as a conversion without
///   revenue.

#include <chrono>
#include <cstddef>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {
class database;
struct stored_event;
}  // namespace webpushd::storage

namespace webpushd::tracking {

/// @brief The longest window the config accepts: beyond it a push is
/// credited with purchases it hardly caused.
inline constexpr std::chrono::hours max_attribution_window{24 * 30};

/// @brief `tracking:` in the config: how long after a touch a purchase
/// still counts.
struct attribution_windows {
  std::chrono::milliseconds click{std::chrono::hours{24}};  ///< after a click: a conversion
  std::chrono::milliseconds view{std::chrono::hours{24}};   ///< after a push shown, not clicked: influenced
  bool operator==(const attribution_windows&) const = default;
};

/// @brief What attribute_purchases did.
struct attribution_tally {
  std::size_t converted = 0;
  std::size_t influenced = 0;
};

/// @brief Attributes the `purchase` events among `events` (other types are
/// ignored) as the file comment says, writing through `db` — call it inside
/// the transaction that stores the events, so an acknowledged purchase is
/// already attributed. A purchase attributed before (same event id) is left
/// alone. `now` is stored as the moment of attribution.
result<attribution_tally> attribute_purchases(storage::database& db, const std::vector<storage::stored_event>& events,
                                              const attribution_windows& windows, time_point now);

}  // namespace webpushd::tracking
