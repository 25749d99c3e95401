#include "webpushd/storage/subscriber_store.hpp"

#include <algorithm>
#include <set>

#include "statement.hpp"
#include "subscription_gone.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"

namespace webpushd::storage {
namespace {

/// Reason on a subscriber merged into another by move_endpoint, and on its
/// cancelled messages.
constexpr std::string_view replaced_reason = "subscription replaced";

constexpr std::string_view subscriber_columns = R"sql(
    id, public_id, endpoint, p256dh, auth, state, gone_reason, gone_at, customer_id, timezone, locale,
    consent_text_version, replaced_by, created_at, updated_at, last_seen_at)sql";

error unknown(std::int64_t id) {
  return error{"unknown_subscription", "no subscription " + std::to_string(id), "subscription_id"};
}

// A tombstone for an endpoint that must no longer be findable: random, so it
// says nothing about the endpoint it replaced, and unique like endpoints.
std::string tombstone(std::string_view kind) { return std::string{kind} + ":" + crypto::random_token(16); }

class sqlite_subscriber_store final : public subscriber_store {
 public:
  explicit sqlite_subscriber_store(database& db) : db_(db) {}

  result<subscriber_upsert> upsert(const subscriber_fields& f, time_point now) override {
    if (f.endpoint.empty()) return fail("invalid_subscription", "the endpoint is empty", "subscription.endpoint");
    if (f.p256dh.empty()) return fail("invalid_subscription", "keys.p256dh is empty", "subscription.keys.p256dh");
    if (f.auth.empty()) return fail("invalid_subscription", "keys.auth is empty", "subscription.keys.auth");
    if (f.new_public_id.empty()) return fail("invalid_subscription", "no public id to give a new subscriber");
    const std::int64_t now_ms = unix_millis(now);

    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    subscriber_upsert out;
    auto existing = find_where("endpoint = ?1", f.endpoint);
    if (!existing) return tl::unexpected(std::move(existing.error()));
    std::int64_t id = 0;
    if (*existing) {
      const auto& before = **existing;
      id = before.id;
      out.was_active = before.state == subscription_state::active;
      out.categories_before = before.categories;
      out.text_version_before = before.consent_text_version;
      auto update = detail::statement::prepare_cached(db_, R"sql(
          UPDATE subscriptions SET
            p256dh = ?2, auth = ?3, state = 'active', gone_at = NULL, gone_reason = NULL,
            public_id = coalesce(public_id, ?4), token_hash = ?5, timezone = ?6, locale = ?7,
            consent_text_version = ?8, updated_at = ?9, last_seen_at = ?9
          WHERE id = ?1)sql");
      if (!update) return tl::unexpected(std::move(update.error()));
      update->bind_int(1, id)
          .bind_text(2, f.p256dh)
          .bind_text(3, f.auth)
          .bind_text(4, f.new_public_id)
          .bind_blob(5, f.token_hash)
          .bind_text(6, f.timezone)
          .bind_text(7, f.locale)
          .bind_text(8, f.text_version)
          .bind_int(9, now_ms);
      if (auto r = update->run(); !r) return tl::unexpected(std::move(r.error()));
    } else {
      out.created = true;
      auto insert = detail::statement::prepare_cached(db_, R"sql(
          INSERT INTO subscriptions (endpoint, p256dh, auth, state, created_at, updated_at, public_id, token_hash,
                                     timezone, locale, consent_text_version, last_seen_at)
          VALUES (?1, ?2, ?3, 'active', ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?4)
          RETURNING id)sql");
      if (!insert) return tl::unexpected(std::move(insert.error()));
      insert->bind_text(1, f.endpoint)
          .bind_text(2, f.p256dh)
          .bind_text(3, f.auth)
          .bind_int(4, now_ms)
          .bind_text(5, f.new_public_id)
          .bind_blob(6, f.token_hash)
          .bind_text(7, f.timezone)
          .bind_text(8, f.locale)
          .bind_text(9, f.text_version);
      auto row = insert->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) return fail("storage_error", "insert returned no id");
      id = insert->column_int(0);
      if (auto r = insert->run(); !r) return tl::unexpected(std::move(r.error()));
    }
    if (auto r = replace_categories(id, f.categories, now_ms); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    auto after = require(id, true);
    if (!after) return tl::unexpected(std::move(after.error()));
    out.subscriber = std::move(*after);
    return out;
  }

  result<std::optional<subscriber_record>> find(std::int64_t id) override { return find_where("id = ?1", id); }

  result<std::optional<subscriber_record>> find_by_public_id(std::string_view public_id) override {
    return find_where("public_id = ?1", public_id);
  }

  result<std::optional<subscriber_record>> find_by_endpoint(std::string_view endpoint) override {
    return find_where("endpoint = ?1", endpoint);
  }

