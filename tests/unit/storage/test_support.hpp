#pragma once
// Shared by the storage tests: a fresh directory per test under the system
// temp dir, removed afterwards, so tests run against real SQLite files (WAL,
// fsync, locking) in isolation; and opening a database that must open.

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "webpushd/core/clock.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/subscription_store.hpp"

namespace webpushd::storage::testing {

/// @brief Creates a uniquely named directory; removes it with its contents.
class temp_dir {
 public:
  temp_dir() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            ("webpushd-storage-test-" + std::to_string(::getpid()) + "-" + std::to_string(stamp) + "-" +
             std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ignored;  // cleanup must not throw from a destructor
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// @brief The directory.
  const std::filesystem::path& path() const { return path_; }
  /// @brief The database file inside it, named as the daemon names it.
  std::filesystem::path db_file() const { return path_ / default_database_file; }

 private:
  std::filesystem::path path_;
};

/// @brief Opens (and migrates) a database the test needs; fails the test otherwise.
inline database open_ok(const std::filesystem::path& path) {
  auto db = database::open(path);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().code + ": " + db.error().message));
  return std::move(*db);
}

/// @brief Reads one value through the raw handle (tests only; the module
/// has its own); empty for NULL or no row.
inline std::string scalar(database& db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db.handle(), sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
  std::string value;
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  return value;
}

/// @brief One test's world: a real database file, both stores on one
/// connection, and a manual clock. Test fixtures derive from it.
struct stores {
  temp_dir dir;
  database db = open_ok(dir.db_file());
  std::unique_ptr<outbox_store> outbox = make_sqlite_outbox_store(db);
  std::unique_ptr<subscription_store> subs = make_sqlite_subscription_store(db);
  manual_clock clock;
};

}  // namespace webpushd::storage::testing
