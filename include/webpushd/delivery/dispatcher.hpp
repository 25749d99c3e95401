#pragma once
/// @file
/// @brief The outbox dispatcher: takes due messages from the durable outbox,
/// encrypts and signs them on worker threads, hands them to the sender, and
/// records every outcome back in the outbox in batches (group commit). It
/// also sends the requested recalls (RFC 8030 §7.3): a DELETE of the
/// message's Location, once the Location passed check_recall_location.
///
/// Threads: one loop thread owns the outbox_store and the recall_store (one
/// SQLite connection) and does all claiming, classification and recording;
/// `workers` threads do the CPU-bound encryption; the sender's own thread
/// does the network. A message claimed but not recorded when the process
/// dies is requeued at the next start, and so is a recall (at-least-once).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "webpushd/core/clock.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/delivery/push_service.hpp"
#include "webpushd/delivery/retry.hpp"
#include "webpushd/delivery/sender.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/recall_store.hpp"
#include "webpushd/webpush/vapid.hpp"

namespace webpushd::delivery {

/// @brief Dispatcher settings.
struct dispatcher_options {
  unsigned workers = 0;                         ///< encryption threads; 0: one per core
  std::size_t max_outstanding = 2000;           ///< claimed but not yet recorded, at most
  std::size_t claim_batch = 512;                ///< rows claimed per transaction
  std::chrono::milliseconds poll_interval{500}; ///< outbox re-check for rows other processes wrote
  retry_policy retry;
  endpoint_rules rules;
};

/// @brief Running totals since start (for logs, metrics and tests).
struct dispatcher_counters {
  std::uint64_t claimed = 0, sent = 0, gone = 0, failed = 0, dead = 0, expired = 0, retried = 0, requeued = 0;
  /// Recalls claimed, and their outcomes (a retried recall counts in recalls_retried each time).
  std::uint64_t recalls_claimed = 0, recalled = 0, recalls_too_late = 0, recalls_unsupported = 0, recalls_failed = 0,
                recalls_retried = 0;
};

/// @brief One message attempt's outcome, as recorded.
struct delivery_report {
  /// @brief The state the attempt left the message in; `queued` means it
  /// will be tried again (or, without `attempted`, was handed back at shutdown).
  storage::outbox_state state = storage::outbox_state::sent;
  push_service service = push_service::other;  ///< of the message's endpoint
  /// @brief A request was made (false: the message could not be prepared,
  /// or was handed back unsent because the dispatcher is stopping).
  bool attempted = true;
  /// @brief From when the attempt fell due (the message's due time, or its
  /// retry's) to when the push service answered; none when no answer came.
  std::optional<std::chrono::microseconds> latency;
  /// @brief failure_class() of the answer, for an attempt that may be
  /// retried (whether it is retried, dead or expired); "" otherwise.
  const char* failure_class = "";
};

/// @brief Told what the dispatcher recorded (metrics).
class dispatcher_observer {
 public:
  virtual ~dispatcher_observer() = default;
  /// @brief Called on the dispatcher's loop thread once a batch of outcomes
  /// is committed, with one report per message of the batch. Keep it quick
  /// and do not call back into the dispatcher.
  virtual void on_recorded(std::span<const delivery_report> reports) = 0;
};

/// @brief See the file comment.
class dispatcher {
 public:
  /// @brief `store`, `recalls`, `signer`, `out` and `clk` must outlive the
  /// dispatcher. `store` and `recalls` share one connection, used only from
  /// the dispatcher's loop thread once started.
  dispatcher(dispatcher_options options, storage::outbox_store& store, storage::recall_store& recalls,
             webpush::vapid_signer& signer, sender& out, const clock& clk);
  ~dispatcher();
  dispatcher(const dispatcher&) = delete;
  dispatcher& operator=(const dispatcher&) = delete;

  /// @brief Tells `observer` (not owned; nullptr: nobody) about every
  /// recorded outcome. Call before start().
  void set_observer(dispatcher_observer* observer);

  /// @brief Requeues what a previous run left in flight (messages and
  /// recalls), then starts the threads. Errors: the stores', if that fails.
  result<void> start();
  /// @brief Wakes the loop: new messages were enqueued.
  void notify();
  /// @brief Stops claiming, lets requests in flight finish for up to `grace`,
  /// records their outcomes, puts messages not yet sent back in the queue,
  /// and joins the threads. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds{10});
  /// @brief Totals so far.
  dispatcher_counters counters() const;
  /// @brief Claimed but not yet recorded right now.
  std::size_t outstanding() const;
  /// @brief Blocks until no message or recall is due and nothing is outstanding, or
  /// until `timeout`. Returns whether it became idle (tests, benchmarks, CLI).
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::delivery
