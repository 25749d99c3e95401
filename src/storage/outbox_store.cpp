#include "webpushd/storage/outbox_store.hpp"

#include <algorithm>
#include <array>

#include "statement.hpp"
#include "subscription_gone.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

constexpr std::array state_names{"queued", "sending", "sent", "gone", "failed", "dead", "expired", "cancelled", "suppressed"};

bool valid_urgency(std::string_view u) { return u == "very-low" || u == "low" || u == "normal" || u == "high"; }

// Columns of an outbox_row, in the order read_row expects.
constexpr std::string_view row_columns = R"sql(
    id, subscription_id, state, attempts, last_status, last_reason, location, source, created_at,
    next_attempt_at, finished_at, ttl_seconds, urgency, topic, expires_at, claimed_at, length(payload),
    category, variant)sql";
// The column a query selects right after row_columns (the payload, for exports).
constexpr int after_row_columns = 19;

result<outbox_row> read_row(const detail::statement& s) {
  outbox_row row;
  row.id = s.column_int(0);
  row.subscription_id = s.column_int(1);
  const auto state = parse_outbox_state(s.column_text(2));
  if (!state) return fail("storage_error", "message " + std::to_string(row.id) + " has an unknown state");
  row.state = *state;
  row.attempts = static_cast<std::int32_t>(s.column_int(3));
  if (const auto status = s.column_optional_int(4)) row.last_status = static_cast<std::int32_t>(*status);
  row.last_reason = s.column_text(5);
  row.location = s.column_text(6);
  row.source = s.column_text(7);
  row.created_at = from_unix_millis(s.column_int(8));
  row.next_attempt_at = from_unix_millis(s.column_int(9));
  if (const auto finished = s.column_optional_int(10)) row.finished_at = from_unix_millis(*finished);
  row.ttl_seconds = static_cast<std::int32_t>(s.column_int(11));
  row.urgency = s.column_text(12);
  row.topic = s.column_text(13);
  row.expires_at = from_unix_millis(s.column_int(14));
  if (const auto claimed = s.column_optional_int(15)) row.claimed_at = from_unix_millis(*claimed);
  row.payload_size = static_cast<std::size_t>(s.column_int(16));
  row.category = s.column_text(17);
  row.variant = s.column_text(18);
  return row;
}

// A due row as claim_due first reads it, before deciding its fate.
struct candidate {
  outbox_message message;
  bool subscription_active = false;
  bool unsubscribed = false;      // gone because the subscriber asked
  bool category_granted = false;  // no category, or one the subscriber grants
  bool admitted = false;          // passed the gate before (a retry)
  bool journey_exited = false;    // its journey ended by an exit while it was in flight
  bool held = false;              // the gate deferred or suppressed it in this claim
  gate_candidate gate;            // what the gate decides on, when not admitted
};

// The order the gate sees one claim's candidates in: per subscription,
// highest priority, then highest expected value, then earliest due — so when
// two messages compete for the last slot, the more valuable one takes it.
bool gate_order(const candidate* a, const candidate* b) {
  const auto& x = a->gate;
  const auto& y = b->gate;
  if (x.subscription_id != y.subscription_id) return x.subscription_id < y.subscription_id;
  if (x.priority != y.priority) return x.priority > y.priority;
  const double xv = x.value.value_or(0);
  const double yv = y.value.value_or(0);
  if (xv != yv) return xv > yv;
  if (x.due != y.due) return x.due < y.due;
  return x.message_id < y.message_id;
}

// What claim_due does with a due message that must not be sent: the state
// and reason it is finished with; nullopt means "claim it".
struct finish_as {
  const char* state;
  std::string_view reason;
};

// ttl 0 is "now or never": its first attempt is always made, only a retry
// is expired. Otherwise a message is expired once strictly past expires_at.
bool is_expired(const outbox_message& m, std::int64_t now_ms) {
  if (m.ttl_seconds == 0 && m.attempts == 0) return false;
  return now_ms > unix_millis(m.expires_at);
}

std::optional<finish_as> send_time_verdict(const candidate& c, std::int64_t now_ms) {
  if (!c.subscription_active) {
    if (c.unsubscribed) return finish_as{"cancelled", unsubscribed_reason};
    return finish_as{"gone", subscription_gone_reason};
  }
  if (!c.category_granted) return finish_as{"cancelled", consent_withdrawn_reason};
  if (c.journey_exited) return finish_as{"cancelled", journey_exited_reason};
  if (is_expired(c.message, now_ms)) return finish_as{"expired", ttl_expired_reason};
  return std::nullopt;
}

