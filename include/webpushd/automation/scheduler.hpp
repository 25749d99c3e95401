#pragma once
/// @file
/// @brief Drives the engine in real time: one thread that sleeps until the
/// next journey step is due (or at most `max_sleep`, so a journey another
/// connection just started is picked up soon), fires due steps in
/// write_queue items of `batch` journeys, tells the dispatcher when it
/// enqueued messages, and runs housekeeping once in a while (purging old
/// events and ended journeys; the daemon adds pacing's adaptive levels).
///
/// Nothing here is durable by itself: the timers live in the journeys table,
/// so after a crash the first loop finds every step that came due meanwhile
/// (the scenario's lateness policy decides whether it is still sent).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "webpushd/automation/campaigns.hpp"
#include "webpushd/automation/engine.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/write_queue.hpp"

namespace webpushd::automation {

/// @brief Settings of the scheduler.
struct scheduler_options {
  std::chrono::milliseconds max_sleep{1000};  ///< longest sleep between checks
  std::size_t batch = 200;                    ///< journeys per write transaction
  std::size_t campaign_chunk = 5000;          ///< campaign audience rows per write transaction
  std::chrono::milliseconds purge_interval{std::chrono::hours{1}};
  std::chrono::milliseconds event_retention{std::chrono::hours{24 * 180}};
  std::chrono::milliseconds unknown_event_retention{std::chrono::hours{24 * 30}};
};

/// @brief See the file comment.
class scheduler {
 public:
  /// @brief `eng`, `writer` and `clk` must outlive the scheduler; `reader` is
  /// a connection of its own (for next_due). `on_enqueued` is called after a
  /// commit that created outbox messages (wakes the dispatcher).
  scheduler(engine& eng, storage::write_queue& writer, storage::database reader, const clock& clk,
            scheduler_options options, std::function<void()> on_enqueued);
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  /// @brief Also runs campaigns' fan-out (call before start(); `runner` must
  /// outlive the scheduler).
  void set_campaigns(campaign_runner* runner);
  /// @brief Work run in a write_queue item every `interval` (the first time a
  /// minute after start); failures are logged. Call before start().
  using periodic_task = std::function<result<void>(storage::database&, time_point)>;
  void add_periodic(std::string name, std::chrono::milliseconds interval, periodic_task task);
  /// @brief Starts the thread.
  void start();
  /// @brief Wakes the thread now (a journey may have become due earlier).
  void notify();
  /// @brief Stops and joins the thread (a batch in progress finishes). Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::automation
