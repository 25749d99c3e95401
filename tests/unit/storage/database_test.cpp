#include <doctest/doctest.h>
#include <sqlite3.h>

#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/delivery_event_store.hpp"
#include "webpushd/storage/subscription_store.hpp"
#include "../../../src/storage/migrations.hpp"  // the real v1–v6 scripts, to build an old database

using namespace webpushd;
using namespace webpushd::storage;
using webpushd::storage::testing::open_ok;
using webpushd::storage::testing::temp_dir;

using webpushd::storage::testing::scalar;

TEST_CASE("open creates the schema at the latest version") {
  temp_dir dir;
  auto db = open_ok(dir.db_file());
  CHECK(std::filesystem::exists(dir.db_file()));
  CHECK(latest_schema_version() >= 1);
  CHECK(db.schema_version() == latest_schema_version());
  CHECK(scalar(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('subscriptions', 'outbox')") ==
        "2");
  CHECK(scalar(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                   "('outbox_due', 'outbox_inflight', 'outbox_subscription')") == "3");
  // The due index is partial, so it stays small as finished rows pile up.
  CHECK(scalar(db, "SELECT sql FROM sqlite_schema WHERE name = 'outbox_due'").find("WHERE state = 'queued'") !=
        std::string::npos);
}

TEST_CASE("the connection runs in WAL with full sync, foreign keys and a busy timeout") {
  temp_dir dir;
  auto db = open_ok(dir.db_file());
  CHECK(scalar(db, "PRAGMA journal_mode") == "wal");
  CHECK(scalar(db, "PRAGMA synchronous") == "2");  // FULL
  CHECK(scalar(db, "PRAGMA foreign_keys") == "1");
  CHECK(scalar(db, "PRAGMA busy_timeout") == std::to_string(busy_timeout_ms));
  REQUIRE(db.exec("CREATE TABLE t (x INTEGER)"));
  CHECK(std::filesystem::exists(dir.path() / "webpushd.db-wal"));
  // Foreign keys are enforced: an outbox row needs its subscription.
  auto orphan = db.exec(
      "INSERT INTO outbox (subscription_id, payload, ttl_seconds, created_at, next_attempt_at, expires_at) "
      "VALUES (999, x'', 0, 0, 0, 0)");
  REQUIRE_FALSE(orphan);
  CHECK(orphan.error().code == "storage_error");
}

TEST_CASE("reopening is idempotent and keeps the data") {
  temp_dir dir;
  std::int64_t id = 0;
  {
    auto db = open_ok(dir.db_file());
    id = make_sqlite_subscription_store(db)->upsert("https://push.example/a", "p", "a", {}).value();
  }
  for (int i = 0; i < 2; ++i) {
    auto db = open_ok(dir.db_file());
    CHECK(db.schema_version() == latest_schema_version());
    CHECK(scalar(db, "SELECT count(*) FROM subscriptions") == "1");
    auto found = make_sqlite_subscription_store(db)->find(id);
    REQUIRE(found);
    REQUIRE(found->has_value());
    CHECK((*found)->endpoint == "https://push.example/a");
  }
}

TEST_CASE("a database written by a newer webpushd is refused and left untouched") {
  temp_dir dir;
  const int newer = latest_schema_version() + 1;
  {
    auto db = open_ok(dir.db_file());
    REQUIRE(db.exec("PRAGMA user_version = " + std::to_string(newer)));
  }
  auto refused = database::open(dir.db_file());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "storage_too_new");
  CHECK(refused.error().message.find(std::to_string(newer)) != std::string::npos);

  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open_v2(dir.db_file().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  CHECK(sqlite3_column_int(stmt, 0) == newer);
  sqlite3_finalize(stmt);
  sqlite3_close_v2(raw);
}

TEST_CASE("two connections opening a fresh file at once migrate it once") {
  temp_dir dir;
  std::vector<std::string> errors(4);
  std::vector<int> versions(4, -1);
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        auto db = database::open(dir.db_file());
        if (db) {
          versions[i] = db->schema_version();
        } else {
          errors[i] = db.error().code + ": " + db.error().message;
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK_MESSAGE(errors[i].empty(), errors[i]);
    CHECK(versions[i] == latest_schema_version());
  }
}

TEST_CASE("an in-memory database is migrated too") {
  auto db = open_ok(":memory:");
  CHECK(db.schema_version() == latest_schema_version());
  CHECK(db.check());
}

TEST_CASE("opening in a missing directory fails with storage_open_failed") {
  temp_dir dir;
  auto db = database::open(dir.path() / "missing" / "webpushd.db");
  REQUIRE_FALSE(db);
  CHECK(db.error().code == "storage_open_failed");
}

TEST_CASE("transactions roll back unless committed") {
  temp_dir dir;
  auto db = open_ok(dir.db_file());
  REQUIRE(db.exec("CREATE TABLE t (x INTEGER)"));
  {
    transaction tx{db};
    REQUIRE(tx.begun());
    REQUIRE(db.exec("INSERT INTO t VALUES (1)"));
  }
  CHECK(scalar(db, "SELECT count(*) FROM t") == "0");
  {
    transaction tx{db};
    REQUIRE(tx.begun());
    REQUIRE(db.exec("INSERT INTO t VALUES (2)"));
    REQUIRE(tx.commit());
    CHECK_FALSE(tx.commit());  // a second commit is a bug, reported as such
  }
  CHECK(scalar(db, "SELECT count(*) FROM t") == "1");
  CHECK(db.check());
}

TEST_CASE("a failing exec reports storage_error and leaves the connection usable") {
  auto db = open_ok(":memory:");
  auto r = db.exec("THIS IS NOT SQL");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "storage_error");
  CHECK(db.exec("SELECT 1"));
}

