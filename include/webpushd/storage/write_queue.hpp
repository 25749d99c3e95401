#pragma once
/// @file
/// @brief The single writer: one thread with its own connection that runs
/// queued work items in batches, one transaction per batch (group commit).
///
/// "Ack after commit" costs one fsync per commit (synchronous=FULL). Batching
/// whatever is queued into one transaction shares that fsync between all the
/// requests waiting at that moment, so throughput grows with load while each
/// caller still learns its outcome only once it is durable.
///
/// Per batch: `BEGIN IMMEDIATE`; each item runs inside its own `SAVEPOINT`,
/// so an item that fails is rolled back alone and the others go on; then
/// `COMMIT`. The `done` callbacks run only after the COMMIT returned (on the
/// writer thread, in submission order). If BEGIN or COMMIT fails, every item
/// of the batch whose work had succeeded gets that error instead (an item
/// whose own work failed keeps its own error): nothing of the batch is stored.
///
/// Work items receive the writer's connection; stores made from it inside
/// the work function (make_sqlite_*_store(db)) open their transaction scopes
/// as savepoints (see storage::transaction). A work item must not COMMIT,
/// ROLLBACK or BEGIN itself, and must not block on another write_queue item
/// (it would wait for itself).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "webpushd/core/error.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {

/// @brief Limits of the queue.
struct write_queue_options {
  /// @brief Items waiting (not yet in a running batch) at most; submit()
  /// beyond that fails fast with `storage_busy` (see submit()).
  std::size_t max_queued = 10'000;
  /// @brief Items in one transaction at most (bounds how long the write lock
  /// is held and how much one failed COMMIT takes down).
  std::size_t max_batch = 512;
};

/// @brief Totals since start (for metrics and tests).
struct write_queue_counters {
  std::uint64_t batches = 0;    ///< transactions committed
  std::uint64_t items = 0;      ///< items whose work succeeded and was committed
  std::uint64_t failed = 0;     ///< items that reported an error to their callback
  std::size_t largest_batch = 0;
};

/// @brief See the file comment. Thread-safe: submit() from any thread.
class write_queue {
 public:
  /// @brief A unit of work, run on the writer thread inside a savepoint.
  using work_fn = std::function<result<void>(database&)>;
  /// @brief Told the outcome once it is durable (or failed).
  using done_fn = std::function<void(result<void>)>;

  /// @brief Takes ownership of `db` (the writer's own connection; open
  /// another one for readers) and starts the writer thread.
  explicit write_queue(database db, write_queue_options options = {});
  /// @brief Drains (as stop()) and joins the writer thread.
  ~write_queue();
  write_queue(const write_queue&) = delete;
  write_queue& operator=(const write_queue&) = delete;

  /// @brief Queues `work`; `done` is called with its outcome after the batch
  /// it ran in committed.
  ///
  /// Never blocks: when `max_queued` items are already waiting it fails at
  /// once with `storage_busy` (and neither function is called). A full queue
  /// means the disk is not keeping up; an HTTP handler should answer 503 with
  /// Retry-After rather than park an I/O thread. After stop() it fails with
  /// `storage_stopped`.
  result<void> submit(work_fn work, done_fn done);

  /// @brief submit() for work that produces a value: `done` receives the
  /// value (or the error) after the commit.
  template <class T>
  result<void> submit_value(std::function<result<T>(database&)> work, std::function<void(result<T>)> done) {
    // The value lives between the two calls on the writer thread only.
    auto slot = std::make_shared<std::optional<T>>();
    return submit(
        [work = std::move(work), slot](database& db) -> result<void> {
          auto value = work(db);
          if (!value) return tl::unexpected(std::move(value.error()));
          slot->emplace(std::move(*value));
          return {};
        },
        [done = std::move(done), slot](result<void> outcome) {
          if (!outcome) {
            done(tl::unexpected(std::move(outcome.error())));
          } else {
            done(std::move(**slot));
          }
        });
  }

  /// @brief Stops accepting work, runs and commits everything already
  /// queued, calls its callbacks, and joins the thread. Idempotent.
  void stop();

  /// @brief Totals so far.
  write_queue_counters counters() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace webpushd::storage
