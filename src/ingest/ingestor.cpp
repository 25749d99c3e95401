// The event ingestor: validate on the caller's thread, store the valid
// events of a request as ONE write_queue item (one savepoint: the batch is
// stored together or not at all), answer after the commit.
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/ingest/events.hpp"
#include "webpushd/storage/event_store.hpp"
#include "webpushd/storage/write_queue.hpp"

namespace webpushd::ingest {

event_ingestor::event_ingestor(storage::write_queue& writer, const clock& clk, ingest_options options)
    : writer_(writer), clock_(clk), options_(std::move(options)) {}

void event_ingestor::set_stored_hook(stored_hook hook) { hook_ = std::move(hook); }

void event_ingestor::set_committed_observer(committed_observer observer) { observer_ = std::move(observer); }

void event_ingestor::ingest(const nlohmann::json& body, std::function<void(result<ingest_outcome>)> done) {
  // One event, or {"events": [...]}; a single event's fields are named from
  // the top ("properties.price"), a batch's by index ("events[3].properties.price").
  const bool batch = body.is_object() && body.contains("events");
  if (batch && !body.at("events").is_array()) {
    return done(fail("invalid_type", "must be an array of events", "events"));
  }
  const std::size_t count = batch ? body.at("events").size() : 1;
  if (count == 0) return done(fail("events_required", "at least one event", "events"));
  if (count > options_.max_batch_events) {
    return done(fail("batch_too_large",
                     std::to_string(count) + " events; at most " + std::to_string(options_.max_batch_events) +
                         " per request (server.max_batch_events)",
                     "events"));
  }

  auto outcome = std::make_shared<ingest_outcome>();
  auto valid = std::make_shared<std::vector<storage::stored_event>>();
  valid->reserve(count);
  const auto received_at = clock_.now();
  for (std::size_t i = 0; i < count; ++i) {
    const auto& value = batch ? body.at("events").at(i) : body;
    auto e = validate_event(value, batch ? "events[" + std::to_string(i) + "]" : "", options_.custom_types);
    if (!e) {
      outcome->rejected.push_back({i, std::move(e.error())});
      continue;
    }
    valid->push_back({std::move(e->id), std::move(e->type), std::move(e->customer_id), std::move(e->subscription_id),
                      e->occurred_at, received_at, std::move(e->properties)});
  }
  if (valid->empty()) return done(std::move(*outcome));

  // The hook is copied into the work item: it runs on the writer thread,
  // possibly after this ingestor is gone (the daemon drains the queue last).
  auto submitted = writer_.submit(
      [valid, outcome, hook = hook_, &clk = clock_](storage::database& db) -> result<void> {
        auto store = storage::make_sqlite_event_store(db);
        std::vector<storage::stored_event> fresh;
        for (const auto& e : *valid) {
          auto stored = store->insert_if_new(e);
          if (!stored) return tl::unexpected(std::move(stored.error()));
          if (!*stored) continue;
          if (hook) fresh.push_back(e);
          ++outcome->accepted;
          ++outcome->accepted_by_type[e.type];
        }
        // In the same savepoint: the journeys these events start or end
        // commit with them, or the batch fails as a whole.
        if (hook && !fresh.empty()) {
          if (auto r = hook(db, fresh, clk.now()); !r) return tl::unexpected(std::move(r.error()));
        }
        // Counted here, read only in the callback after the commit (same thread).
        outcome->duplicates = valid->size() - outcome->accepted;
        return {};
      },
      [outcome, done, observer = observer_](result<void> committed) {
        if (!committed) return done(tl::unexpected(std::move(committed.error())));
        if (observer) observer(*outcome);
        done(std::move(*outcome));
      });
  if (!submitted) done(tl::unexpected(std::move(submitted.error())));
}

}  // namespace webpushd::ingest
