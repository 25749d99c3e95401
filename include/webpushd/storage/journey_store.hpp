#pragma once
/// @file
/// @brief Journeys of the automation engine (schema v5): one person's way
/// through one scenario, with its timer in the row so a restart finds every
/// pending reminder; the log of what each step did; and who recently showed
/// interest in which product.
///
/// Every method runs on the connection it was made from; the engine calls
/// them inside a write_queue work item, so a whole reaction to an event (or
/// a whole fired step) commits or fails together.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief Where a journey is.
enum class journey_state {
  active,     ///< waiting for its next step (next_at)
  completed,  ///< every step was handled
  exited,     ///< an exit event ended it
  cancelled,  ///< its scenario or step was removed, or it was merged into a customer's journey
};

/// @brief Text form ("active", …).
const char* to_string(journey_state s) noexcept;

/// @brief A stored journey.
struct journey_row {
  std::int64_t id = 0;
  std::string scenario;
  std::string person;       ///< "c:<customer id>" or "s:<subscription public id>"
  std::string journey_key;  ///< "" when the scenario keys journeys per person only
  journey_state state = journey_state::active;
  int next_step = 0;        ///< index of the next step
  std::string step_name;    ///< its name (a reload may reorder steps)
  time_point anchor_at{};   ///< step offsets count from here
  std::optional<time_point> next_at;  ///< when the next step is due; none once ended
  std::string context;      ///< JSON: the event the journey runs on
  time_point started_at{};
  time_point updated_at{};
  std::optional<time_point> ended_at;
  std::string end_reason;
};

/// @brief One line of journey_log.
struct journey_log_entry {
  std::int64_t journey_id = 0;  ///< 0: no journey (e.g. entry refused by the cooldown)
  std::string scenario;
  std::string step;             ///< step name, or "" for journey-level outcomes
  std::string person;
  std::optional<std::int64_t> subscription_id;
  std::string outcome;          ///< entered | sent | suppressed | skipped | exited | restarted | completed | cancelled | deferred (pacing)
  std::string reason;
  std::optional<std::int64_t> outbox_id;
  time_point at{};
};

/// @brief How many journey_log lines of one step had one outcome.
struct outcome_count {
  std::string step;  ///< "" for journey-level lines (entered, exited, completed, …)
  std::string outcome;
  std::int64_t n = 0;
};

/// @brief How many journeys reached one step.
struct step_reach {
  std::string step;
  std::int64_t journeys = 0;
};

/// @brief Repository interface (SQLite now).
class journey_store {
 public:
  virtual ~journey_store() = default;
  /// @brief The active journey of (scenario, person, key), if any.
  virtual result<std::optional<journey_row>> find_active(std::string_view scenario, std::string_view person,
                                                         std::string_view key) = 0;
  /// @brief One journey in any state, if it (still) exists.
  virtual result<std::optional<journey_row>> get(std::int64_t id) = 0;
  /// @brief Every active journey of a person in a scenario (`scenario` empty:
  /// in every scenario).
  virtual result<std::vector<journey_row>> active_for_person(std::string_view scenario, std::string_view person) = 0;
  /// @brief Gives an active journey to another person (a subscriber linked
  /// to a customer: its journeys become the customer's).
  virtual result<void> move_to_person(std::int64_t id, std::string_view person, time_point now) = 0;
  /// @brief Moves product interest from one person to another (keeping the
  /// later time where both have one).
  virtual result<void> move_interest(std::string_view from, std::string_view to) = 0;
  /// @brief When the person last entered the scenario (any key), if ever.
  virtual result<std::optional<time_point>> last_started(std::string_view scenario, std::string_view person) = 0;
  /// @brief Inserts an active journey; returns its id.
  virtual result<std::int64_t> insert(const journey_row& j) = 0;
  /// @brief Moves the timer of an active journey (next step, anchor, due
  /// time, context).
  virtual result<void> reschedule(const journey_row& j, time_point now) = 0;
  /// @brief Ends an active journey (state ≠ active). No-op for an ended one.
  virtual result<void> end(std::int64_t id, journey_state state, std::string_view reason, time_point now) = 0;
  /// @brief Active journeys due at `now`, earliest first.
  virtual result<std::vector<journey_row>> due(time_point now, std::size_t limit) = 0;
  /// @brief The earliest due time of any active journey.
  virtual result<std::optional<time_point>> next_due() = 0;
  /// @brief How many journeys are active.
  virtual result<std::int64_t> count_active() = 0;
  /// @brief Appends to journey_log.
  virtual result<void> log(const journey_log_entry& e) = 0;
  /// @brief Every journey of a person in any state, oldest first (GDPR exports).
  virtual result<std::vector<journey_row>> of_person(std::string_view person) = 0;
  /// @brief One journey's log lines, oldest first.
  virtual result<std::vector<journey_log_entry>> log_of(std::int64_t journey_id) = 0;
  /// @brief journey_log lines, oldest first (simulate, tests, stats);
  /// `scenario` empty: all.
  virtual result<std::vector<journey_log_entry>> log_entries(std::string_view scenario, std::size_t limit) = 0;
  /// @brief journey_log lines of one scenario at times in [from, to),
  /// counted by step and outcome (stats).
  virtual result<std::vector<outcome_count>> count_outcomes(std::string_view scenario, time_point from,
                                                            time_point to) = 0;
  /// @brief Journeys of one scenario whose step fired in [from, to) — its
  /// message handed to the outbox, suppressed or skipped — counted once per
  /// journey and step however many devices it had (stats: a step's
  /// `entered`).
  virtual result<std::vector<step_reach>> count_step_reach(std::string_view scenario, time_point from,
                                                           time_point to) = 0;
  /// @brief Cancels the journey's queued outbox messages (reason given),
  /// only those to one subscription when given; returns how many.
  virtual result<std::size_t> cancel_queued_messages(std::int64_t journey_id, std::string_view reason, time_point now,
                                                     std::optional<std::int64_t> subscription_id = std::nullopt) = 0;
  /// @brief Retention: deletes journeys that ended before `before` and
  /// journey_log lines older than it (active journeys are never touched).
  /// Returns how many journeys.
  virtual result<std::size_t> purge_ended(time_point before) = 0;
  /// @brief Remembers that `person` viewed or carted `product_id` at `at`.
  virtual result<void> record_interest(std::string_view product_id, std::string_view person, time_point at) = 0;
  /// @brief Persons interested in `product_id` at or after `since`.
  virtual result<std::vector<std::string>> interested_persons(std::string_view product_id, time_point since,
                                                              std::size_t limit) = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<journey_store> make_sqlite_journey_store(database& db);

}  // namespace webpushd::storage
