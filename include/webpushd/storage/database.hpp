#pragma once
/// @file
/// @brief The SQLite connection: one RAII owner per `sqlite3*`, WAL mode,
/// schema migrations, and transaction scopes.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "webpushd/core/error.hpp"

struct sqlite3;  // kept out of public headers: only storage sees sqlite3.h

namespace webpushd::storage {

/// @brief The database file's name inside the daemon's data directory
/// (`<data-dir>/webpushd.db`); the daemon and webpushctl both use it.
inline constexpr std::string_view default_database_file = "webpushd.db";

/// @brief How long a connection waits for another writer's lock before
/// reporting `storage_busy`.
inline constexpr int busy_timeout_ms = 5000;

/// @brief The schema version this build migrates to (the number of migrations).
int latest_schema_version() noexcept;

/// @brief One SQLite connection. Move-only; not thread-safe (one per thread).
///
/// Opening sets WAL journaling, `synchronous=FULL` for files (a committed
/// transaction survives power loss, which "ack after commit" relies on),
/// foreign keys, a busy timeout, and applies pending migrations.
namespace detail {
struct statement_cache;
}

class database {
 public:
  /// @brief Opens (creating if needed) the database at `path` and migrates it.
  /// `":memory:"` gives a private in-memory database. Errors: `storage_open_failed`,
  /// `storage_migration_failed`, `storage_too_new` (a newer webpushd wrote it).
  /// Each pending migration runs in its own `BEGIN IMMEDIATE` transaction and
  /// re-reads the version inside it, so two processes opening a fresh file at
  /// once migrate it exactly once.
  static result<database> open(const std::filesystem::path& path);

  database(database&&) noexcept;
  database& operator=(database&&) noexcept;
  ~database();

  /// @brief Runs SQL without results (DDL, pragmas); several statements may be
  /// separated by ';'. Errors: `storage_busy` (lock not obtained within
  /// busy_timeout_ms), `storage_error`.
  result<void> exec(std::string_view sql);
  /// @brief The schema version after migrations.
  int schema_version() const;
  /// @brief Quick liveness check (`SELECT 1` plus a writable check); for /healthz.
  result<void> check();
  /// @brief The raw handle, for repository implementations inside storage only.
  /// Repositories keep a reference to this object: don't move or destroy a
  /// database while stores made from it are in use.
  sqlite3* handle() const noexcept;
  /// @brief Prepared statements kept for reuse on this connection
  /// (detail::statement::prepare_cached), for repositories inside storage only.
  detail::statement_cache& statements() noexcept;

 private:
  explicit database(sqlite3* db);
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  std::unique_ptr<sqlite3, closer> db_;
  // Declared after db_: destroyed (statements finalized) before the close.
  std::shared_ptr<detail::statement_cache> statements_;
};

/// @brief `BEGIN IMMEDIATE` … `COMMIT`; rolls back unless commit() succeeded.
///
/// IMMEDIATE takes the write lock at BEGIN (waiting up to busy_timeout_ms),
/// so a read-then-write inside the scope always sees the latest commit and
/// never fails half-way with a busy snapshot.
///
/// Opened while the connection is already inside a transaction (a
/// write_queue batch), the scope is a `SAVEPOINT` instead: commit() releases
/// it into the outer transaction (durable only when that one commits) and
/// the destructor rolls back just this scope's changes.
class transaction {
 public:
  explicit transaction(database& db);
  ~transaction();
  transaction(const transaction&) = delete;
  transaction& operator=(const transaction&) = delete;
  /// @brief Whether BEGIN succeeded; check before doing work.
  result<void> begun() const;
  /// @brief Commits. Errors: `storage_error` (then the destructor rolls back).
  result<void> commit();

 private:
  database& db_;
  bool active_ = false;
  bool nested_ = false;  ///< a savepoint inside someone else's transaction
  error begin_error_;  ///< why BEGIN failed, when it did
};

}  // namespace webpushd::storage
