// Which Location a recall may DELETE, and what the answer means.
#include "webpushd/delivery/recall.hpp"

#include <doctest/doctest.h>

using namespace webpushd;
using namespace webpushd::delivery;

namespace {

endpoint_rules push_services() {
  endpoint_rules r;
  r.allowed_hosts = {"updates.push.services.mozilla.com", "*.push.apple.com"};
  return r;
}

constexpr std::string_view mozilla = "https://updates.push.services.mozilla.com/wpush/v2/gAAAA";

http_response answer(long status, std::string retry_after = {}) {
  http_response r;
  r.status = status;
  r.retry_after = std::move(retry_after);
  return r;
}

recall_verdict verdict_of(const http_response& r) { return classify_recall(r, std::chrono::system_clock::now()).verdict; }

}  // namespace

TEST_CASE("a Location on the endpoint's origin may be recalled") {
  const auto ok = check_recall_location("https://updates.push.services.mozilla.com/m/gAAAA-1", mozilla, push_services());
  REQUIRE(ok.has_value());
  CHECK(ok->origin == "https://updates.push.services.mozilla.com");
  // The same origin written differently: the default port, an upper-case host.
  CHECK(check_recall_location("https://UPDATES.push.services.mozilla.com:443/m/1", mozilla, push_services()));
}

TEST_CASE("a Location elsewhere is refused, naming origins only") {
  const auto rules = push_services();
  const auto foreign = [&](std::string_view location) {
    const auto r = check_recall_location(location, mozilla, rules);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().field == "location");
    return r.error();
  };
  // Another allowed push service, another port, another scheme: all foreign.
  const auto other_host = foreign("https://web.push.apple.com/m/1");
  CHECK(other_host.code == "location_foreign_origin");
  CHECK(other_host.message ==
        "Location on https://web.push.apple.com is not on the endpoint's origin https://updates.push.services.mozilla.com");
  CHECK(foreign("https://updates.push.services.mozilla.com:8443/m/1").code == "location_foreign_origin");
  // The endpoint rules apply to a Location as to any push request.
  const auto internal = foreign("https://169.254.169.254/latest/meta-data/");
  CHECK(internal.code == "endpoint_not_allowed");
  CHECK(internal.message.rfind("Location refused: ", 0) == 0);
  CHECK(foreign("http://updates.push.services.mozilla.com/m/1").code == "endpoint_not_allowed");
  CHECK(foreign("").code == "invalid_endpoint");
  CHECK(foreign("https://user@updates.push.services.mozilla.com/m/1").code == "invalid_endpoint");
}

TEST_CASE("an endpoint the rules no longer allow has nothing to recall") {
  endpoint_rules apple_only;
  apple_only.allowed_hosts = {"*.push.apple.com"};
  const auto r = check_recall_location("https://updates.push.services.mozilla.com/m/1", mozilla, apple_only);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().field == "endpoint");
}

TEST_CASE("the answer to a DELETE") {
  CHECK(verdict_of(answer(204)) == recall_verdict::recalled);
  CHECK(verdict_of(answer(200)) == recall_verdict::recalled);
  CHECK(verdict_of(answer(404)) == recall_verdict::too_late);
  CHECK(verdict_of(answer(410)) == recall_verdict::too_late);
  for (const long status : {400L, 403L, 405L, 501L}) {
    CAPTURE(status);
    CHECK(verdict_of(answer(status)) == recall_verdict::unsupported);
  }
  CHECK(verdict_of(answer(401)) == recall_verdict::failed);
  CHECK(verdict_of(answer(301)) == recall_verdict::failed);
  CHECK(verdict_of(answer(503)) == recall_verdict::retry);
  CHECK(verdict_of(answer(500)) == recall_verdict::retry);
  http_response reset;
  reset.transport_error = 56;  // CURLE_RECV_ERROR
  CHECK(verdict_of(reset) == recall_verdict::retry);
  http_response refused;
  refused.transport_error = 7;
  refused.blocked = true;  // the connect-time guard: an internal address
  CHECK(verdict_of(refused) == recall_verdict::failed);

  const auto limited = classify_recall(answer(429, "30"), std::chrono::system_clock::now());
  CHECK(limited.verdict == recall_verdict::retry);
  CHECK(limited.answer.retry_after == std::chrono::seconds{30});

  const auto now = std::chrono::system_clock::now();
  CHECK(classify_recall(answer(204), now).answer.reason == "DELETE answered 204");
  CHECK(classify_recall(answer(404), now).answer.reason == "already delivered or gone (404)");
  http_response unsupported = answer(405);
  unsupported.body = "DELETE not allowed";
  CHECK(classify_recall(unsupported, now).answer.reason == "recall not supported: rejected (405): DELETE not allowed");
}