TEST_CASE("a write the database refuses as read-only reports storage_read_only, naming the file") {
  // query_only makes SQLite answer SQLITE_READONLY, as a read-only mount does.
  temp_dir dir;
  auto db = open_ok(dir.db_file());
  REQUIRE(db.exec("CREATE TABLE t (x INTEGER)"));
  REQUIRE(db.exec("PRAGMA query_only = 1"));
  auto r = db.exec("INSERT INTO t VALUES (1)");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "storage_read_only");
  CHECK(r.error().message.find(dir.db_file().string()) != std::string::npos);
  CHECK(r.error().message.find("is read-only") != std::string::npos);
  REQUIRE(db.exec("PRAGMA query_only = 0"));
  CHECK(db.exec("INSERT INTO t VALUES (1)"));  // the connection recovers with the condition
}

TEST_CASE("the database moves without closing") {
  temp_dir dir;
  auto a = open_ok(dir.db_file());
  database b = std::move(a);
  CHECK(b.handle() != nullptr);
  CHECK(b.check());
}

TEST_CASE("schema v3 records delivery events once per (delivery, type)") {
  temp_dir dir;
  auto db = open_ok(dir.db_file());
  CHECK(db.schema_version() >= 3);
  auto events = make_sqlite_delivery_event_store(db);
  const auto t = from_unix_millis(1'700'000'000'000);
  CHECK(events->record({"d_1", "clicked", "open", t}).value() == true);
  CHECK(events->record({"d_1", "clicked", "other", t}).value() == false);  // first report wins
  CHECK(events->record({"d_1", "shown", "", t}).value() == true);
  CHECK_FALSE(events->record({"d_1", "bought", "", t}).has_value());        // the schema's CHECK
  const auto got = events->for_delivery("d_1").value();
  REQUIRE(got.size() == 2);
  CHECK(got[0].type == "clicked");
  CHECK(got[0].action == "open");
  CHECK(got[1].action.empty());
}

namespace {

// Writes a database exactly as webpushd left it at schema `version` (every
// migration up to it), then runs `rows` in it.
void make_database_at(int version, const temp_dir& dir, const std::string& rows) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(dir.db_file().c_str(), &raw) == SQLITE_OK);
  std::string script;
  for (const auto& m : detail::migrations()) {
    if (m.version <= version) script += std::string{m.sql} + "\n";
  }
  script += "PRAGMA user_version = " + std::to_string(version) + ";\n" + rows;
  char* err = nullptr;
  const int rc = sqlite3_exec(raw, script.c_str(), nullptr, nullptr, &err);
  INFO((err != nullptr ? err : ""));
  sqlite3_free(err);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
}

// The details of `sql`'s query plan, one line each.
std::string query_plan(database& db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db.handle(), ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::string plan;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    plan += std::string{reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3))} + "\n";
  }
  sqlite3_finalize(stmt);
  return plan;
}

}  // namespace

TEST_CASE("v7 rebuilds a v6 outbox keeping every message, and admits the state 'suppressed'") {
  temp_dir dir;
  // A database exactly as webpushd left it at schema v6, with one message
  // that was claimed (its admission is back-filled) and one still queued.
  make_database_at(6, dir, R"sql(
      INSERT INTO subscriptions (id, endpoint, p256dh, auth, created_at, updated_at)
        VALUES (1, 'https://fcm.googleapis.com/fcm/send/x', 'k', 'a', 1, 1);
      INSERT INTO outbox (id, subscription_id, payload, ttl_seconds, source, state, attempts, created_at,
                          next_attempt_at, expires_at, claimed_at, location, category, journey_id, delivery_id)
        VALUES (7, 1, x'6869', 60, 'scenario:cart/first', 'sent', 1, 100, 100, 60100, 150,
                'https://push.example/m/1', 'cart_reminders', 3, 'd_1'),
               (8, 1, x'6869', 60, 'campaign:c_1', 'queued', 0, 200, 200, 60200, NULL, NULL, NULL, NULL, NULL);
  )sql");
  auto db = open_ok(dir.db_file());
  CHECK(db.schema_version() == latest_schema_version());
  CHECK(scalar(db, "SELECT count(*) FROM outbox") == "2");
  CHECK(scalar(db, "SELECT state || ' ' || location || ' ' || category || ' ' || journey_id || ' ' || delivery_id "
                   "|| ' ' || admitted_at FROM outbox WHERE id = 7") ==
        "sent https://push.example/m/1 cart_reminders 3 d_1 150");
  CHECK(scalar(db, "SELECT state || ' ' || priority || ' ' || (admitted_at IS NULL) FROM outbox WHERE id = 8") ==
        "queued 0 1");
  CHECK(db.exec("UPDATE outbox SET state = 'suppressed' WHERE id = 8").has_value());
  CHECK_FALSE(db.exec("UPDATE outbox SET state = 'held' WHERE id = 8").has_value());
  // v7's six indexes were rebuilt (v9 adds outbox_delivery).
  CHECK(scalar(db, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE type = 'index' "
                   "AND tbl_name = 'outbox' AND name <> 'outbox_delivery' ORDER BY name)") ==
        "outbox_due outbox_inflight outbox_journey outbox_recall outbox_source outbox_subscription");
}

