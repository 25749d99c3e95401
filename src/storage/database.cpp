#include "webpushd/storage/database.hpp"

#include <cassert>
#include <chrono>
#include <thread>

#include "migrations.hpp"
#include "statement.hpp"

namespace webpushd::storage {
namespace {

result<int> read_user_version(sqlite3* db) {
  auto stmt = detail::statement::prepare(db, "PRAGMA user_version");
  if (!stmt) return tl::unexpected(std::move(stmt.error()));
  auto row = stmt->step();
  if (!row) return tl::unexpected(std::move(row.error()));
  return *row ? static_cast<int>(stmt->column_int(0)) : 0;
}

error too_new(int found) {
  return error{"storage_too_new",
               "the database has schema version " + std::to_string(found) + " but this webpushd knows only up to " +
                   std::to_string(latest_schema_version()) + "; it was written by a newer webpushd",
               {}};
}

error migration_error(int version, const error& cause) {
  return error{"storage_migration_failed", "migration " + std::to_string(version) + ": " + cause.message, {}};
}

// Applies each pending migration in its own IMMEDIATE transaction. The
// version is re-read under the write lock, so a second process opening the
// same fresh file waits and then finds the work done.
result<void> migrate(database& db) {
  const int latest = latest_schema_version();
  auto before = read_user_version(db.handle());
  if (before && *before == latest) return {};  // the common case: no write lock needed
  for (const auto& m : detail::migrations()) {
    transaction tx{db};
    if (auto begun = tx.begun(); !begun) return tl::unexpected(migration_error(m.version, begun.error()));
    auto current = read_user_version(db.handle());
    if (!current) return tl::unexpected(migration_error(m.version, current.error()));
    if (*current > latest) return tl::unexpected(too_new(*current));
    if (*current >= m.version) continue;  // the scope rolls back an empty transaction
    if (auto r = detail::exec(db.handle(), m.sql); !r) return tl::unexpected(migration_error(m.version, r.error()));
    if (auto r = detail::exec(db.handle(), "PRAGMA user_version = " + std::to_string(m.version)); !r) {
      return tl::unexpected(migration_error(m.version, r.error()));
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(migration_error(m.version, r.error()));
  }
  return {};
}

result<std::string> query_text(sqlite3* db, std::string_view sql) {
  auto stmt = detail::statement::prepare(db, sql);
  if (!stmt) return tl::unexpected(std::move(stmt.error()));
  auto row = stmt->step();
  if (!row) return tl::unexpected(std::move(row.error()));
  return *row ? stmt->column_text(0) : std::string{};
}

error open_error(const std::string& name, const error& cause) {
  return error{"storage_open_failed", "cannot open database " + name + ": " + cause.message, {}};
}

}  // namespace

int latest_schema_version() noexcept {
  const auto all = detail::migrations();
  return all.empty() ? 0 : all.back().version;
}

void database::closer::operator()(sqlite3* db) const noexcept {
  // close_v2 defers the real close until any statement still alive is
  // finalized, so a late statement destructor can never touch freed memory.
  sqlite3_close_v2(db);
}

database::database(sqlite3* db) : db_(db), statements_(std::make_shared<detail::statement_cache>()) {}

detail::statement_cache& database::statements() noexcept { return *statements_; }
database::database(database&&) noexcept = default;
database& database::operator=(database&&) noexcept = default;
database::~database() = default;

result<database> database::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const bool in_memory = name.empty() || name == ":memory:";
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  const int rc = sqlite3_open_v2(in_memory ? ":memory:" : name.c_str(), &raw, flags, nullptr);
  database db{raw};  // owns the handle even when opening failed
  if (rc != SQLITE_OK) return tl::unexpected(open_error(name, detail::sqlite_error(raw, rc, "open")));

  // Versions from migrations[i] are assumed to be i + 1 (see migrations.cpp).
  for (std::size_t i = 0; i < detail::migrations().size(); ++i) {
    assert(detail::migrations()[i].version == static_cast<int>(i) + 1);
  }

