#pragma once
/// @file
/// @brief Recalling an accepted message (RFC 8030 §7.3): which Location the
/// daemon may DELETE, and what the push service's answer means.

#include <string_view>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/delivery/classify.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/sender.hpp"

namespace webpushd::delivery {

/// @brief Checks the Location a push service gave a message before the
/// daemon sends a DELETE there, and returns it parsed.
///
/// The Location is chosen by the push service, that is by whoever controls
/// the subscription's endpoint: it gets no more trust than the endpoint. It
/// must pass the same rules (check_endpoint here, the connect-time address
/// guard in the sender) and have the endpoint's origin — scheme, host and
/// port — so that a recall can only ever reach the service the message went
/// to. Errors: the endpoint's or the Location's check_endpoint error (field
/// "endpoint" or "location"), `location_foreign_origin` (field "location").
/// Messages name origins only, never whole URLs.
result<endpoint> check_recall_location(std::string_view location, std::string_view subscription_endpoint,
                                       const endpoint_rules& rules);

/// @brief What a recall's answer leads to.
enum class recall_verdict {
  recalled,     ///< 2xx: the push service removed the message
  too_late,     ///< 404/410: already delivered (or the subscription is gone)
  unsupported,  ///< 400/403/405/501: this push service does not recall messages
  failed,       ///< any other answer that retrying cannot change (401, 413, 3xx, a refused address)
  retry,        ///< 429, 5xx, 408, timeouts, connection errors
};

/// @brief The verdict, and the answer as classify() reads it: its Retry-After
/// (for retry_policy::delay_for) and a reason worded for a recall.
struct recall_classification {
  recall_verdict verdict = recall_verdict::retry;
  classification answer;
};

/// @brief Classifies the answer to a DELETE of a message's Location. Pure.
recall_classification classify_recall(const http_response& response, time_point now);

}  // namespace webpushd::delivery
