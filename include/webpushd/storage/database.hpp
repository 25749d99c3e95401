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

/// @brief One SQLite connection. Move-only; not thread-safe (one per thread).
///
/// Opening sets WAL journaling, `synchronous=FULL` for files (a committed
/// transaction survives power loss, which "ack after commit" relies on),
/// foreign keys, a busy timeout, and applies pending migrations.
class database {
 public:
  /// @brief Opens (creating if needed) the database at `path` and migrates it.
  /// `":memory:"` gives a private in-memory database. Errors: `storage_open_failed`,
  /// `storage_migration_failed`, `storage_too_new` (a newer webpushd wrote it).
  static result<database> open(const std::filesystem::path& path);

  database(database&&) noexcept;
  database& operator=(database&&) noexcept;
  ~database();

  /// @brief Runs SQL without results (DDL, pragmas). Errors: `storage_error`.
  result<void> exec(std::string_view sql);
  /// @brief The schema version after migrations.
  int schema_version() const;
  /// @brief Quick liveness check (`SELECT 1` plus a writable check); for /healthz.
  result<void> check();
  /// @brief The raw handle, for repository implementations inside storage only.
  sqlite3* handle() const noexcept;

 private:
  explicit database(sqlite3* db);
  struct closer {
    void operator()(sqlite3* db) const noexcept;
  };
  std::unique_ptr<sqlite3, closer> db_;
};

/// @brief `BEGIN IMMEDIATE` … `COMMIT`; rolls back unless commit() succeeded.
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
  std::string begin_error_;
};

}  // namespace webpushd::storage