  sqlite3_busy_timeout(raw, busy_timeout_ms);
  // Refuse a newer schema before touching anything: even switching the
  // journal mode is a write a newer webpushd might not expect.
  auto version = read_user_version(raw);
  if (!version) return tl::unexpected(open_error(name, version.error()));
  if (*version > latest_schema_version()) return tl::unexpected(too_new(*version));

  // Switching a fresh file to WAL while another connection does the same
  // can answer SQLITE_BUSY at once, without calling the busy handler: retry
  // for as long as the busy timeout would have waited.
  auto mode = query_text(raw, "PRAGMA journal_mode = WAL");
  for (int waited = 0; !mode && mode.error().code == "storage_busy" && waited < busy_timeout_ms; waited += 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
    mode = query_text(raw, "PRAGMA journal_mode = WAL");
  }
  if (!mode) return tl::unexpected(open_error(name, mode.error()));
  // An in-memory database answers "memory"; a file that cannot do WAL (e.g.
  // on a network file system) must not silently run in another mode.
  if (!in_memory && *mode != "wal") {
    return fail("storage_open_failed", "cannot open database " + name + ": WAL journal mode unavailable (got " +
                                           *mode + ")");
  }
  // FULL syncs the WAL on every commit: "ack after commit" means a
  // committed transaction survives power loss, not only a process crash.
  if (auto r = detail::exec(raw, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON"); !r) {
    return tl::unexpected(open_error(name, r.error()));
  }
  if (auto r = migrate(db); !r) return tl::unexpected(std::move(r.error()));
  return db;
}

result<void> database::exec(std::string_view sql) { return detail::exec(db_.get(), sql); }

int database::schema_version() const {
  auto version = read_user_version(db_.get());
  return version ? *version : -1;
}

result<void> database::check() {
  auto one = query_text(db_.get(), "SELECT 1");
  if (!one) return tl::unexpected(std::move(one.error()));
  if (sqlite3_db_readonly(db_.get(), "main") == 1) return fail("storage_error", "the database is read-only");
  // Taking (and releasing) the write lock shows a writer could commit now.
  transaction tx{*this};
  return tx.begun();
}

sqlite3* database::handle() const noexcept { return db_.get(); }

transaction::transaction(database& db) : db_(db) {
  // Inside a transaction someone else opened (a write_queue batch), nest as a
  // savepoint: a store's method then stays atomic on its own and can still be
  // one step of a larger group commit.
  nested_ = sqlite3_get_autocommit(db_.handle()) == 0;
  if (auto r = detail::exec(db_.handle(), nested_ ? "SAVEPOINT webpushd_tx" : "BEGIN IMMEDIATE"); r) {
    active_ = true;
  } else {
    begin_error_ = std::move(r.error());
  }
}

transaction::~transaction() {
  // Some failures (e.g. SQLITE_FULL) already rolled back; only roll back a
  // transaction SQLite still considers open.
  if (active_ && sqlite3_get_autocommit(db_.handle()) == 0) {
    // A savepoint is rolled back and then released: ROLLBACK TO alone would
    // leave it on the stack, and the outer transaction must go on.
    sqlite3_exec(db_.handle(), nested_ ? "ROLLBACK TO webpushd_tx; RELEASE webpushd_tx" : "ROLLBACK", nullptr,
                 nullptr, nullptr);
  }
}

result<void> transaction::begun() const {
  if (begin_error_.code.empty()) return {};
  return fail(begin_error_.code, "cannot begin transaction: " + begin_error_.message);
}

result<void> transaction::commit() {
  if (!active_) {
    if (!begin_error_.code.empty()) return begun();
    return fail("storage_error", "transaction already committed");
  }
  auto r = detail::exec(db_.handle(), nested_ ? "RELEASE webpushd_tx" : "COMMIT");
  if (!r) return r;  // still active: the destructor rolls back
  active_ = false;
  return {};
}

}  // namespace webpushd::storage
