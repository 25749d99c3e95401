#pragma once
/// @file
/// @brief Shop events from the backend (`POST /v1/events`): validation of
/// one event against its type's schema (built-in: schemas/events/; custom:
/// `events.custom_types` in the config), and the ingestor that stores a
/// batch durably and idempotently in one write_queue item.

#include <array>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {
class database;
class write_queue;
struct stored_event;
}

namespace webpushd::ingest {

/// @brief One validated event (plain values; properties re-serialised).
struct event {
  std::string id;               ///< 1–128 bytes, no control characters; the idempotency key
  std::string type;             ///< a built-in type (builtin_event_types()) or a configured custom one
  std::string customer_id;      ///< empty: none
  std::string subscription_id;  ///< empty: none
  time_point occurred_at{};     ///< from RFC 3339, millisecond precision
  std::string properties;       ///< the validated `properties` object as compact JSON
};

/// @brief The built-in event types, sorted (one schema each in schemas/events/).
std::vector<std::string> builtin_event_types();

/// @brief Names no custom type may take besides the built-in ones: the
/// scenario engine's own triggers (`subscribed`: a subscriber was created
/// or came back).
inline constexpr std::array<std::string_view, 1> reserved_event_types{"subscribed"};

/// @brief The custom event types of a config (`events.custom_types`), each
/// with its compiled JSON Schema (draft 7) for `properties`. Cheap to copy
/// (the compiled schemas are shared and immutable), safe to use from any
/// thread. Default-constructed: no custom types.
class custom_event_types {
 public:
  custom_event_types() = default;

  /// @brief Compiles `schemas` (name → JSON Schema of the properties
  /// object). Error `config_invalid` with field
  /// "events.custom_types.<name>" for a name that is not
  /// `^[a-z][a-z0-9_]{0,63}$`, shadows a built-in type, is reserved
  /// (reserved_event_types), or whose schema is not an object or does not
  /// compile (the message says why).
  static result<custom_event_types> compile(const std::map<std::string, nlohmann::json>& schemas);

  /// @brief The custom type names, sorted.
  std::vector<std::string> names() const;
  /// @brief Whether `type` is one of them.
  bool contains(std::string_view type) const;
  /// @brief Whether there are none.
  bool empty() const;

  /// @brief Checks `properties` against the type's schema; errors as
  /// validate_event's (`invalid_property`, `missing_field`,
  /// `field_not_allowed`), fields prefixed with `field`. `type` must be one
  /// of names().
  result<void> check_properties(std::string_view type, const nlohmann::json& properties,
                                const std::string& field) const;

 private:
  struct compiled;
  std::shared_ptr<const compiled> compiled_;
};

/// @brief custom_event_types::compile() without keeping the result: for a
/// config check at start-up (the daemon refuses to start on an error).
result<void> check_custom_types(const std::map<std::string, nlohmann::json>& schemas);

/// @brief Parses an RFC 3339 date-time (`2026-11-23T13:10:00Z`,
/// `…T13:10:00.250+01:00`; `T`/`Z` in either case; a leap second `:60` is
/// read as the start of the next minute). Fractions beyond milliseconds are
/// truncated. nullopt for anything else, including impossible dates.
std::optional<time_point> parse_rfc3339(std::string_view text);

/// @brief Validates one event. `path` prefixes every field the error names
/// ("events[3]" gives "events[3].properties.price"; "" names fields from
/// the top: "properties.price"). `custom` are the types accepted besides
/// the built-in ones.
///
/// Codes: `invalid_type` (not an object / wrong JSON type), `missing_field`,
/// `field_not_allowed`, `invalid_event_id`, `unknown_event_type` (neither
/// built-in nor custom), `invalid_timestamp`, `invalid_property` (the
/// schema's message), and `invalid_price` (price_dropped: new_price not
/// below old_price).
result<event> validate_event(const nlohmann::json& value, const std::string& path,
                             const custom_event_types& custom = {});

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
  std::map<std::string, std::size_t> accepted_by_type;  ///< `accepted` by event type
};

/// @brief Limits of the ingestor, and the types it accepts besides the built-in ones.
struct ingest_options {
  std::size_t max_batch_events = 1000;  ///< more in one request: `batch_too_large`
  custom_event_types custom_types{};    ///< from `events.custom_types` (compiled)
};

/// @brief Validates a request's events and stores the valid ones in ONE
/// write_queue item, so a batch commits (or fails) together.
class event_ingestor {
 public:
  /// @brief Called inside the batch's write_queue work item, right after
  /// its events were inserted, with the events stored now (duplicates left
  /// out) in request order, and the clock's time. An error fails the whole
  /// batch: nothing of it is stored and the request gets that error. Not
  /// called when every valid event was a duplicate. Runs on the writer
  /// thread: it may write through `db` (same transaction), must not block
  /// on the write_queue.
  using stored_hook = std::function<result<void>(storage::database& db,
                                                 const std::vector<storage::stored_event>& stored, time_point now)>;

  /// @brief `writer` and `clk` must outlive the ingestor.
  event_ingestor(storage::write_queue& writer, const clock& clk, ingest_options options = {});

  /// @brief Sets (or, with an empty function, clears) the hook. Call before
  /// serving: not synchronised with ingest().
  void set_stored_hook(stored_hook hook);

  /// @brief Told each request's outcome once its events are committed (and
  /// before the request's own callback), on the writer thread; not called
  /// for a request with nothing to store or whose batch failed. For
  /// metrics: keep it quick.
  using committed_observer = std::function<void(const ingest_outcome&)>;
  /// @brief Sets (or clears) the observer. Call before serving.
  void set_committed_observer(committed_observer observer);

  /// @brief Ingests a request body: one event object, or `{"events":[…]}`.
  ///
  /// `done` is called exactly once: with the outcome after the valid events
  /// committed (at once, without a write, when none is valid), or with an
  /// error for the request as a whole: `events_required` (empty list),
  /// `invalid_type` (`events` not an array), `batch_too_large` (over
  /// max_batch_events), or the write_queue's `storage_*` error or the
  /// stored hook's error (nothing of the batch is stored then).
  void ingest(const nlohmann::json& body, std::function<void(result<ingest_outcome>)> done);

 private:
  storage::write_queue& writer_;
  const clock& clock_;
  ingest_options options_;
  stored_hook hook_;
  committed_observer observer_;
};

}  // namespace webpushd::ingest