  result<std::optional<subscriber_record>> verify_token(std::string_view public_id, std::string_view token) override {
    auto stmt = detail::statement::prepare_cached(db_,
                                           "SELECT id, token_hash, state FROM subscriptions WHERE public_id = ?1");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->bind_text(1, public_id).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    // An unknown id still costs a hash and a full comparison (against a value
    // no token hashes to), so timing does not tell "no such id" from "wrong token".
    std::string stored(32, '\0');
    std::int64_t id = 0;
    bool usable = false;
    if (*row) {
      id = stmt->column_int(0);
      const bytes hash = stmt->column_blob(1);
      usable = hash.size() == 32 && stmt->column_text(2) != "erased";
      if (usable) stored = webpushd::to_string(hash);
    }
    const auto presented = crypto::sha256(as_bytes(token));
    const bool equal = crypto::constant_time_equal(stored, webpushd::to_string(presented));
    if (!usable || !equal) return std::optional<subscriber_record>{};
    stmt->reset();
    return find(id);
  }

  result<void> set_categories(std::int64_t id, const std::vector<std::string>& categories,
                              std::string_view text_version, time_point now) override {
    const std::int64_t now_ms = unix_millis(now);
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return r;
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE subscriptions SET consent_text_version = ?2, updated_at = ?3, last_seen_at = ?3
        WHERE id = ?1 AND state != 'erased')sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    if (auto r = update->bind_int(1, id).bind_text(2, text_version).bind_int(3, now_ms).run(); !r) return r;
    if (update->changes() == 0) return tl::unexpected(unknown(id));
    if (auto r = replace_categories(id, categories, now_ms); !r) return r;
    return tx.commit();
  }

