#pragma once
/// @file
/// @brief The daemon's metrics: counters and histograms the other modules
/// feed through their observer hooks (wired in app), gauges read from the
/// database when scraped, the Prometheus text exposition for `GET /metrics`
/// and the live health figures for `GET /v1/status`.
///
/// prometheus-cpp stays inside this module: no other module includes its
/// headers, and the methods below take plain values. Every label value comes
/// from a small fixed set (outcome, push service, reason class, beacon type)
/// or from the configuration (event types, scenario names) or the code
/// (route patterns); never from a request, a campaign, a customer or an
/// endpoint. As a last guard each family keeps at most
/// `registry_options::max_series` label combinations; later new ones are
/// counted under the value `overflow` (and logged once).
///
/// Thread-safe: every method may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::metrics {

/// @brief What waits in the outbox, read at scrape time.
struct outbox_figures {
  std::int64_t queued = 0;   ///< waiting, due or not yet
  std::int64_t due = 0;      ///< of the queued, those due now
  std::int64_t sending = 0;  ///< claimed, outcome not yet recorded
  std::optional<time_point> oldest_due;  ///< when the longest-waiting due message fell due
};

/// @brief Subscriptions by state, read at scrape time (and reused for a while).
struct subscription_figures {
  std::int64_t active = 0;
  std::int64_t gone = 0;
  std::int64_t erased = 0;
};

/// @brief Where the database figures come from. They are called one at a
/// time (never concurrently), on the thread that scrapes or asks for status.
struct figure_sources {
  std::function<result<outbox_figures>(time_point now)> outbox;
  std::function<result<subscription_figures>()> subscriptions;
};

/// @brief Settings.
struct registry_options {
  std::string version;  ///< reported in webpushd_build_info and /v1/status; empty: this build's
  /// @brief How long subscription counts are reused: counting reads every
  /// subscription row (about a second per million), the outbox figures only
  /// indexes, so those are read at every scrape.
  std::chrono::seconds subscriptions_max_age{60};
  /// @brief The window of status(): deliveries and latency of the last …
  std::chrono::seconds window{300};
  /// @brief Label combinations per family at most (see the file comment).
  std::size_t max_series = 2000;
};

/// @brief One message attempt's recorded outcome (after its commit).
struct delivery_observation {
  /// @brief "sent", "retried", "gone", "failed", "dead" or "expired".
  std::string_view outcome;
  /// @brief "fcm", "mozilla", "apple", "windows" or "other".
  std::string_view push_service;
  /// @brief Due → the push service's answer; none when no answer came.
  std::optional<std::chrono::duration<double>> latency;
  /// @brief For retried, dead and expired: "rate_limited", "server_error",
  /// "timeout" or "network"; "" otherwise.
  std::string_view failure_class;
};

/// @brief What `GET /v1/status` shows (docs/API.md, "Status").
struct status_snapshot {
  outbox_figures outbox;
  std::optional<double> oldest_due_seconds;  ///< how long the oldest due message has waited; none: nothing due
  std::chrono::seconds window{};  ///< what "recent" below covers
  /// @brief Recent deliveries by outcome (every outcome present, 0 or more).
  std::map<std::string, std::uint64_t> deliveries;
  /// @brief Recent deliveries by push service, then outcome (all present).
  std::map<std::string, std::map<std::string, std::uint64_t>> by_push_service;
  /// @brief Delivery latency (due → answered) over the window; none without answers.
  std::optional<double> latency_p50_seconds;
  std::optional<double> latency_p99_seconds;
  subscription_figures subscriptions;
  time_point subscriptions_counted_at{};  ///< subscription counts are reused (registry_options)
  time_point started_at{};
  std::string version;
};

class counter_family;

/// @brief See the file comment.
class registry {
 public:
  /// @brief `clk` (time of start, scrapes and the status window) must outlive the registry.
  explicit registry(const clock& clk, registry_options options = {});
  ~registry();
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// @brief Sets where scrape-time figures come from. Call before serving.
  void set_sources(figure_sources sources);

  /// @brief Starts the series of these event types at 0 (so a first event
  /// shows as an increase). Others are still counted when they come.
  void declare_event_types(std::span<const std::string> types);
  /// @brief Likewise for scenarios' journey counters (call again after a reload).
  void declare_scenarios(std::span<const std::string> names);

  // --- ingest ----------------------------------------------------------

  /// @brief `n` events of `type` were stored (committed; duplicates not counted).
  void events_ingested(std::string_view type, std::uint64_t n);

  // --- automation -------------------------------------------------------

  /// @brief The journey engine logged `outcome` for a journey of `scenario`:
  /// "entered" counts a start; "exited", "completed" and "cancelled" an end.
  /// Other outcomes (sent, skipped, …) are not counted here.
  void journey_logged(std::string_view scenario, std::string_view outcome);

  // --- pacing -----------------------------------------------------------

  /// @brief The send-time gate deferred (`deferred` true) or suppressed a
  /// message by `rule` ("quiet_hours", "min_gap", "global_cap", "scenario_cap", "category_cap").
  void pacing_held(bool deferred, std::string_view rule);
  /// @brief An adaptive scenario's level changed.
  void pacing_level_changed(std::string_view scenario, bool tightened);

  // --- delivery ---------------------------------------------------------

  /// @brief One message attempt's outcome was recorded.
  void delivery_recorded(const delivery_observation& d);

  // --- tracking ---------------------------------------------------------
  // Counters of what happens after delivery go here (beacons now; clicks,
  // conversions and revenue with the tracking work): one method each,
  // backed by a family made in the constructor or by counter() below.

  /// @brief A service worker's beacon ("shown", "clicked", "closed") was
  /// stored (committed; repeats not counted).
  void beacon_recorded(std::string_view type);
  /// @brief Purchases attributed to a push: `converted` after a click,
  /// `influenced` after a push only shown. Counted inside the ingest
  /// transaction that attributes them (a transaction that then fails was
  /// counted anyway, like journeys).
  void purchases_attributed(std::uint64_t converted, std::uint64_t influenced);

  // --- api --------------------------------------------------------------

  /// @brief An HTTP request was answered. `route` is the router's pattern
  /// ("/v1/subscriptions/{id}"; "" when none matched), never the raw path.
  void http_request_answered(std::string_view method, std::string_view route, int status,
                             std::chrono::duration<double> elapsed);

  // --- generic ----------------------------------------------------------

  /// @brief A further counter family, for counters other modules' work adds
  /// later. `name` must follow the conventions (webpushd_…_total) and
  /// `label_names` be fixed; the family lives as long as the registry.
  /// Aborts on an invalid or duplicate name (a programming error).
  counter_family& counter(const std::string& name, const std::string& help, std::vector<std::string> label_names);

  // --- reading ----------------------------------------------------------

  /// @brief Everything, in the Prometheus text exposition format (0.0.4):
  /// reads the database figures first. A source that fails leaves its gauges
  /// at their last values (and logs a warning).
  std::string scrape();
  /// @brief The live health figures. Errors: the sources' (storage).
  result<status_snapshot> status();

  /// @brief The Content-Type of scrape()'s text.
  static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// @brief A counter family with fixed label names (see registry::counter).
class counter_family {
 public:
  ~counter_family();
  counter_family(const counter_family&) = delete;
  counter_family& operator=(const counter_family&) = delete;

  /// @brief Adds `n` (≥ 0) to the series with these label values, given in
  /// the order of the family's label names (a wrong count is ignored).
  void add(std::initializer_list<std::string_view> label_values, double n = 1);

 private:
  friend class registry;
  struct impl;
  explicit counter_family(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::metrics
