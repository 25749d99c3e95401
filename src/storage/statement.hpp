#pragma once
// Internal to the storage module: prepared statements with one RAII owner
// each, and the mapping of SQLite result codes to error values. This is the
// only header that includes sqlite3.h, and it is not installed.

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {
class database;
}

namespace webpushd::storage::detail {

/// @brief An error value for a failed SQLite call: `storage_busy` when the
/// lock could not be had in time (worth retrying), `storage_error` otherwise.
error sqlite_error(sqlite3* db, int rc, std::string_view what);

/// @brief Runs SQL without results (one or more statements).
result<void> exec(sqlite3* db, std::string_view sql);

/// @brief Idle prepared statements of one connection, by SQL text. Preparing
/// is most of the cost of a small statement (the parser and planner run
/// each time), and stores run the same few statements again and again.
///
/// Not locked, like the connection it belongs to: connections are opened
/// NOMUTEX and used by one thread at a time (database.hpp).
struct statement_cache {
  std::unordered_multimap<std::string, sqlite3_stmt*> idle;
  statement_cache() = default;
  statement_cache(const statement_cache&) = delete;
  statement_cache& operator=(const statement_cache&) = delete;
  ~statement_cache();
};

/// @brief How a statement ends: finalized, or (cached) reset and returned
/// to its connection's cache.
struct statement_finalizer {
  statement_cache* cache = nullptr;  ///< set: return the statement there instead of finalizing it
  std::string sql;
  void operator()(sqlite3_stmt* stmt) const noexcept;
};

/// @brief One prepared statement. Move-only.
///
/// Text and blobs are always bound with SQLITE_TRANSIENT (SQLite copies
/// them), so no bind can outlive its source. A failed bind is remembered and
/// reported by the next step(), which keeps call sites linear.
class statement {
 public:
  /// @brief Prepares exactly one statement.
  static result<statement> prepare(sqlite3* db, std::string_view sql);
  /// @brief The same, reusing an idle statement of `db` with the same SQL;
  /// when this object goes, the statement is reset and goes back to the
  /// cache instead of being finalized. Each call gets its own statement (a
  /// cached one is never shared by two live objects).
  static result<statement> prepare_cached(database& db, std::string_view sql);

  /// @brief Binds parameter `index` (1-based) to an integer.
  statement& bind_int(int index, std::int64_t value);
  /// @brief Binds an integer, or NULL when empty.
  statement& bind_int(int index, std::optional<std::int64_t> value);
  /// @brief Binds a copy of the text.
  statement& bind_text(int index, std::string_view value);
  /// @brief Binds a copy of the text, or NULL when it is empty.
  statement& bind_text_or_null(int index, std::string_view value);
  /// @brief Binds a copy of the bytes (an empty blob, not NULL, when empty).
  statement& bind_blob(int index, byte_view value);
  /// @brief Binds a floating-point number, or NULL when empty.
  statement& bind_real(int index, std::optional<double> value);
  /// @brief Binds NULL.
  statement& bind_null(int index);

  /// @brief Advances: true when a row is available, false when done.
  result<bool> step();
  /// @brief Steps to completion, ignoring rows (for INSERT/UPDATE/DELETE).
  result<void> run();
  /// @brief Makes the statement reusable: resets it and clears the bindings.
  void reset() noexcept;

  /// @brief Column accessors for the current row (0-based).
  std::int64_t column_int(int col) const noexcept;
  std::optional<std::int64_t> column_optional_int(int col) const noexcept;
  std::optional<double> column_optional_real(int col) const noexcept;
  std::string column_text(int col) const;
  bytes column_blob(int col) const;
  bool column_is_null(int col) const noexcept;

  /// @brief Rows changed by the last completed INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const noexcept;

 private:
  using finalizer = statement_finalizer;
  explicit statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  statement(sqlite3_stmt* stmt, finalizer f) : stmt_(stmt, std::move(f)) {}
  statement& check_bind(int rc, int index);

  std::unique_ptr<sqlite3_stmt, finalizer> stmt_;
  std::optional<error> bind_error_;
};

/// @brief Steps `st` to the end, reading each row with `read(st)`.
template <class T, class Read>
result<std::vector<T>> collect_rows(statement& st, Read read) {
  std::vector<T> out;
  while (true) {
    auto row = st.step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return out;
    out.push_back(read(st));
  }
}

/// @brief The value of an enum stored as text: `names` lists the text forms
/// in the order of the enum's values. nullopt for any other text.
template <class Enum, std::size_t N>
std::optional<Enum> enum_named(const std::array<const char*, N>& names, std::string_view text) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (text == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

/// @brief Steps `query` once and reads its first column as a time in Unix
/// milliseconds: the `SELECT min(…)` behind a store's next_due(). nullopt
/// for no row or NULL (nothing waiting).
result<std::optional<time_point>> optional_time(statement& query);

}  // namespace webpushd::storage::detail