  result<void> link_customer(std::int64_t id, std::string_view customer_id, time_point now) override {
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE subscriptions SET customer_id = ?2, updated_at = ?3 WHERE id = ?1 AND state != 'erased')sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    if (auto r = update->bind_int(1, id).bind_text(2, customer_id).bind_int(3, unix_millis(now)).run(); !r) return r;
    if (update->changes() == 0) return tl::unexpected(unknown(id));
    return {};
  }

  result<std::vector<subscriber_record>> list_by_customer(std::string_view customer_id) override {
    auto stmt = detail::statement::prepare_cached(
        db_, "SELECT id FROM subscriptions WHERE customer_id = ?1 ORDER BY id");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    stmt->bind_text(1, customer_id);
    std::vector<std::int64_t> ids;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      ids.push_back(stmt->column_int(0));
    }
    std::vector<subscriber_record> out;
    for (const auto id : ids) {
      auto rec = find(id);
      if (!rec) return tl::unexpected(std::move(rec.error()));
      if (*rec) out.push_back(std::move(**rec));
    }
    return out;
  }

  result<subscriber_move> move_endpoint(std::int64_t id, std::string_view endpoint, std::string_view p256dh,
                                        std::string_view auth, time_point now) override {
    const std::int64_t now_ms = unix_millis(now);
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto self = require(id, false);
    if (!self) return tl::unexpected(std::move(self.error()));

    subscriber_move out;
    auto holder = find_where("endpoint = ?1", endpoint);
    if (!holder) return tl::unexpected(std::move(holder.error()));
    if (*holder && (*holder)->id != id) {
      // The new endpoint was already posted as a subscriber of its own (the
      // page subscribed before the service worker reported the change). The
      // identity that carries consent and history wins; the other is retired.
      const std::int64_t other = (*holder)->id;
      if (auto r = cancel_queued(other, replaced_reason, now_ms); !r) return tl::unexpected(std::move(r.error()));
      if (auto r = delete_categories(other); !r) return tl::unexpected(std::move(r.error()));
      auto retire = detail::statement::prepare_cached(db_, R"sql(
          UPDATE subscriptions SET endpoint = ?2, p256dh = '', auth = '', state = 'gone', gone_at = ?3,
            gone_reason = ?4, replaced_by = ?5, token_hash = NULL, customer_id = NULL, timezone = NULL,
            locale = NULL, updated_at = ?3
          WHERE id = ?1)sql");
      if (!retire) return tl::unexpected(std::move(retire.error()));
      retire->bind_int(1, other)
          .bind_text(2, tombstone("replaced"))
          .bind_int(3, now_ms)
          .bind_text(4, replaced_reason)
          .bind_int(5, id);
      if (auto r = retire->run(); !r) return tl::unexpected(std::move(r.error()));
      out.retired = std::move(**holder);
    }
    // An unsubscribed subscriber stays unsubscribed: the browser renewing its
    // push subscription is not the person opting in again.
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE subscriptions SET endpoint = ?2, p256dh = ?3, auth = ?4,
          state = CASE WHEN state = 'gone' AND gone_reason IS ?6 THEN state ELSE 'active' END,
          gone_at = CASE WHEN state = 'gone' AND gone_reason IS ?6 THEN gone_at END,
          gone_reason = CASE WHEN state = 'gone' AND gone_reason IS ?6 THEN gone_reason END,
          updated_at = ?5, last_seen_at = ?5
        WHERE id = ?1)sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    update->bind_int(1, id)
        .bind_text(2, endpoint)
        .bind_text(3, p256dh)
        .bind_text(4, auth)
        .bind_int(5, now_ms)
        .bind_text(6, unsubscribed_reason);
    if (auto r = update->run(); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    auto after = require(id, true);
    if (!after) return tl::unexpected(std::move(after.error()));
    out.subscriber = std::move(*after);
    return out;
  }

  result<subscriber_removal> mark_unsubscribed(std::int64_t id, time_point now) override {
    const std::int64_t now_ms = unix_millis(now);
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto self = require(id, false);
    if (!self) return tl::unexpected(std::move(self.error()));
    subscriber_removal out;
    out.categories_before = self->categories;
    auto cancelled = cancel_queued(id, unsubscribed_reason, now_ms);
    if (!cancelled) return tl::unexpected(std::move(cancelled.error()));
    out.messages_cancelled = *cancelled;
    if (auto r = delete_categories(id); !r) return tl::unexpected(std::move(r.error()));
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE subscriptions SET state = 'gone', gone_at = coalesce(gone_at, ?2), gone_reason = ?3, updated_at = ?2
        WHERE id = ?1)sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    if (auto r = update->bind_int(1, id).bind_int(2, now_ms).bind_text(3, unsubscribed_reason).run(); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return out;
  }

  result<subscriber_removal> erase(std::int64_t id, time_point now) override {
    const std::int64_t now_ms = unix_millis(now);
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto self = require(id, true);
    if (!self) return tl::unexpected(std::move(self.error()));
    subscriber_removal out;
    out.categories_before = self->categories;

    // Subscribers retired into this one (move_endpoint) are the same person:
    // their message payloads go too.
    std::vector<std::int64_t> ids{id};
    {
      auto merged = detail::statement::prepare_cached(db_, "SELECT id FROM subscriptions WHERE replaced_by = ?1");
      if (!merged) return tl::unexpected(std::move(merged.error()));
      merged->bind_int(1, id);
      for (;;) {
        auto row = merged->step();
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row) break;
        ids.push_back(merged->column_int(0));
      }
    }
    auto cancel = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = 'cancelled', finished_at = ?2, last_reason = ?3
        WHERE subscription_id = ?1 AND state IN ('queued', 'sending'))sql");
    if (!cancel) return tl::unexpected(std::move(cancel.error()));
    auto wipe = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET payload = x'', topic = NULL, location = NULL WHERE subscription_id = ?1)sql");
    if (!wipe) return tl::unexpected(std::move(wipe.error()));
    for (const auto target : ids) {
      cancel->reset();
      if (auto r = cancel->bind_int(1, target).bind_int(2, now_ms).bind_text(3, erased_reason).run(); !r) {
        return tl::unexpected(std::move(r.error()));
      }
      out.messages_cancelled += static_cast<std::size_t>(cancel->changes());
      wipe->reset();
      if (auto r = wipe->bind_int(1, target).run(); !r) return tl::unexpected(std::move(r.error()));
    }
    if (auto r = delete_categories(id); !r) return tl::unexpected(std::move(r.error()));
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE subscriptions SET endpoint = ?2, p256dh = '', auth = '', state = 'erased', gone_at = ?3,
          gone_reason = NULL, token_hash = NULL, customer_id = NULL, timezone = NULL, locale = NULL,
          consent_text_version = NULL, last_seen_at = NULL, updated_at = ?3
        WHERE id = ?1)sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    if (auto r = update->bind_int(1, id).bind_text(2, tombstone("erased")).bind_int(3, now_ms).run(); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return out;
  }

  result<subscription_counts> count_by_state() override {
    auto stmt = detail::statement::prepare_cached(db_, "SELECT state, count(*) FROM subscriptions GROUP BY state");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    subscription_counts c;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      const auto state = stmt->column_text(0);
      const std::int64_t n = stmt->column_int(1);
      if (state == "active") c.active = n;
      else if (state == "gone") c.gone = n;
      else if (state == "erased") c.erased = n;
    }
    return c;
  }

 private:
  // The subscriber `id`, or `unknown_subscription` (also when erased, unless
  // `allow_erased`).
  result<subscriber_record> require(std::int64_t id, bool allow_erased) {
    auto found = find(id);
    if (!found) return tl::unexpected(std::move(found.error()));
    if (!*found || (!allow_erased && (*found)->state == subscription_state::erased)) {
      return tl::unexpected(unknown(id));
    }
    return std::move(**found);
  }

  template <class Key>
  result<std::optional<subscriber_record>> find_where(std::string_view condition, const Key& key) {
    auto stmt = detail::statement::prepare_cached(db_, "SELECT " + std::string{subscriber_columns} +
                                                             " FROM subscriptions WHERE " + std::string{condition});
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    if constexpr (std::is_integral_v<Key>) {
      stmt->bind_int(1, std::int64_t{key});
    } else {
      stmt->bind_text(1, key);
    }
    auto row = stmt->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::optional<subscriber_record>{};
    subscriber_record rec;
    rec.id = stmt->column_int(0);
    rec.public_id = stmt->column_text(1);
    rec.endpoint = stmt->column_text(2);
    rec.p256dh = stmt->column_text(3);
    rec.auth = stmt->column_text(4);
    const auto state = detail::parse_subscription_state(stmt->column_text(5));
    if (!state) return fail("storage_error", "subscription " + std::to_string(rec.id) + " has an unknown state");
    rec.state = *state;
    rec.gone_reason = stmt->column_text(6);
    if (const auto at = stmt->column_optional_int(7)) rec.gone_at = from_unix_millis(*at);
    rec.customer_id = stmt->column_text(8);
    rec.timezone = stmt->column_text(9);
    rec.locale = stmt->column_text(10);
    rec.consent_text_version = stmt->column_text(11);
    rec.replaced_by = stmt->column_optional_int(12);
    rec.created_at = from_unix_millis(stmt->column_int(13));
    rec.updated_at = from_unix_millis(stmt->column_int(14));
    if (const auto at = stmt->column_optional_int(15)) rec.last_seen_at = from_unix_millis(*at);
    stmt->reset();
    auto categories = load_categories(rec.id);
    if (!categories) return tl::unexpected(std::move(categories.error()));
    rec.categories = std::move(*categories);
    return rec;
  }

  result<std::vector<std::string>> load_categories(std::int64_t id) {
    auto stmt = detail::statement::prepare_cached(
        db_, "SELECT category FROM subscription_categories WHERE subscription_id = ?1 ORDER BY category");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    stmt->bind_int(1, id);
    std::vector<std::string> out;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) return out;
      out.push_back(stmt->column_text(0));
    }
  }

  // Makes the granted set exactly `categories`; a category granted before
  // and still granted keeps its original granted_at.
  result<void> replace_categories(std::int64_t id, const std::vector<std::string>& categories, std::int64_t now_ms) {
    const std::set<std::string> wanted(categories.begin(), categories.end());
    auto current = load_categories(id);
    if (!current) return tl::unexpected(std::move(current.error()));
    auto remove = detail::statement::prepare_cached(
        db_, "DELETE FROM subscription_categories WHERE subscription_id = ?1 AND category = ?2");
    if (!remove) return tl::unexpected(std::move(remove.error()));
    for (const auto& c : *current) {
      if (wanted.count(c) != 0) continue;
      remove->reset();
      if (auto r = remove->bind_int(1, id).bind_text(2, c).run(); !r) return r;
    }
    auto add = detail::statement::prepare_cached(db_, R"sql(
        INSERT INTO subscription_categories (subscription_id, category, granted_at) VALUES (?1, ?2, ?3)
        ON CONFLICT DO NOTHING)sql");
    if (!add) return tl::unexpected(std::move(add.error()));
    for (const auto& c : wanted) {
      add->reset();
      if (auto r = add->bind_int(1, id).bind_text(2, c).bind_int(3, now_ms).run(); !r) return r;
    }
    return {};
  }

  result<void> delete_categories(std::int64_t id) {
    auto stmt = detail::statement::prepare_cached(db_, "DELETE FROM subscription_categories WHERE subscription_id = ?1");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    return stmt->bind_int(1, id).run();
  }

  result<std::size_t> cancel_queued(std::int64_t id, std::string_view reason, std::int64_t now_ms) {
    auto stmt = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = 'cancelled', finished_at = ?2, last_reason = ?3
        WHERE subscription_id = ?1 AND state = 'queued')sql");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    if (auto r = stmt->bind_int(1, id).bind_int(2, now_ms).bind_text(3, reason).run(); !r) {
      return tl::unexpected(std::move(r.error()));
    }
    return static_cast<std::size_t>(stmt->changes());
  }

  database& db_;
};

}  // namespace

bool subscriber_record::unsubscribed() const {
  return state == subscription_state::gone && gone_reason == unsubscribed_reason;
}

std::unique_ptr<subscriber_store> make_sqlite_subscriber_store(database& db) {
  return std::make_unique<sqlite_subscriber_store>(db);
}

}  // namespace webpushd::storage
