// Recalling accepted messages (RFC 8030 §7.3).
#include "webpushd/delivery/recall.hpp"

#include <string>

namespace webpushd::delivery {

result<endpoint> check_recall_location(std::string_view location, std::string_view subscription_endpoint,
                                       const endpoint_rules& rules) {
  // The endpoint is checked too: the rules may have changed since it was
  // stored, and its origin is what the Location is compared with.
  auto home = check_endpoint(subscription_endpoint, rules);
  if (!home) return home;
  auto target = check_endpoint(location, rules);
  if (!target) {
    // Only the rule is named: a Location that fails them may be anything.
    return fail(target.error().code, "Location refused: " + target.error().message, "location");
  }
  // origin is normalised (lower-case host, default port omitted), so equal
  // text means equal scheme, host and port.
  if (target->origin != home->origin) {
    return fail("location_foreign_origin",
                "Location on " + target->origin + " is not on the endpoint's origin " + home->origin, "location");
  }
  return target;
}

recall_classification classify_recall(const http_response& response, time_point now) {
  auto answer = classify(response, now);
  const auto status = std::to_string(response.status);
  switch (response.status) {
    case 400:
    case 403:
    case 405:
    case 501:
      // What push services answer for a method or a message resource they
      // do not offer; classify's reason keeps the body for diagnosis.
      answer.reason = "recall not supported: " + answer.reason;
      return {recall_verdict::unsupported, std::move(answer)};
    default:
      break;
  }
  switch (answer.kind) {
    case outcome::accepted:
      answer.reason = "DELETE answered " + status;
      return {recall_verdict::recalled, std::move(answer)};
    case outcome::gone:
      // RFC 8030 §7.3: a message already delivered is no longer there; the
      // same answer means the whole subscription is gone, which a recall has
      // no business deciding (the next push to it will).
      answer.reason = "already delivered or gone (" + status + ")";
      return {recall_verdict::too_late, std::move(answer)};
    case outcome::rate_limited:
    case outcome::temporary_failure:
      return {recall_verdict::retry, std::move(answer)};
    case outcome::payload_too_large:
    case outcome::rejected:
      break;
  }
  return {recall_verdict::failed, std::move(answer)};
}

}  // namespace webpushd::delivery
