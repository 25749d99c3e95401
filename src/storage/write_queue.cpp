#include "webpushd/storage/write_queue.hpp"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "statement.hpp"

namespace webpushd::storage {
namespace {

struct item {
  write_queue::work_fn work;
  write_queue::done_fn done;
};

// Whether the connection is still inside the batch's transaction. Some
// errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) make SQLite roll the whole
// transaction back on its own; everything before them is then lost.
bool in_transaction(database& db) { return sqlite3_get_autocommit(db.handle()) == 0; }

error lost_transaction(const error& cause) {
  return error{cause.code.empty() ? "storage_error" : cause.code,
               "the batch's transaction was rolled back: " + cause.message, {}};
}

}  // namespace

struct write_queue::impl {
  impl(database connection, write_queue_options opts) : db(std::move(connection)), options(opts) {}

  database db;
  write_queue_options options;

  mutable std::mutex mutex;
  std::condition_variable wake;
  std::deque<item> queue;
  bool stopping = false;
  write_queue_counters totals;
  std::thread thread;

  void run() {
    std::vector<item> batch;
    for (;;) {
      {
        std::unique_lock lock{mutex};
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping and drained
        const std::size_t n = std::min(queue.size(), std::max<std::size_t>(options.max_batch, 1));
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      run_batch(batch);
    }
  }

  void run_batch(std::vector<item>& batch) {
    std::vector<result<void>> outcomes(batch.size());
    std::size_t next = 0;
    while (next < batch.size()) {
      const std::size_t first = next;
      next = run_transaction(batch, first, outcomes);
      notify(batch, outcomes, first, next);
    }
  }

  // Runs items [first, …) in one transaction until the batch ends or the
  // transaction is lost; returns the index after the last item it decided.
  std::size_t run_transaction(std::vector<item>& batch, std::size_t first, std::vector<result<void>>& outcomes) {
    if (auto begun = detail::exec(db.handle(), "BEGIN IMMEDIATE"); !begun) {
      for (std::size_t i = first; i < batch.size(); ++i) outcomes[i] = tl::unexpected(begun.error());
      return batch.size();
    }
    for (std::size_t i = first; i < batch.size(); ++i) {
      outcomes[i] = run_item(batch[i]);
      if (!in_transaction(db)) {
        const error cause = outcomes[i] ? error{"storage_error", "transaction ended by a work item", {}}
                                        : outcomes[i].error();
        for (std::size_t j = first; j <= i; ++j) {
          if (outcomes[j]) outcomes[j] = tl::unexpected(lost_transaction(cause));
        }
        return i + 1;  // the rest gets a fresh transaction
      }
    }
    if (auto committed = detail::exec(db.handle(), "COMMIT"); !committed) {
      // A COMMIT that failed with BUSY leaves the transaction open.
      if (in_transaction(db)) sqlite3_exec(db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
      for (std::size_t i = first; i < batch.size(); ++i) {
        if (outcomes[i]) outcomes[i] = tl::unexpected(committed.error());
      }
      return batch.size();
    }
    std::lock_guard lock{mutex};
    ++totals.batches;
    totals.largest_batch = std::max(totals.largest_batch, batch.size() - first);
    return batch.size();
  }

  // One item inside its own savepoint: its failure undoes only its writes.
  result<void> run_item(item& it) {
    if (auto r = detail::exec(db.handle(), "SAVEPOINT write_queue_item"); !r) return r;
    result<void> outcome;
    try {
      outcome = it.work(db);
    } catch (const std::exception& e) {
      // Work functions report errors as values; an exception (bad_alloc) is
      // still confined to its item rather than taking the writer down.
      outcome = fail("storage_error", std::string{"work item threw: "} + e.what());
    } catch (...) {
      outcome = fail("storage_error", "work item threw");
    }
    if (!in_transaction(db)) return outcome;
    if (outcome) {
      if (auto released = detail::exec(db.handle(), "RELEASE write_queue_item"); released) return outcome;
      else outcome = tl::unexpected(std::move(released.error()));
    }
    sqlite3_exec(db.handle(), "ROLLBACK TO write_queue_item; RELEASE write_queue_item", nullptr, nullptr, nullptr);
    return outcome;
  }

  void notify(std::vector<item>& batch, std::vector<result<void>>& outcomes, std::size_t first, std::size_t end) {
    {
      std::lock_guard lock{mutex};
      for (std::size_t i = first; i < end; ++i) ++(outcomes[i] ? totals.items : totals.failed);
    }
    for (std::size_t i = first; i < end; ++i) {
      if (!batch[i].done) continue;
      try {
        batch[i].done(std::move(outcomes[i]));
      } catch (...) {
        // A throwing callback is the caller's bug; the writer must survive it
        // so that every other caller still hears about its own outcome.
      }
    }
  }
};

write_queue::write_queue(database db, write_queue_options options)
    : impl_(std::make_unique<impl>(std::move(db), options)) {
  impl_->thread = std::thread([this] { impl_->run(); });
}

write_queue::~write_queue() { stop(); }

result<void> write_queue::submit(work_fn work, done_fn done) {
  {
    std::lock_guard lock{impl_->mutex};
    if (impl_->stopping) return fail("storage_stopped", "the writer is shutting down");
    if (impl_->queue.size() >= impl_->options.max_queued) {
      return fail("storage_busy", "the write queue is full (" + std::to_string(impl_->options.max_queued) +
                                      " items waiting); try again shortly");
    }
    impl_->queue.push_back(item{std::move(work), std::move(done)});
  }
  impl_->wake.notify_one();
  return {};
}

void write_queue::stop() {
  {
    std::lock_guard lock{impl_->mutex};
    impl_->stopping = true;
  }
  impl_->wake.notify_one();
  // From a done callback (the writer thread itself) only the flag is set:
  // the thread drains and ends on its own, and the destructor joins it.
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
}

write_queue_counters write_queue::counters() const {
  std::lock_guard lock{impl_->mutex};
  return impl_->totals;
}

}  // namespace webpushd::storage
