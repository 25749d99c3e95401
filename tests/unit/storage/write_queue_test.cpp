#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/subscription_store.hpp"
#include "webpushd/storage/write_queue.hpp"

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::open_ok;
using webpushd::storage::testing::temp_dir;

namespace {

std::int64_t count_rows(database& db, const std::string& sql) {
  return std::stoll(webpushd::storage::testing::scalar(db, sql));
}

write_queue::work_fn insert(int x, bool then_fail = false) {
  return [x, then_fail](database& db) -> result<void> {
    if (auto r = db.exec("INSERT INTO t VALUES (" + std::to_string(x) + ")"); !r) return r;
    if (then_fail) return fail("test_failure", "item " + std::to_string(x) + " fails after writing");
    return {};
  };
}

// A database with table t, and a queue on its own connection.
struct fixture {
  temp_dir dir;
  database reader = [this] {
    auto db = open_ok(dir.db_file());
    REQUIRE(db.exec("CREATE TABLE t (x INTEGER)"));
    return db;
  }();
  std::atomic<int> commits{0};
};

int on_commit(void* n) {
  ++*static_cast<std::atomic<int>*>(n);
  return 0;
}

// A first work item that installs the commit counter and then holds the
// writer until `release` is counted down, so that later items pile up.
// Submits it and waits until it runs (so it is a batch of its own).
void hold(write_queue& queue, std::atomic<int>& commits, std::latch& release) {
  auto started = std::make_shared<std::latch>(1);
  REQUIRE(queue.submit(
      [&commits, &release, started](database& db) -> result<void> {
        sqlite3_commit_hook(db.handle(), on_commit, &commits);
        started->count_down();
        release.wait();
        return {};
      },
      nullptr));
  started->wait();
}

}  // namespace

TEST_CASE_FIXTURE(fixture, "items queued together commit in one transaction, callbacks after the commit") {
  write_queue queue{open_ok(dir.db_file())};
  std::latch release{1};
  hold(queue, commits, release);
  std::mutex m;
  std::vector<int> commits_seen;  // commit count observed by each callback
  std::vector<std::int64_t> rows_seen;
  constexpr int n = 200;
  std::latch all_done{n};
  for (int i = 0; i < n; ++i) {
    REQUIRE(queue.submit(insert(i), [&, i](result<void> r) {
      CHECK(r.has_value());
      // Durable before the callback: another connection already sees it.
      auto other = open_ok(dir.db_file());
      const auto rows = count_rows(other, "SELECT count(*) FROM t WHERE x = " + std::to_string(i));
      std::lock_guard lock{m};
      commits_seen.push_back(commits.load());
      rows_seen.push_back(rows);
      all_done.count_down();
    }));
  }
  release.count_down();
  all_done.wait();
  queue.stop();
  // The holding item commits alone; the 200 behind it share one commit.
  CHECK(commits.load() == 2);
  CHECK(queue.counters().batches == 2);
  CHECK(queue.counters().largest_batch == n);
  for (int c : commits_seen) CHECK(c == 2);
  for (auto rows : rows_seen) CHECK(rows == 1);
  CHECK(count_rows(reader, "SELECT count(*) FROM t") == n);
}

TEST_CASE_FIXTURE(fixture, "a failing item rolls back only itself; the rest of its batch commits") {
  write_queue queue{open_ok(dir.db_file())};
  std::latch release{1};
  hold(queue, commits, release);
  std::vector<std::promise<result<void>>> outcomes(5);
  for (int i = 0; i < 5; ++i) {
    REQUIRE(queue.submit(insert(i, i == 2), [&outcomes, i](result<void> r) { outcomes[i].set_value(std::move(r)); }));
  }
  release.count_down();
  for (int i = 0; i < 5; ++i) {
    const auto r = outcomes[i].get_future().get();
    if (i == 2) {
      REQUIRE_FALSE(r);
      CHECK(r.error().code == "test_failure");
    } else {
      CHECK(r.has_value());
    }
  }
  queue.stop();
  CHECK(commits.load() == 2);
  CHECK(count_rows(reader, "SELECT count(*) FROM t") == 4);
  CHECK(count_rows(reader, "SELECT count(*) FROM t WHERE x = 2") == 0);
  CHECK(queue.counters().failed == 1);
}

