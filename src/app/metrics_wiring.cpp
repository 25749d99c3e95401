#include "metrics_wiring.hpp"

#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscriber_store.hpp"

namespace webpushd::app {

const char* outcome_label(const delivery::delivery_report& r) noexcept {
  using storage::outbox_state;
  switch (r.state) {
    case outbox_state::sent: return "sent";
    case outbox_state::gone: return "gone";
    case outbox_state::failed: return "failed";
    case outbox_state::dead: return "dead";
    case outbox_state::expired: return "expired";
    case outbox_state::queued: return r.attempted ? "retried" : nullptr;
    default: return nullptr;  // the dispatcher leads to no other state
  }
}

void delivery_metrics::on_recorded(std::span<const delivery::delivery_report> reports) {
  for (const auto& r : reports) {
    const char* outcome = outcome_label(r);
    if (outcome == nullptr) continue;
    metrics::delivery_observation d;
    d.outcome = outcome;
    d.push_service = delivery::to_string(r.service);
    if (r.latency) d.latency = std::chrono::duration<double>(*r.latency);
    d.failure_class = r.failure_class;
    registry_.delivery_recorded(d);
  }
}

metrics::figure_sources database_figures(storage::database& db) {
  // Stores on the reader connection, made once; the registry calls the
  // sources one at a time, so the connection is never used concurrently.
  std::shared_ptr<storage::outbox_store> outbox = storage::make_sqlite_outbox_store(db);
  std::shared_ptr<storage::subscriber_store> subscribers = storage::make_sqlite_subscriber_store(db);
  metrics::figure_sources sources;
  sources.outbox = [outbox](time_point now) -> result<metrics::outbox_figures> {
    auto b = outbox->backlog(now);
    if (!b) return tl::unexpected(std::move(b.error()));
    return metrics::outbox_figures{b->queued, b->due, b->sending, b->oldest_due};
  };
  sources.subscriptions = [subscribers]() -> result<metrics::subscription_figures> {
    auto c = subscribers->count_by_state();
    if (!c) return tl::unexpected(std::move(c.error()));
    return metrics::subscription_figures{c->active, c->gone, c->erased};
  };
  return sources;
}

}  // namespace webpushd::app
