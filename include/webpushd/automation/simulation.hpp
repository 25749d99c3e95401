#pragma once
/// @file
/// @brief Runs scenarios over a trace of shop events in virtual time, on a
/// real (scratch) database, with the real engine: what `webpushctl simulate`
/// prints and what the scenario tests assert on.
///
/// Time moves only forward and only when told: before an item of the trace
/// is applied, every step due up to its time fires at its own due time, in
/// due order, exactly as the scheduler would fire it in real time. Nothing
/// is delivered: a message passes the same send-time gate as in the daemon
/// (caps, quiet hours: deferred to its next allowed moment, or suppressed)
/// and is then taken as accepted by the push service at once; "sent" lines
/// carry that moment. Unsubscribes and narrowed consent in the trace are
/// attributed to the latest push, as the daemon does.
///
/// A trace is JSON Lines; each line is one of
/// - a shop event, exactly as `POST /v1/events` takes it ("type" set);
/// - `{"at": T, "subscribe": {"subscription_id", "customer_id"?, "categories": […],
///   "locale"?, "timezone"?}}` — a shopper subscribes (welcome scenarios start);
/// - `{"at": T, "consent": {"subscription_id", "categories": […]}}` — consent changes;
/// - `{"at": T, "unsubscribe": "<subscription_id>"}`;
/// - `{"at": T, "link": {"subscription_id", "customer_id"}}` — the shop identifies the shopper.
/// Blank lines and lines starting with `#` are ignored. Lines must be in time order.

#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/engine.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/pacing/policy.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/journey_store.hpp"
#include "webpushd/tracking/beacons.hpp"

namespace webpushd::automation {

/// @brief One thing that happened to a person, in time order.
struct simulated_line {
  time_point at{};
  std::string person;        ///< "c:…" or "s:…"
  std::string scenario;
  std::string step;          ///< "" for journey-level lines
  std::string outcome;       ///< entered | sent | deferred | suppressed | skipped | exited | restarted | completed | cancelled | unsubscribed
  std::string reason;        ///< why (suppressed, skipped, exited…); for sent the locale, and ", variant b" when the step has variants
  std::string subscription;  ///< public id of the device, when one is concerned
  std::string variant;       ///< the A/B variant of the message concerned ("" when none, or no message)
  nlohmann::json message;    ///< the payload for `sent` (title, body, url, …), else null
};

/// @brief See the file comment.
class simulation {
 public:
  /// @brief A simulation on the database at `path` (created; use a scratch
  /// file — it is filled with the trace's subscribers).
  /// `pacing` (nullptr: none) is the policy the daemon would apply.
  static result<std::unique_ptr<simulation>> create(std::shared_ptr<const scenario_set> scenarios,
                                                    engine_options options,
                                                    std::map<std::string, nlohmann::json> custom_event_types,
                                                    const std::filesystem::path& path,
                                                    std::shared_ptr<const pacing::policy> pacing = nullptr);
  ~simulation();

  /// @brief Applies one trace line (parsed JSON). `line_number` is used in
  /// errors (`invalid_trace`, with the line and the field).
  result<void> apply(const nlohmann::json& item, std::size_t line_number);
  /// @brief Reads and applies a JSON Lines trace; with `until`, lines after
  /// that time are left out (the clock stops there).
  result<void> apply_trace(std::istream& in, std::optional<time_point> until = std::nullopt);
  /// @brief Fires every step due up to `t` (each at its own due time).
  result<void> advance_to(time_point t);
  /// @brief Fires every step still pending, however far ahead (the end of a trace).
  result<void> run_to_end();

  /// @brief Everything that happened so far, in time order.
  result<std::vector<simulated_line>> lines();
  /// @brief Virtual now.
  time_point now() const;
  /// @brief The database (tests look into it).
  storage::database& db();

 private:
  simulation();
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// @brief Text report grouped by person, as `webpushctl simulate` prints it.
std::string format_simulation(const std::vector<simulated_line>& lines);

}  // namespace webpushd::automation