TEST_CASE("v8 keeps v7's counters and messages, with no variant, and counts per variant from then on") {
  temp_dir dir;
  make_database_at(7, dir, R"sql(
      INSERT INTO subscriptions (id, endpoint, p256dh, auth, created_at, updated_at)
        VALUES (1, 'https://fcm.googleapis.com/fcm/send/x', 'k', 'a', 1, 1);
      INSERT INTO outbox (id, subscription_id, payload, ttl_seconds, source, state, created_at, next_attempt_at,
                          expires_at)
        VALUES (7, 1, x'6869', 60, 'scenario:cart/first', 'sent', 100, 100, 60100);
      INSERT INTO pacing_counters (source, step, hour, metric, n) VALUES ('scenario:cart', 'first', 5, 'sent', 3);
      INSERT INTO unsubscribe_attributions (subscription_id, at, kind, source, step, outbox_id, sent_at)
        VALUES (1, 200, 'gone', 'scenario:cart', 'first', 7, 100);
  )sql");
  auto db = open_ok(dir.db_file());
  CHECK(db.schema_version() == latest_schema_version());
  CHECK(scalar(db, "SELECT '[' || variant || ']' FROM outbox WHERE id = 7") == "[]");
  CHECK(scalar(db, "SELECT '[' || variant || ']' FROM unsubscribe_attributions") == "[]");
  CHECK(scalar(db, "SELECT source || ' ' || step || ' [' || variant || '] ' || hour || ' ' || metric || ' ' || n "
                   "FROM pacing_counters") == "scenario:cart first [] 5 sent 3");
  // The variant is part of the key: two variants of one step count apart.
  CHECK(db.exec("INSERT INTO pacing_counters (source, step, variant, hour, metric, n) "
                "VALUES ('scenario:cart', 'first', 'b', 5, 'sent', 1)")
            .has_value());
  CHECK(scalar(db, "SELECT count(*) FROM pacing_counters") == "2");
}

TEST_CASE("v9 finds a v8 message by its delivery id through an index, and adds touches and conversions") {
  temp_dir dir;
  make_database_at(8, dir, R"sql(
      INSERT INTO subscriptions (id, endpoint, p256dh, auth, created_at, updated_at)
        VALUES (1, 'https://fcm.googleapis.com/fcm/send/x', 'k', 'a', 1, 1);
      INSERT INTO outbox (id, subscription_id, payload, ttl_seconds, source, state, created_at, next_attempt_at,
                          expires_at, delivery_id, variant)
        VALUES (7, 1, x'6869', 60, 'scenario:cart/first', 'sent', 100, 100, 60100, 'd_seven', 'b');
  )sql");
  auto db = open_ok(dir.db_file());
  CHECK(db.schema_version() == latest_schema_version());
  CHECK(scalar(db, "SELECT id || ' ' || variant FROM outbox WHERE delivery_id = 'd_seven'") == "7 b");
  // A beacon's lookup uses the index, not a scan of every message sent.
  const auto plan = query_plan(db, "SELECT * FROM outbox WHERE delivery_id = ?1");
  CHECK_MESSAGE(plan.find("INDEX outbox_delivery (delivery_id=?)") != std::string::npos, plan);
  CHECK(db.exec("INSERT INTO tracking_touches (subscription_id, shown_outbox_id, shown_at) VALUES (1, 7, 500)")
            .has_value());
  CHECK(db.exec("INSERT INTO conversions (event_id, kind, subscription_id, outbox_id, source, step, touch_at, "
                "occurred_at, revenue, currency, attributed_at) "
                "VALUES ('o1', 'influenced', 1, 7, 'scenario:cart', 'first', 500, 600, 12900, 'PLN', 700)")
            .has_value());
  CHECK_FALSE(db.exec("INSERT INTO conversions (event_id, kind, subscription_id, outbox_id, source, step, touch_at, "
                      "occurred_at, revenue, currency, attributed_at) "
                      "VALUES ('o2', 'bought', 1, 7, 'scenario:cart', 'first', 500, 600, 1, 'PLN', 700)")
                  .has_value());
}