TEST_CASE_FIXTURE(fixture, "a store's own transaction nests inside a work item") {
  write_queue queue{open_ok(dir.db_file())};
  std::promise<result<std::int64_t>> done;
  REQUIRE(queue.submit_value<std::int64_t>(
      [](database& db) -> result<std::int64_t> {
        return make_sqlite_subscription_store(db)->upsert("https://push.example/a", "p", "a", {});
      },
      [&](result<std::int64_t> r) { done.set_value(std::move(r)); }));
  const auto id = done.get_future().get();
  REQUIRE(id);
  CHECK(*id > 0);
  CHECK(count_rows(reader, "SELECT count(*) FROM subscriptions") == 1);

  // A store call that fails inside an item rolls back its savepoint; the
  // value-returning form reports the error.
  std::promise<result<std::int64_t>> refused;
  REQUIRE(queue.submit_value<std::int64_t>(
      [](database& db) { return make_sqlite_subscription_store(db)->upsert("", "p", "a", {}); },
      [&](result<std::int64_t> r) { refused.set_value(std::move(r)); }));
  const auto r = refused.get_future().get();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid_subscription");
}

TEST_CASE_FIXTURE(fixture, "a full queue refuses at once with storage_busy; stop drains and then refuses") {
  write_queue_options options;
  options.max_queued = 3;
  write_queue queue{open_ok(dir.db_file()), options};
  std::latch release{1};
  std::latch started{1};
  REQUIRE(queue.submit(
      [&](database&) -> result<void> {
        started.count_down();
        release.wait();
        return {};
      },
      nullptr));
  started.wait();  // the holder is running, so the queue itself is empty
  std::atomic<int> done{0};
  for (int i = 0; i < 3; ++i) REQUIRE(queue.submit(insert(i), [&](result<void> r) { done += r ? 1 : 0; }));
  const auto full = queue.submit(insert(99), nullptr);
  REQUIRE_FALSE(full);
  CHECK(full.error().code == "storage_busy");
  release.count_down();
  queue.stop();
  CHECK(done.load() == 3);
  CHECK(count_rows(reader, "SELECT count(*) FROM t") == 3);
  const auto stopped = queue.submit(insert(100), nullptr);
  REQUIRE_FALSE(stopped);
  CHECK(stopped.error().code == "storage_stopped");
}

TEST_CASE_FIXTURE(fixture, "a failed COMMIT fails every item of the batch") {
  write_queue queue{open_ok(dir.db_file())};
  std::latch release{1};
  // A deferred foreign key violation is detected only at COMMIT.
  REQUIRE(reader.exec("CREATE TABLE parent (id INTEGER PRIMARY KEY); "
                      "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"));
  hold(queue, commits, release);
  std::promise<result<void>> good;
  std::promise<result<void>> bad;
  REQUIRE(queue.submit(insert(1), [&](result<void> r) { good.set_value(std::move(r)); }));
  REQUIRE(queue.submit([](database& db) { return db.exec("INSERT INTO child VALUES (42)"); },
                       [&](result<void> r) { bad.set_value(std::move(r)); }));
  release.count_down();
  CHECK_FALSE(good.get_future().get());
  CHECK_FALSE(bad.get_future().get());
  queue.stop();
  CHECK(count_rows(reader, "SELECT count(*) FROM t") == 0);
  CHECK(count_rows(reader, "SELECT count(*) FROM child") == 0);
}

TEST_CASE_FIXTURE(fixture, "many threads submitting at once: every item committed, fewer commits than items") {
  write_queue queue{open_ok(dir.db_file())};
  constexpr int threads = 8;
  constexpr int per_thread = 100;
  std::latch all_done{threads * per_thread};
  std::atomic<int> ok{0};
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          REQUIRE(queue.submit(insert(t * per_thread + i), [&](result<void> r) {
            ok += r ? 1 : 0;
            all_done.count_down();
          }));
        }
      });
    }
  }
  all_done.wait();
  queue.stop();
  CHECK(ok.load() == threads * per_thread);
  CHECK(count_rows(reader, "SELECT count(DISTINCT x) FROM t") == threads * per_thread);
  MESSAGE("batches: " << queue.counters().batches << " for " << threads * per_thread << " items");
  CHECK(queue.counters().batches <= static_cast<std::uint64_t>(threads * per_thread));
}
