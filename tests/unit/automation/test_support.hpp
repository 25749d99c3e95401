#pragma once
// Shared by the automation tests.

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/ingest/events.hpp"
#include "webpushd/storage/outbox_store.hpp"

namespace webpushd::automation::testing {

/// @brief The instant an RFC 3339 text names; fails the test if it names none.
inline time_point at(const std::string& rfc3339) {
  auto t = ingest::parse_rfc3339(rfc3339);
  REQUIRE_MESSAGE(t.has_value(), rfc3339);
  return *t;
}

/// @brief Claims what is due and records that a push service accepted each
/// message (201 with a Location, which a recall needs); returns how many.
inline std::size_t accept_due(storage::outbox_store& outbox, time_point now) {
  auto claimed = outbox.claim_due(now, 1000);
  REQUIRE(claimed.has_value());
  std::vector<storage::attempt_result> accepted;
  for (const auto& m : *claimed) {
    storage::attempt_result r;
    r.message_id = m.id;
    r.http_status = 201;
    r.location = "https://push.example/message/" + std::to_string(m.id);
    accepted.push_back(r);
  }
  REQUIRE(outbox.record(accepted, now).has_value());
  return claimed->size();
}

}  // namespace webpushd::automation::testing
