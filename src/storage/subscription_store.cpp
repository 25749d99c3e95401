#include "webpushd/storage/subscription_store.hpp"

#include "statement.hpp"
#include "subscription_gone.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"

namespace webpushd::storage {
namespace detail {

result<bool> mark_subscription_gone(sqlite3* db, std::int64_t id, std::string_view reason, std::int64_t now_ms) {
  // Only an active subscription changes: a gone one keeps its first gone_at
  // and reason, and an erased one must stay erased.
  auto mark = statement::prepare(db, R"sql(
      UPDATE subscriptions SET state = 'gone', gone_at = ?2, gone_reason = ?3, updated_at = ?2
      WHERE id = ?1 AND state = 'active')sql");
  if (!mark) return tl::unexpected(std::move(mark.error()));
  if (auto r = mark->bind_int(1, id).bind_int(2, now_ms).bind_text(3, reason).run(); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  if (mark->changes() == 0) {
    auto exists = statement::prepare(db, "SELECT 1 FROM subscriptions WHERE id = ?1");
    if (!exists) return tl::unexpected(std::move(exists.error()));
    auto row = exists->bind_int(1, id).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return false;
  }
  // Queued messages can never be delivered now; finishing them here (not
  // lazily at claim time) keeps counts and the CLI truthful.
  auto finish = statement::prepare(db, R"sql(
      UPDATE outbox SET state = 'gone', finished_at = ?2, last_reason = ?3
      WHERE subscription_id = ?1 AND state = 'queued')sql");
  if (!finish) return tl::unexpected(std::move(finish.error()));
  if (auto r = finish->bind_int(1, id).bind_int(2, now_ms).bind_text(3, subscription_gone_reason).run(); !r) {
    return tl::unexpected(std::move(r.error()));
  }
  return true;
}

std::optional<subscription_state> parse_subscription_state(std::string_view text) noexcept {
  if (text == "active") return subscription_state::active;
  if (text == "gone") return subscription_state::gone;
  if (text == "erased") return subscription_state::erased;
  return std::nullopt;
}

}  // namespace detail

namespace {

class sqlite_subscription_store final : public subscription_store {
 public:
  explicit sqlite_subscription_store(database& db) : db_(db) {}

  result<std::int64_t> upsert(const std::string& endpoint, const std::string& p256dh, const std::string& auth,
                              time_point now) override {
    if (endpoint.empty()) return fail("invalid_subscription", "the endpoint is empty", "endpoint");
    if (p256dh.empty()) return fail("invalid_subscription", "keys.p256dh is empty", "keys.p256dh");
    if (auth.empty()) return fail("invalid_subscription", "keys.auth is empty", "keys.auth");
    // One statement, so atomic without an explicit transaction; the id of
    // an existing row is kept because the row is updated, not replaced.
    auto stmt = detail::statement::prepare(db_.handle(), R"sql(
        INSERT INTO subscriptions (endpoint, p256dh, auth, state, created_at, updated_at)
        VALUES (?1, ?2, ?3, 'active', ?4, ?4)
        ON CONFLICT (endpoint) DO UPDATE SET
          p256dh = excluded.p256dh, auth = excluded.auth, state = 'active',
          updated_at = excluded.updated_at, gone_at = NULL, gone_reason = NULL
        RETURNING id)sql");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->bind_text(1, endpoint).bind_text(2, p256dh).bind_text(3, auth).bind_int(4, unix_millis(now)).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return fail("storage_error", "upsert returned no id");
    const std::int64_t id = stmt->column_int(0);
    // RETURNING rows are produced before the change is final; finish the
    // statement so its write is complete before reporting success.
    if (auto r = stmt->run(); !r) return tl::unexpected(std::move(r.error()));
    return id;
  }

  result<std::optional<subscription_record>> find(std::int64_t id) override {
    auto stmt = detail::statement::prepare(db_.handle(), R"sql(
        SELECT id, endpoint, p256dh, auth, state, created_at, updated_at, gone_at, gone_reason
        FROM subscriptions WHERE id = ?1)sql");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->bind_int(1, id).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::optional<subscription_record>{};
    subscription_record rec;
    rec.id = stmt->column_int(0);
    rec.endpoint = stmt->column_text(1);
    rec.p256dh = stmt->column_text(2);
    rec.auth = stmt->column_text(3);
    const auto state = detail::parse_subscription_state(stmt->column_text(4));
    if (!state) return fail("storage_error", "subscription " + std::to_string(id) + " has an unknown state");
    rec.state = *state;
    rec.created_at = from_unix_millis(stmt->column_int(5));
    rec.updated_at = from_unix_millis(stmt->column_int(6));
    if (const auto gone_at = stmt->column_optional_int(7)) rec.gone_at = from_unix_millis(*gone_at);
    rec.gone_reason = stmt->column_text(8);
    return rec;
  }

  result<void> mark_gone(std::int64_t id, const std::string& reason, time_point now) override {
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return r;
    auto found = detail::mark_subscription_gone(db_.handle(), id, reason, unix_millis(now));
    if (!found) return tl::unexpected(std::move(found.error()));
    if (!*found) return fail("unknown_subscription", "no subscription " + std::to_string(id), "subscription_id");
    return tx.commit();
  }

 private:
  database& db_;
};

}  // namespace

std::unique_ptr<subscription_store> make_sqlite_subscription_store(database& db) {
  return std::make_unique<sqlite_subscription_store>(db);
}

}  // namespace webpushd::storage
