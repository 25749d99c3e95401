#include "webpushd/storage/campaign_store.hpp"

#include <algorithm>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {

const char* to_string(campaign_state s) noexcept {
  switch (s) {
    case campaign_state::scheduled: return "scheduled";
    case campaign_state::running: return "running";
    case campaign_state::completed: return "completed";
    case campaign_state::cancelled: return "cancelled";
  }
  return "scheduled";
}

std::optional<campaign_state> parse_campaign_state(std::string_view text) noexcept {
  if (text == "scheduled") return campaign_state::scheduled;
  if (text == "running") return campaign_state::running;
  if (text == "completed") return campaign_state::completed;
  if (text == "cancelled") return campaign_state::cancelled;
  return std::nullopt;
}

std::string campaign_source(std::string_view campaign_id) { return "campaign:" + std::string(campaign_id); }

namespace {

constexpr std::string_view campaign_columns =
    "SELECT id, name, category, definition, send_at, local_time, coalesce(due_at, send_at), state, cursor, "
    "targeted, enqueued, skipped, skipped_reasons, created_by, end_reason, created_at, started_at, finished_at "
    "FROM campaigns ";

result<campaign_row> read_campaign(const detail::statement& st) {
  campaign_row c;
  c.id = st.column_text(0);
  c.name = st.column_text(1);
  c.category = st.column_text(2);
  c.definition = st.column_text(3);
  c.send_at = from_unix_millis(st.column_int(4));
  c.local_time = st.column_int(5) != 0;
  c.due_at = from_unix_millis(st.column_int(6));
  const auto state = parse_campaign_state(st.column_text(7));
  if (!state) return fail("storage_error", "campaign " + c.id + " holds an unknown state");
  c.state = *state;
  c.cursor = st.column_int(8);
  c.targeted = st.column_int(9);
  c.enqueued = st.column_int(10);
  c.skipped = st.column_int(11);
  c.skipped_reasons = st.column_text(12);
  c.created_by = st.column_text(13);
  c.end_reason = st.column_text(14);
  c.created_at = from_unix_millis(st.column_int(15));
  if (auto v = st.column_optional_int(16)) c.started_at = from_unix_millis(*v);
  if (auto v = st.column_optional_int(17)) c.finished_at = from_unix_millis(*v);
  return c;
}

result<std::vector<campaign_row>> collect(detail::statement& st) {
  std::vector<campaign_row> out;
  while (true) {
    auto row = st.step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return out;
    auto c = read_campaign(st);
    if (!c) return tl::unexpected(std::move(c.error()));
    out.push_back(std::move(*c));
  }
}

std::optional<std::int64_t> millis_or_none(const std::optional<time_point>& t) {
  if (!t) return std::nullopt;
  return unix_millis(*t);
}

class sqlite_campaign_store final : public campaign_store {
 public:
  explicit sqlite_campaign_store(database& db) : db_(db) {}