// Reads every row of a statement selecting row_columns (then the payload,
// when `with_payload`).
result<std::vector<outbox_row>> read_rows(detail::statement& stmt, bool with_payload) {
  std::vector<outbox_row> rows;
  for (;;) {
    auto row = stmt.step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) break;
    auto out = read_row(stmt);
    if (!out) return tl::unexpected(std::move(out.error()));
    if (with_payload) out->payload = stmt.column_blob(after_row_columns);
    rows.push_back(std::move(*out));
  }
  return rows;
}

std::string gone_reason_for(const attempt_result& r) {
  if (!r.reason.empty()) return r.reason;
  if (r.http_status) return "HTTP " + std::to_string(*r.http_status);
  return "gone";
}

class sqlite_outbox_store final : public outbox_store {
 public:
  explicit sqlite_outbox_store(database& db) : db_(db) {}

  result<std::vector<std::int64_t>> enqueue(const std::vector<new_outbox_message>& messages,
                                            time_point now) override {
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (m.ttl_seconds < 0) {
        return fail("invalid_ttl", "message " + std::to_string(i) + ": ttl_seconds is negative", "ttl_seconds");
      }
      if (!valid_urgency(m.urgency)) {
        return fail("invalid_urgency", "message " + std::to_string(i) + ": urgency must be very-low, low, normal or high",
                    "urgency");
      }
    }
    std::vector<std::int64_t> ids;
    if (messages.empty()) return ids;
    ids.reserve(messages.size());

    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto check = detail::statement::prepare_cached(db_, "SELECT state FROM subscriptions WHERE id = ?1");
    if (!check) return tl::unexpected(std::move(check.error()));
    auto granted = detail::statement::prepare_cached(
        db_, "SELECT 1 FROM subscription_categories WHERE subscription_id = ?1 AND category = ?2");
    if (!granted) return tl::unexpected(std::move(granted.error()));
    auto insert = detail::statement::prepare_cached(db_, R"sql(
        INSERT INTO outbox (subscription_id, payload, ttl_seconds, urgency, topic, source, state, attempts,
                            created_at, next_attempt_at, expires_at, category, journey_id, delivery_id,
                            priority, value, defer_limit, variant)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16))sql");
    if (!insert) return tl::unexpected(std::move(insert.error()));

    const std::int64_t now_ms = unix_millis(now);
    std::int64_t known_active = 0;  // batches usually repeat one subscription
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (m.subscription_id != known_active) {
        check->reset();
        auto row = check->bind_int(1, m.subscription_id).step();
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row || check->column_text(0) != "active") {
          // Returning before commit: the transaction scope rolls back the
          // messages already inserted, so the batch is all or nothing.
          return fail("unknown_subscription",
                      "message " + std::to_string(i) + ": subscription " + std::to_string(m.subscription_id) +
                          (*row ? " is not active" : " does not exist"),
                      "subscription_id");
        }
        known_active = m.subscription_id;
      }
      if (!m.category.empty()) {
        granted->reset();
        auto row = granted->bind_int(1, m.subscription_id).bind_text(2, m.category).step();
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row) {
          return fail("consent_missing",
                      "message " + std::to_string(i) + ": subscription " + std::to_string(m.subscription_id) +
                          " does not grant category '" + m.category + "'",
                      "category");
        }
      }
      insert->reset();
      const std::int64_t first_attempt_ms = m.not_before ? unix_millis(*m.not_before) : now_ms;
      // A message scheduled for later lives its TTL from then, not from now.
      const std::int64_t expires_ms = std::max(now_ms, first_attempt_ms) + std::int64_t{m.ttl_seconds} * 1000;
      insert->bind_int(1, m.subscription_id)
          .bind_blob(2, m.payload)
          .bind_int(3, std::int64_t{m.ttl_seconds})
          .bind_text(4, m.urgency)
          .bind_text_or_null(5, m.topic)
          .bind_text(6, m.source)
          .bind_int(7, now_ms)
          .bind_int(8, first_attempt_ms)
          .bind_int(9, expires_ms)
          .bind_text_or_null(10, m.category)
          .bind_text_or_null(12, m.delivery_id)
          .bind_int(13, std::int64_t{m.priority})
          .bind_real(14, m.value)
          .bind_int(15, m.defer_limit ? std::optional<std::int64_t>{unix_millis(*m.defer_limit)} : std::nullopt)
          .bind_text(16, m.variant);
      if (m.journey_id) {
        insert->bind_int(11, *m.journey_id);
      } else {
        insert->bind_null(11);
      }
      // A plain INSERT and the rowid: INSERT … RETURNING keeps a statement
      // journal per row (temp-file writes), measured 2.4× slower in bulk.
      if (auto r = insert->run(); !r) return tl::unexpected(std::move(r.error()));
      ids.push_back(sqlite3_last_insert_rowid(db_.handle()));
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return ids;
  }

  result<std::vector<outbox_message>> claim_due(time_point now, std::size_t limit) override {
    std::vector<outbox_message> claimed;
    if (limit == 0) return claimed;
    const std::int64_t now_ms = unix_millis(now);

    // IMMEDIATE: the write lock is held from the SELECT on, so another
    // connection's claim waits and then sees these rows as 'sending'.
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto select = detail::statement::prepare_cached(db_, R"sql(
        SELECT o.id, o.subscription_id, s.state = 'active', s.endpoint, s.p256dh, s.auth, o.payload,
               o.ttl_seconds, o.urgency, o.topic, o.attempts, o.created_at, o.expires_at, o.category,
               s.state = 'gone' AND s.gone_reason IS ?3,
               o.category IS NULL OR EXISTS (SELECT 1 FROM subscription_categories c
                                             WHERE c.subscription_id = o.subscription_id
                                               AND c.category = o.category),
               o.admitted_at IS NOT NULL, o.source, coalesce(s.timezone, ''), o.journey_id, o.priority, o.value,
               o.next_attempt_at, o.defer_limit,
               o.journey_id IS NOT NULL AND EXISTS (SELECT 1 FROM journeys j
                                                    WHERE j.id = o.journey_id AND j.state = 'exited'),
               o.variant
        FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
        WHERE o.state = 'queued' AND o.next_attempt_at <= ?1
        ORDER BY o.next_attempt_at, o.id
        LIMIT ?2)sql");
    if (!select) return tl::unexpected(std::move(select.error()));
    auto to_sending = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = 'sending', claimed_at = ?2, admitted_at = coalesce(admitted_at, ?2)
        WHERE id = ?1 AND state = 'queued')sql");
    if (!to_sending) return tl::unexpected(std::move(to_sending.error()));
    // A deferred message lives its TTL from its new first attempt, like one
    // enqueued for later.
    auto defer = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET next_attempt_at = ?2, expires_at = max(expires_at, ?2 + ttl_seconds * 1000),
                          last_reason = ?3
        WHERE id = ?1 AND state = 'queued')sql");
    if (!defer) return tl::unexpected(std::move(defer.error()));
    auto finish = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = ?2, finished_at = ?3, last_reason = ?4
        WHERE id = ?1 AND state = 'queued')sql");
    if (!finish) return tl::unexpected(std::move(finish.error()));

    // Rows finished here (gone, expired) don't count against the limit: keep
    // selecting until `limit` are claimed or nothing due remains, so a short
    // answer always means "nothing more is due".
    while (claimed.size() < limit) {
      const std::size_t wanted = limit - claimed.size();
      std::vector<candidate> batch;
      select->reset();
      select->bind_int(1, now_ms).bind_int(2, static_cast<std::int64_t>(wanted)).bind_text(3, unsubscribed_reason);
      // Read the whole batch before updating: changing rows under a running
      // SELECT on the same table is not something to rely on.
      for (;;) {
        auto row = select->step();
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row) break;
        candidate c;
        c.message.id = select->column_int(0);
        c.message.subscription_id = select->column_int(1);
        c.subscription_active = select->column_int(2) != 0;
        c.message.endpoint = select->column_text(3);
        c.message.p256dh = select->column_text(4);
        c.message.auth = select->column_text(5);
        c.message.payload = select->column_blob(6);
        c.message.ttl_seconds = static_cast<std::int32_t>(select->column_int(7));
        c.message.urgency = select->column_text(8);
        c.message.topic = select->column_text(9);
        c.message.attempts = static_cast<std::int32_t>(select->column_int(10));
        c.message.created_at = from_unix_millis(select->column_int(11));
        c.message.expires_at = from_unix_millis(select->column_int(12));
        c.message.category = select->column_text(13);
        c.unsubscribed = select->column_int(14) != 0;
        c.category_granted = select->column_int(15) != 0;
        c.admitted = select->column_int(16) != 0;
        c.gate.message_id = c.message.id;
        c.gate.subscription_id = c.message.subscription_id;
        c.gate.source = select->column_text(17);
        c.gate.category = c.message.category;
        c.gate.timezone = select->column_text(18);
        c.gate.journey_id = select->column_optional_int(19);
        c.gate.priority = static_cast<int>(select->column_int(20));
        c.gate.value = select->column_optional_real(21);
        c.gate.due = from_unix_millis(select->column_int(22));
        c.message.due_at = c.gate.due;
        if (const auto limit_ms = select->column_optional_int(23)) c.gate.defer_limit = from_unix_millis(*limit_ms);
        c.journey_exited = select->column_int(24) != 0;
        c.gate.variant = select->column_text(25);
        batch.push_back(std::move(c));
      }
      select->reset();  // ends the read before the updates

      bool finished_any = false;
      std::vector<candidate*> to_claim;
      for (auto& c : batch) {
        // Consent is checked here, at send time, under the same write lock as
        // the claim: a withdrawal committed before this transaction began is
        // always seen, however long ago the message was enqueued.
        if (const auto verdict = send_time_verdict(c, now_ms)) {
          finish->reset();
          finish->bind_int(1, c.message.id)
              .bind_text(2, verdict->state)
              .bind_int(3, now_ms)
              .bind_text(4, verdict->reason);
          if (auto r = finish->run(); !r) return tl::unexpected(std::move(r.error()));
          finished_any = true;
          continue;
        }
        to_claim.push_back(&c);
      }
      if (gate_ != nullptr) {
        // Caps and quiet hours, in contest order; the claim keeps due order.
        std::vector<candidate*> contest;
        for (auto* c : to_claim) {
          if (!c->admitted) contest.push_back(c);
        }
        std::sort(contest.begin(), contest.end(), gate_order);
        for (auto* c : contest) {
          auto verdict = gate_->decide(c->gate, now);
          if (!verdict) return tl::unexpected(std::move(verdict.error()));
          if (verdict->what == gate_verdict::kind::admit) continue;
          if (verdict->what == gate_verdict::kind::defer) {
            defer->reset();
            defer->bind_int(1, c->message.id).bind_int(2, unix_millis(verdict->until)).bind_text(3, verdict->reason);
            if (auto r = defer->run(); !r) return tl::unexpected(std::move(r.error()));
          } else {
            finish->reset();
            finish->bind_int(1, c->message.id).bind_text(2, "suppressed").bind_int(3, now_ms).bind_text(4, verdict->reason);
            if (auto r = finish->run(); !r) return tl::unexpected(std::move(r.error()));
          }
          c->held = true;
          finished_any = true;
        }
        std::erase_if(to_claim, [](const candidate* c) { return c->held; });
      }
      for (auto* c : to_claim) {
        to_sending->reset();
        if (auto r = to_sending->bind_int(1, c->message.id).bind_int(2, now_ms).run(); !r) {
          return tl::unexpected(std::move(r.error()));
        }
        claimed.push_back(std::move(c->message));
      }
      if (batch.size() < wanted || !finished_any) break;
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return claimed;
  }

  result<void> record(const std::vector<attempt_result>& results, time_point now) override {
    // Validate everything first: one bad result must not leave half a batch.
    for (const auto& r : results) {
      if (r.new_state == outbox_state::sending) {
        return fail("invalid_attempt_result",
                    "message " + std::to_string(r.message_id) + ": 'sending' is not an outcome", "new_state");
      }
    }
    if (results.empty()) return {};
    const std::int64_t now_ms = unix_millis(now);

    transaction tx{db_};
    if (auto r = tx.begun(); !r) return r;
    // `AND state = 'sending'` is what makes a stale result harmless: once a
    // message was finished or requeued, a late result matches no row. No
    // RETURNING: it makes SQLite build a temporary table for every row, which
    // profiling showed as the dispatcher's largest cost; the subscription is
    // looked up only for the rare gone results.
    auto update = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = ?2, attempts = attempts + ?3, last_status = ?4, last_reason = ?5,
                          location = coalesce(?6, location),
                          next_attempt_at = coalesce(?7, next_attempt_at), finished_at = ?8
        WHERE id = ?1 AND state = 'sending')sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    auto subscription_of = detail::statement::prepare_cached(db_, R"sql(
        SELECT o.subscription_id, s.state = 'active' FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
        WHERE o.id = ?1)sql");
    if (!subscription_of) return tl::unexpected(std::move(subscription_of.error()));
    // What pacing learns from: sends per source and step, per hour. Operator
    // messages (no "kind:" source) are not counted.
    auto count_sent = detail::statement::prepare_cached(db_, R"sql(
        INSERT INTO pacing_counters (source, step, variant, hour, metric, n)
        SELECT CASE WHEN instr(source, '/') > 0 THEN substr(source, 1, instr(source, '/') - 1) ELSE source END,
               CASE WHEN instr(source, '/') > 0 THEN substr(source, instr(source, '/') + 1) ELSE '' END,
               variant, ?2, 'sent', 1
        FROM outbox WHERE id = ?1 AND instr(source, ':') > 0
        ON CONFLICT (source, step, variant, hour, metric) DO UPDATE SET n = n + 1)sql");
    if (!count_sent) return tl::unexpected(std::move(count_sent.error()));
    const std::int64_t hour = now_ms / 3'600'000;

    for (const auto& r : results) {
      const bool retry = r.new_state == outbox_state::queued;
      update->reset();
      update->bind_int(1, r.message_id)
          .bind_text(2, to_string(r.new_state))
          .bind_int(3, std::int64_t{r.count_attempt ? 1 : 0})
          .bind_int(4, r.http_status ? std::optional<std::int64_t>{*r.http_status} : std::nullopt)
          .bind_text_or_null(5, r.reason)
          .bind_text_or_null(6, r.location)
          .bind_int(7, retry ? std::optional<std::int64_t>{r.retry_at ? unix_millis(*r.retry_at) : now_ms}
                             : std::nullopt)
          .bind_int(8, retry ? std::nullopt : std::optional<std::int64_t>{now_ms});
      if (auto done = update->run(); !done) return tl::unexpected(std::move(done.error()));
      if (update->changes() == 0) continue;  // stale: ignored
      if (r.new_state == outbox_state::sent) {
        count_sent->reset();
        if (auto c = count_sent->bind_int(1, r.message_id).bind_int(2, hour).run(); !c) {
          return tl::unexpected(std::move(c.error()));
        }
      }
      if (r.subscription_gone) {
        subscription_of->reset();
        auto row = subscription_of->bind_int(1, r.message_id).step();
        if (!row) return tl::unexpected(std::move(row.error()));
        if (!*row) continue;
        const std::int64_t subscription_id = subscription_of->column_int(0);
        const bool was_active = subscription_of->column_int(1) != 0;
        subscription_of->reset();  // done reading before the subscription changes
        auto gone = detail::mark_subscription_gone(db_.handle(), subscription_id, gone_reason_for(r), now_ms);
        if (!gone) return tl::unexpected(std::move(gone.error()));
        if (was_active && gate_ != nullptr) {  // the first 404/410 only: later ones are not new unsubscribes
          if (auto g = gate_->subscription_gone(subscription_id, now); !g) return g;
        }
      }
    }
    return tx.commit();
  }

  result<std::size_t> requeue_inflight(time_point now) override {
    // next_attempt_at is not later than the claim, so requeued messages are
    // due at once and keep their order; min() guards a clock set back.
    auto stmt = detail::statement::prepare_cached(db_, R"sql(
        UPDATE outbox SET state = 'queued', next_attempt_at = min(next_attempt_at, ?1)
        WHERE state = 'sending')sql");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    if (auto r = stmt->bind_int(1, unix_millis(now)).run(); !r) return tl::unexpected(std::move(r.error()));
    return static_cast<std::size_t>(stmt->changes());
  }

  result<std::optional<time_point>> next_due() override {
    auto stmt = detail::statement::prepare_cached(db_,
                                           "SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued'");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row || stmt->column_is_null(0)) return std::optional<time_point>{};
    return std::optional<time_point>{from_unix_millis(stmt->column_int(0))};
  }

  result<std::optional<outbox_row>> get(std::int64_t id) override {
    auto stmt = detail::statement::prepare_cached(db_,
                                           "SELECT " + std::string{row_columns} + " FROM outbox WHERE id = ?1");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->bind_int(1, id).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::optional<outbox_row>{};
    auto out = read_row(*stmt);
    if (!out) return tl::unexpected(std::move(out.error()));
    return std::optional<outbox_row>{std::move(*out)};
  }

  result<outbox_counts> counts() override {
    auto stmt = detail::statement::prepare_cached(db_, "SELECT state, count(*) FROM outbox GROUP BY state");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    outbox_counts c;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      const auto state = parse_outbox_state(stmt->column_text(0));
      if (!state) return fail("storage_error", "the outbox holds an unknown state");
      const std::int64_t n = stmt->column_int(1);
      c.of(*state) = n;
    }
    return c;
  }

  result<outbox_backlog> backlog(time_point now) override {
    // Each subquery names the state its partial index covers (outbox_due,
    // outbox_inflight), so none of them touches finished rows.
    auto stmt = detail::statement::prepare_cached(db_, R"sql(
        SELECT (SELECT count(*) FROM outbox WHERE state = 'queued'),
               (SELECT count(*) FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1),
               (SELECT count(*) FROM outbox WHERE state = 'sending'),
               (SELECT min(next_attempt_at) FROM outbox WHERE state = 'queued' AND next_attempt_at <= ?1))sql");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    auto row = stmt->bind_int(1, unix_millis(now)).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    outbox_backlog b;
    if (!*row) return b;
    b.queued = stmt->column_int(0);
    b.due = stmt->column_int(1);
    b.sending = stmt->column_int(2);
    if (const auto oldest = stmt->column_optional_int(3)) b.oldest_due = from_unix_millis(*oldest);
    stmt->reset();  // ends the read: the connection may be a long-lived reader's
    return b;
  }

  result<std::vector<outbox_row>> list(std::optional<outbox_state> state, std::size_t limit) override {
    auto stmt = detail::statement::prepare_cached(
        db_, "SELECT " + std::string{row_columns} +
                          " FROM outbox WHERE ?1 IS NULL OR state = ?1 ORDER BY id DESC LIMIT ?2");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    if (state) {
      stmt->bind_text(1, to_string(*state));
    } else {
      stmt->bind_null(1);
    }
    stmt->bind_int(2, static_cast<std::int64_t>(limit));
    return read_rows(*stmt, false);
  }

  result<std::vector<outbox_row>> list_for_subscription(std::int64_t subscription_id) override {
    auto stmt = detail::statement::prepare_cached(
        db_, "SELECT " + std::string{row_columns} +
                          ", payload FROM outbox WHERE subscription_id = ?1 ORDER BY id");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    stmt->bind_int(1, subscription_id);
    return read_rows(*stmt, true);
  }

  void set_gate(outbox_gate* gate) override { gate_ = gate; }

 private:
  database& db_;
  outbox_gate* gate_ = nullptr;
};

}  // namespace

