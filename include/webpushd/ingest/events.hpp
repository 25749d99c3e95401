#pragma once
/// @file
/// @brief Shop events from the backend (`POST /v1/events`): validation of
/// one event against its type's schema (schemas/events/), and the ingestor
/// that stores a batch durably and idempotently in one write_queue item.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {
class write_queue;
}

namespace webpushd::ingest {

/// @brief One validated event (plain values; properties re-serialised).
struct event {
  std::string id;               ///< 1–128 bytes, no control characters; the idempotency key
  std::string type;             ///< a built-in type (builtin_event_types())
  std::string customer_id;      ///< empty: none
  std::string subscription_id;  ///< empty: none
  time_point occurred_at{};     ///< from RFC 3339, millisecond precision
  std::string properties;       ///< the validated `properties` object as compact JSON
};

/// @brief The built-in event types, sorted (one schema each in schemas/events/).
std::vector<std::string> builtin_event_types();

/// @brief Parses an RFC 3339 date-time (`2026-11-23T13:10:00Z`,
/// `…T13:10:00.250+01:00`; `T`/`Z` in either case; a leap second `:60` is
/// read as the start of the next minute). Fractions beyond milliseconds are
/// truncated. nullopt for anything else, including impossible dates.
std::optional<time_point> parse_rfc3339(std::string_view text);

/// @brief Validates one event. `path` prefixes every field the error names
/// ("events[3]" gives "events[3].properties.price"; "" names fields from
/// the top: "properties.price").
///
/// Codes: `invalid_type` (not an object / wrong JSON type), `missing_field`,
/// `field_not_allowed`, `invalid_event_id`, `unknown_event_type`,
/// `invalid_timestamp`, `invalid_property` (the schema's message), and
/// `invalid_price` (price_dropped: new_price not below old_price).
result<event> validate_event(const nlohmann::json& value, const std::string& path);

/// @brief One event of a batch that was not accepted.
struct rejection {
  std::size_t index = 0;  ///< position in `events` (0 for a single event)
  error reason;           ///< code, message, field (a path as validate_event's)
};

/// @brief What happened to a request's events.
struct ingest_outcome {
  std::size_t accepted = 0;    ///< stored now
  std::size_t duplicates = 0;  ///< valid, but an event with the id was already stored (or earlier in the batch)
  std::vector<rejection> rejected;  ///< invalid ones, by index ascending
};

/// @brief Limits of the ingestor.
struct ingest_options {
  std::size_t max_batch_events = 1000;  ///< more in one request: `batch_too_large`
};

/// @brief Validates a request's events and stores the valid ones in ONE
/// write_queue item, so a batch commits (or fails) together.
class event_ingestor {
 public:
  /// @brief `writer` and `clk` must outlive the ingestor.
  event_ingestor(storage::write_queue& writer, const clock& clk, ingest_options options = {});

  /// @brief Ingests a request body: one event object, or `{"events":[…]}`.
  ///
  /// `done` is called exactly once: with the outcome after the valid events
  /// committed (at once, without a write, when none is valid), or with an
  /// error for the request as a whole: `events_required` (empty list),
  /// `invalid_type` (`events` not an array), `batch_too_large` (over
  /// max_batch_events), or the write_queue's `storage_*` error (nothing of
  /// the batch is stored then).
  void ingest(const nlohmann::json& body, std::function<void(result<ingest_outcome>)> done);

 private:
  storage::write_queue& writer_;
  const clock& clock_;
  ingest_options options_;
};

}  // namespace webpushd::ingest