  result<void> insert(const campaign_row& c) override {
    auto exists = prepare("SELECT 1 FROM campaigns WHERE id = ?1");
    if (!exists) return tl::unexpected(std::move(exists.error()));
    auto found = exists->bind_text(1, c.id).step();
    if (!found) return tl::unexpected(std::move(found.error()));
    if (*found) return fail("campaign_conflict", "a campaign with id " + c.id + " exists", "id");
    auto st = prepare(R"sql(
        INSERT INTO campaigns (id, name, category, definition, send_at, local_time, due_at, state, cursor,
                               targeted, enqueued, skipped, skipped_reasons, created_by, end_reason,
                               created_at, started_at, finished_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, c.id)
        .bind_text(2, c.name)
        .bind_text(3, c.category)
        .bind_text(4, c.definition)
        .bind_int(5, unix_millis(c.send_at))
        .bind_int(6, std::int64_t{c.local_time ? 1 : 0})
        .bind_int(7, unix_millis(c.due_at))
        .bind_text(8, to_string(c.state))
        .bind_int(9, c.cursor)
        .bind_int(10, c.targeted)
        .bind_int(11, c.enqueued)
        .bind_int(12, c.skipped)
        .bind_text(13, c.skipped_reasons)
        .bind_text(14, c.created_by)
        .bind_text(15, c.end_reason)
        .bind_int(16, unix_millis(c.created_at))
        .bind_int(17, millis_or_none(c.started_at))
        .bind_int(18, millis_or_none(c.finished_at));
    return st->run();
  }

  result<std::optional<campaign_row>> get(std::string_view id) override {
    auto st = prepare(std::string{campaign_columns} + "WHERE id = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, id);
    auto rows = collect(*st);
    if (!rows) return tl::unexpected(std::move(rows.error()));
    if (rows->empty()) return std::optional<campaign_row>{};
    return std::optional<campaign_row>{std::move(rows->front())};
  }

  result<std::vector<campaign_row>> list(std::size_t limit) override {
    auto st = prepare(std::string{campaign_columns} + "ORDER BY created_at DESC, id DESC LIMIT ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, static_cast<std::int64_t>(limit));
    return collect(*st);
  }

  result<std::vector<campaign_row>> due(time_point now, std::size_t limit) override {
    auto st = prepare(std::string{campaign_columns} +
                      "WHERE state IN ('scheduled', 'running') AND due_at <= ?1 ORDER BY due_at, id LIMIT ?2");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, unix_millis(now)).bind_int(2, static_cast<std::int64_t>(limit));
    return collect(*st);
  }

  result<std::optional<time_point>> next_due() override {
    auto st = prepare("SELECT min(due_at) FROM campaigns WHERE state IN ('scheduled', 'running')");
    if (!st) return tl::unexpected(std::move(st.error()));
    return detail::optional_time(*st);
  }

  result<std::vector<campaign_recipient>> recipients(std::string_view category, std::int64_t after,
                                                     std::size_t limit) override {
    if (!recipients_) {
      // The category index (category, subscription_id) gives the keyset
      // order; each row joins its subscription by primary key.
      auto st = prepare(R"sql(
          SELECT s.id, coalesce(s.public_id, ''), coalesce(s.locale, ''), coalesce(s.timezone, ''),
                 s.customer_id IS NOT NULL
          FROM subscription_categories c JOIN subscriptions s ON s.id = c.subscription_id
          WHERE c.category = ?1 AND c.subscription_id > ?2 AND s.state = 'active'
          ORDER BY c.subscription_id
          LIMIT ?3)sql");
      if (!st) return tl::unexpected(std::move(st.error()));
      recipients_.emplace(std::move(*st));
    }
    auto& st = *recipients_;
    st.reset();
    st.bind_text(1, category).bind_int(2, after).bind_int(3, static_cast<std::int64_t>(limit));
    std::vector<campaign_recipient> out;
    out.reserve(limit);
    while (true) {
      auto row = st.step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      out.push_back({st.column_int(0), st.column_text(1), st.column_text(2), st.column_text(3), st.column_int(4) != 0});
    }
    st.reset();  // releases the read cursor at once
    return out;
  }

  result<void> enqueue_messages(const campaign_message_batch& batch, const std::vector<campaign_message>& messages,
                                time_point now) override {
    if (batch.ttl_seconds < 0) return fail("invalid_ttl", "ttl_seconds is negative", "ttl_seconds");
    if (batch.urgency != "very-low" && batch.urgency != "low" && batch.urgency != "normal" &&
        batch.urgency != "high") {
      return fail("invalid_urgency", "urgency must be very-low, low, normal or high", "urgency");
    }
    if (messages.empty()) return {};
    if (!insert_) {
      auto st = prepare(R"sql(
          INSERT INTO outbox (subscription_id, payload, ttl_seconds, urgency, topic, source, state, attempts,
                              created_at, next_attempt_at, expires_at, category, journey_id, delivery_id,
                              priority, defer_limit, variant)
          VALUES (?1, ?2, ?3, ?4, NULL, ?5, 'queued', 0, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12, ?13))sql");
      if (!st) return tl::unexpected(std::move(st.error()));
      insert_.emplace(std::move(*st));
    }
    const std::string source = campaign_source(batch.campaign_id);
    const std::int64_t now_ms = unix_millis(now);
    const std::int64_t ttl_ms = std::int64_t{batch.ttl_seconds} * 1000;
    auto& st = *insert_;
    for (const auto& m : messages) {
      const std::int64_t first_attempt_ms = m.not_before ? unix_millis(*m.not_before) : now_ms;
      st.reset();
      st.bind_int(1, m.subscription_id)
          .bind_blob(2, as_bytes(m.payload))
          .bind_int(3, std::int64_t{batch.ttl_seconds})
          .bind_text(4, batch.urgency)
          .bind_text(5, source)
          .bind_int(6, now_ms)
          .bind_int(7, first_attempt_ms)
          .bind_int(8, std::max(now_ms, first_attempt_ms) + ttl_ms)
          .bind_text_or_null(9, batch.category)
          .bind_text_or_null(10, m.delivery_id)
          .bind_int(11, std::int64_t{batch.priority})
          .bind_int(12, batch.defer_max ? std::optional<std::int64_t>{first_attempt_ms + batch.defer_max->count()}
                                        : std::nullopt)
          .bind_text(13, m.variant);
      if (auto r = st.run(); !r) return r;
    }
    st.reset();
    return {};
  }

  result<void> save_progress(const campaign_row& c) override {
    auto st = prepare(R"sql(
        UPDATE campaigns SET state = ?2, cursor = ?3, targeted = ?4, enqueued = ?5, skipped = ?6,
                             skipped_reasons = ?7, started_at = ?8, finished_at = ?9, end_reason = ?10
        WHERE id = ?1)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, c.id)
        .bind_text(2, to_string(c.state))
        .bind_int(3, c.cursor)
        .bind_int(4, c.targeted)
        .bind_int(5, c.enqueued)
        .bind_int(6, c.skipped)
        .bind_text(7, c.skipped_reasons)
        .bind_int(8, millis_or_none(c.started_at))
        .bind_int(9, millis_or_none(c.finished_at))
        .bind_text(10, c.end_reason);
    if (auto r = st->run(); !r) return r;
    if (st->changes() == 0) return fail("storage_error", "campaign " + c.id + " vanished during its fan-out");
    return {};
  }

  result<std::optional<campaign_cancel_outcome>> cancel(std::string_view id, std::string_view reason,
                                                       time_point now) override {
    auto found = get(id);
    if (!found) return tl::unexpected(std::move(found.error()));
    if (!*found) return std::optional<campaign_cancel_outcome>{};
    campaign_cancel_outcome out;
    out.state_before = (*found)->state;
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    const std::int64_t now_ms = unix_millis(now);
    if (out.state_before != campaign_state::cancelled) {
      auto st = prepare(R"sql(
          UPDATE campaigns SET state = 'cancelled', finished_at = ?2, end_reason = ?3 WHERE id = ?1)sql");
      if (!st) return tl::unexpected(std::move(st.error()));
      if (auto r = st->bind_text(1, id).bind_int(2, now_ms).bind_text(3, reason).run(); !r) {
        return tl::unexpected(std::move(r.error()));
      }
    }
    auto msgs = prepare(R"sql(
        UPDATE outbox SET state = 'cancelled', finished_at = ?2, last_reason = ?3
        WHERE source = ?1 AND state = 'queued')sql");
    if (!msgs) return tl::unexpected(std::move(msgs.error()));
    msgs->bind_text(1, campaign_source(id)).bind_int(2, now_ms).bind_text(3, campaign_cancelled_reason);
    if (auto r = msgs->run(); !r) return tl::unexpected(std::move(r.error()));
    out.messages_cancelled = static_cast<std::size_t>(msgs->changes());
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return std::optional<campaign_cancel_outcome>{out};
  }

  result<outbox_counts> message_counts(std::string_view id) override {
    auto st = prepare("SELECT state, count(*) FROM outbox WHERE source = ?1 GROUP BY state");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, campaign_source(id));
    outbox_counts c;
    while (true) {
      auto row = st->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) return c;
      const auto state = parse_outbox_state(st->column_text(0));
      if (!state) return fail("storage_error", "the outbox holds an unknown state");
      const std::int64_t n = st->column_int(1);
      c.of(*state) = n;
    }
  }

  result<std::int64_t> messages_queued(std::string_view id, time_point from, time_point to) override {
    auto st = prepare("SELECT count(*) FROM outbox WHERE source = ?1 AND created_at >= ?2 AND created_at < ?3");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->bind_text(1, campaign_source(id)).bind_int(2, unix_millis(from)).bind_int(3, unix_millis(to)).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    return st->column_int(0);
  }

 private:
  result<detail::statement> prepare(std::string_view sql) { return detail::statement::prepare(db_.handle(), sql); }

  database& db_;
  std::optional<detail::statement> recipients_;
  std::optional<detail::statement> insert_;
};

}  // namespace

std::unique_ptr<campaign_store> make_sqlite_campaign_store(database& db) {
  return std::make_unique<sqlite_campaign_store>(db);
}

}  // namespace webpushd::storage
