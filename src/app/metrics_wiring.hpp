#pragma once
// How the daemon's parts report to the metrics registry: the one place that
// knows both the observer hooks of delivery, ingest, automation, pacing,
// tracking and api, and the registry's methods.

#include <memory>
#include <span>

#include "webpushd/delivery/dispatcher.hpp"
#include "webpushd/metrics/registry.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::app {

/// @brief The registry label of a recorded delivery's outcome ("sent",
/// "retried", …), or nullptr for a message handed back unsent at shutdown.
const char* outcome_label(const delivery::delivery_report& r) noexcept;

/// @brief Feeds the dispatcher's recorded outcomes to the registry.
class delivery_metrics final : public delivery::dispatcher_observer {
 public:
  explicit delivery_metrics(metrics::registry& registry) : registry_(registry) {}
  void on_recorded(std::span<const delivery::delivery_report> reports) override;

 private:
  metrics::registry& registry_;
};

/// @brief Scrape-time figures read on `db` (a reader connection of its own,
/// which must outlive the registry's use of them).
metrics::figure_sources database_figures(storage::database& db);

}  // namespace webpushd::app
