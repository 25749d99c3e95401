#include "statement.hpp"

#include "webpushd/storage/database.hpp"

#include <cassert>
#include <cctype>

namespace webpushd::storage::detail {

error sqlite_error(sqlite3* db, int rc, std::string_view what) {
  const int primary = rc & 0xff;
  // sqlite3_errmsg describes the most recent failure on the connection; fall
  // back to the generic text when there is no connection (open failures).
  std::string message{what};
  message += ": ";
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    return error{"storage_busy", std::move(message), {}};
  }
  // A full disk, a read-only mount and I/O errors are the operator's to fix,
  // not bugs: each gets its own code (the API answers 503 + Retry-After) and
  // a message that names the file, so the log says what and where.
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  const std::string where = file != nullptr && *file != '\0' ? file : "the database";
  if (primary == SQLITE_FULL) {
    return error{"storage_full", message + " (" + where + ": no space left on its file system)", {}};
  }
  if (primary == SQLITE_READONLY) {
    return error{"storage_read_only", message + " (" + where + " is read-only: check the data folder's mount and permissions)", {}};
  }
  if (primary == SQLITE_IOERR) return error{"storage_io_error", message + " (" + where + ")", {}};
  return error{"storage_error", std::move(message), {}};
}

result<void> exec(sqlite3* db, std::string_view sql) {
  const std::string text{sql};  // sqlite3_exec needs a terminated string
  char* raw_message = nullptr;
  const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &raw_message);
  // The message is owned by SQLite's allocator; free it on every path.
  const std::unique_ptr<char, decltype(&sqlite3_free)> message{raw_message, &sqlite3_free};
  if (rc != SQLITE_OK) return tl::unexpected(sqlite_error(db, rc, "SQL failed"));
  return {};
}

result<statement> statement::prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), 0, &raw, &tail);
  statement stmt{raw};
  if (rc != SQLITE_OK) return tl::unexpected(sqlite_error(db, rc, "prepare failed"));
  if (raw == nullptr) return fail("storage_error", "prepare failed: empty SQL");
  // A second statement after the first would be silently ignored; that is
  // always a bug in our own SQL, never an input problem.
  for (const char* p = tail; p != nullptr && p < sql.data() + sql.size(); ++p) {
    assert(std::isspace(static_cast<unsigned char>(*p)) || *p == ';');
  }
  return stmt;
}

statement_cache::~statement_cache() {
  for (auto& [sql, stmt] : idle) sqlite3_finalize(stmt);
}

void statement_finalizer::operator()(sqlite3_stmt* stmt) const noexcept {
  if (stmt == nullptr) return;
  if (cache == nullptr) {
    sqlite3_finalize(stmt);
    return;
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  try {
    cache->idle.emplace(sql, stmt);
  } catch (...) {
    sqlite3_finalize(stmt);  // out of memory: just do not keep it
  }
}

result<statement> statement::prepare_cached(database& db, std::string_view sql) {
  auto& cache = db.statements();
  std::string key{sql};
  sqlite3_stmt* idle = nullptr;
  if (const auto it = cache.idle.find(key); it != cache.idle.end()) {
    idle = it->second;
    cache.idle.erase(it);
  }
  if (idle != nullptr) return statement{idle, finalizer{&cache, std::move(key)}};
  auto fresh = prepare(db.handle(), sql);
  if (!fresh) return fresh;
  return statement{fresh->stmt_.release(), finalizer{&cache, std::move(key)}};
}

statement& statement::check_bind(int rc, int index) {
  if (rc != SQLITE_OK && !bind_error_) {
    bind_error_ = sqlite_error(sqlite3_db_handle(stmt_.get()), rc, "bind ?" + std::to_string(index) + " failed");
  }
  return *this;
}

statement& statement::bind_int(int index, std::int64_t value) {
  return check_bind(sqlite3_bind_int64(stmt_.get(), index, value), index);
}

statement& statement::bind_int(int index, std::optional<std::int64_t> value) {
  return value ? bind_int(index, *value) : bind_null(index);
}

statement& statement::bind_text(int index, std::string_view value) {
  return check_bind(sqlite3_bind_text64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
                    index);
}

statement& statement::bind_text_or_null(int index, std::string_view value) {
  return value.empty() ? bind_null(index) : bind_text(index, value);
}

statement& statement::bind_real(int index, std::optional<double> value) {
  return value ? check_bind(sqlite3_bind_double(stmt_.get(), index, *value), index) : bind_null(index);
}

statement& statement::bind_blob(int index, byte_view value) {
  // sqlite3_bind_blob with a null pointer binds NULL; an empty payload is a
  // valid (zero-length) message, so bind a zero-length blob explicitly.
  if (value.empty()) return check_bind(sqlite3_bind_zeroblob(stmt_.get(), index, 0), index);
  return check_bind(sqlite3_bind_blob64(stmt_.get(), index, value.data(), value.size(), SQLITE_TRANSIENT), index);
}

statement& statement::bind_null(int index) { return check_bind(sqlite3_bind_null(stmt_.get(), index), index); }

result<bool> statement::step() {
  if (bind_error_) return tl::unexpected(*bind_error_);
  const int rc = sqlite3_step(stmt_.get());
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return tl::unexpected(sqlite_error(sqlite3_db_handle(stmt_.get()), rc, "statement failed"));
}

result<void> statement::run() {
  for (;;) {
    auto row = step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return {};
  }
}

void statement::reset() noexcept {
  sqlite3_reset(stmt_.get());
  sqlite3_clear_bindings(stmt_.get());
  bind_error_.reset();
}

std::int64_t statement::column_int(int col) const noexcept { return sqlite3_column_int64(stmt_.get(), col); }

std::optional<std::int64_t> statement::column_optional_int(int col) const noexcept {
  if (column_is_null(col)) return std::nullopt;
  return column_int(col);
}

std::optional<double> statement::column_optional_real(int col) const noexcept {
  if (column_is_null(col)) return std::nullopt;
  return sqlite3_column_double(stmt_.get(), col);
}

std::string statement::column_text(int col) const {
  const unsigned char* text = sqlite3_column_text(stmt_.get(), col);
  if (text == nullptr) return {};
  // column_bytes must come after column_text (which may convert the value).
  const int size = sqlite3_column_bytes(stmt_.get(), col);
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

bytes statement::column_blob(int col) const {
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_.get(), col));
  const int size = sqlite3_column_bytes(stmt_.get(), col);
  if (data == nullptr || size <= 0) return {};
  return bytes(data, data + size);
}

bool statement::column_is_null(int col) const noexcept {
  return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL;
}

std::int64_t statement::changes() const noexcept { return sqlite3_changes64(sqlite3_db_handle(stmt_.get())); }

result<std::optional<time_point>> optional_time(statement& query) {
  auto row = query.step();
  if (!row) return tl::unexpected(std::move(row.error()));
  if (!*row || query.column_is_null(0)) return std::optional<time_point>{};
  return std::optional<time_point>{from_unix_millis(query.column_int(0))};
}

}  // namespace webpushd::storage::detail