std::int64_t& outbox_counts::of(outbox_state s) noexcept {
  switch (s) {
    case outbox_state::queued: return queued;
    case outbox_state::sending: return sending;
    case outbox_state::sent: return sent;
    case outbox_state::gone: return gone;
    case outbox_state::failed: return failed;
    case outbox_state::dead: return dead;
    case outbox_state::expired: return expired;
    case outbox_state::cancelled: return cancelled;
    case outbox_state::suppressed: return suppressed;
  }
  return queued;
}

const char* to_string(outbox_state s) noexcept { return state_names[static_cast<std::size_t>(s)]; }

std::optional<outbox_state> parse_outbox_state(std::string_view text) noexcept {
  for (std::size_t i = 0; i < state_names.size(); ++i) {
    if (text == state_names[i]) return static_cast<outbox_state>(i);
  }
  return std::nullopt;
}

result<std::vector<outbox_row>> outbox_store::list(std::optional<outbox_state>, std::size_t) {
  return fail("not_supported", "this outbox backend cannot list messages");
}

result<std::vector<outbox_row>> outbox_store::list_for_subscription(std::int64_t) {
  return fail("not_supported", "this outbox backend cannot list messages");
}

std::unique_ptr<outbox_store> make_sqlite_outbox_store(database& db) {
  return std::make_unique<sqlite_outbox_store>(db);
}

}  // namespace webpushd::storage
