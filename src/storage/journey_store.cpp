#include "webpushd/storage/journey_store.hpp"

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {

const char* to_string(journey_state s) noexcept {
  switch (s) {
    case journey_state::active: return "active";
    case journey_state::completed: return "completed";
    case journey_state::exited: return "exited";
    case journey_state::cancelled: return "cancelled";
  }
  return "active";
}

namespace {

journey_state parse_state(std::string_view text) {
  if (text == "completed") return journey_state::completed;
  if (text == "exited") return journey_state::exited;
  if (text == "cancelled") return journey_state::cancelled;
  return journey_state::active;
}

constexpr std::string_view journey_columns =
    "SELECT id, scenario, person, journey_key, state, next_step, step_name, anchor_at, next_at, context, "
    "started_at, updated_at, ended_at, COALESCE(end_reason, '') FROM journeys ";

journey_row read_journey(const detail::statement& st) {
  journey_row j;
  j.id = st.column_int(0);
  j.scenario = st.column_text(1);
  j.person = st.column_text(2);
  j.journey_key = st.column_text(3);
  j.state = parse_state(st.column_text(4));
  j.next_step = static_cast<int>(st.column_int(5));
  j.step_name = st.column_text(6);
  j.anchor_at = from_unix_millis(st.column_int(7));
  if (auto v = st.column_optional_int(8)) j.next_at = from_unix_millis(*v);
  j.context = st.column_text(9);
  j.started_at = from_unix_millis(st.column_int(10));
  j.updated_at = from_unix_millis(st.column_int(11));
  if (auto v = st.column_optional_int(12)) j.ended_at = from_unix_millis(*v);
  j.end_reason = st.column_text(13);
  return j;
}

constexpr std::string_view log_columns =
    "SELECT journey_id, scenario, step, person, subscription_id, outcome, reason, outbox_id, at FROM journey_log ";

journey_log_entry read_log_entry(const detail::statement& s) {
  return journey_log_entry{s.column_int(0),          s.column_text(1), s.column_text(2),
                           s.column_text(3),         s.column_optional_int(4), s.column_text(5),
                           s.column_text(6),         s.column_optional_int(7), from_unix_millis(s.column_int(8))};
}

std::optional<std::int64_t> millis_or_none(const std::optional<time_point>& t) {
  if (!t) return std::nullopt;
  return unix_millis(*t);
}

class sqlite_journey_store final : public journey_store {
 public:
  explicit sqlite_journey_store(database& db) : db_(db) {}

  result<std::optional<journey_row>> find_active(std::string_view scenario, std::string_view person,
                                                 std::string_view key) override {
    auto st = prepare(std::string{journey_columns} +
                      "WHERE scenario = ?1 AND person = ?2 AND journey_key = ?3 AND state = 'active'");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_text(2, person).bind_text(3, key);
    return first_of(*st);
  }

  result<std::optional<journey_row>> get(std::int64_t id) override {
    auto st = prepare(std::string{journey_columns} + "WHERE id = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, id);
    return first_of(*st);
  }

  result<std::vector<journey_row>> active_for_person(std::string_view scenario, std::string_view person) override {
    auto st = prepare(std::string{journey_columns} + "WHERE (?1 = '' OR scenario = ?1) AND person = ?2 AND state = 'active' ORDER BY id");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_text(2, person);
    return detail::collect_rows<journey_row>(*st, read_journey);
  }

  result<void> move_to_person(std::int64_t id, std::string_view person, time_point now) override {
    auto st = prepare("UPDATE journeys SET person = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'active'");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, id).bind_text(2, person).bind_int(3, unix_millis(now));
    return st->run();
  }

  result<void> move_interest(std::string_view from, std::string_view to) override {
    auto st = prepare(R"sql(
        INSERT INTO product_interest (product_id, person, at)
        SELECT product_id, ?2, at FROM product_interest WHERE person = ?1 AND true
        ON CONFLICT (product_id, person) DO UPDATE SET at = max(at, excluded.at))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    if (auto r = st->bind_text(1, from).bind_text(2, to).run(); !r) return r;
    auto del = prepare("DELETE FROM product_interest WHERE person = ?1");
    if (!del) return tl::unexpected(std::move(del.error()));
    return del->bind_text(1, from).run();
  }

  result<std::optional<time_point>> last_started(std::string_view scenario, std::string_view person) override {
    auto st = prepare("SELECT max(started_at) FROM journeys WHERE scenario = ?1 AND person = ?2");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_text(2, person);
    auto row = st->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row || st->column_is_null(0)) return std::optional<time_point>{};
    return std::optional<time_point>{from_unix_millis(st->column_int(0))};
  }

  result<std::int64_t> insert(const journey_row& j) override {
    auto st = prepare(R"sql(
        INSERT INTO journeys (scenario, person, journey_key, state, next_step, step_name, anchor_at, next_at,
                              context, started_at, updated_at)
        VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?7, ?8, ?9, ?9))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, j.scenario)
        .bind_text(2, j.person)
        .bind_text(3, j.journey_key)
        .bind_int(4, std::int64_t{j.next_step})
        .bind_text(5, j.step_name)
        .bind_int(6, unix_millis(j.anchor_at))
        .bind_int(7, millis_or_none(j.next_at))
        .bind_text(8, j.context)
        .bind_int(9, unix_millis(j.started_at));
    if (auto r = st->run(); !r) return tl::unexpected(std::move(r.error()));
    return sqlite3_last_insert_rowid(db_.handle());
  }

  result<void> reschedule(const journey_row& j, time_point now) override {
    auto st = prepare(R"sql(
        UPDATE journeys SET next_step = ?2, step_name = ?3, anchor_at = ?4, next_at = ?5, context = ?6,
                            updated_at = ?7
        WHERE id = ?1 AND state = 'active')sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, j.id)
        .bind_int(2, std::int64_t{j.next_step})
        .bind_text(3, j.step_name)
        .bind_int(4, unix_millis(j.anchor_at))
        .bind_int(5, millis_or_none(j.next_at))
        .bind_text(6, j.context)
        .bind_int(7, unix_millis(now));
    return st->run();
  }

  result<void> end(std::int64_t id, journey_state state, std::string_view reason, time_point now) override {
    if (state == journey_state::active) return fail("invalid_journey_state", "end() needs a final state", "state");
    auto st = prepare(R"sql(
        UPDATE journeys SET state = ?2, end_reason = ?3, ended_at = ?4, updated_at = ?4, next_at = NULL
        WHERE id = ?1 AND state = 'active')sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, id).bind_text(2, to_string(state)).bind_text(3, reason).bind_int(4, unix_millis(now));
    return st->run();
  }

  result<std::vector<journey_row>> due(time_point now, std::size_t limit) override {
    auto st = prepare(std::string{journey_columns} +
                      "WHERE state = 'active' AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, unix_millis(now)).bind_int(2, static_cast<std::int64_t>(limit));
    return detail::collect_rows<journey_row>(*st, read_journey);
  }

  result<std::optional<time_point>> next_due() override {
    auto st = prepare("SELECT min(next_at) FROM journeys WHERE state = 'active'");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row || st->column_is_null(0)) return std::optional<time_point>{};
    return std::optional<time_point>{from_unix_millis(st->column_int(0))};
  }

  result<std::int64_t> count_active() override {
    auto st = prepare("SELECT count(*) FROM journeys WHERE state = 'active'");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    return st->column_int(0);
  }

  result<void> log(const journey_log_entry& e) override {
    auto st = prepare(R"sql(
        INSERT INTO journey_log (journey_id, scenario, step, person, subscription_id, outcome, reason, outbox_id, at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, e.journey_id)
        .bind_text(2, e.scenario)
        .bind_text(3, e.step)
        .bind_text(4, e.person)
        .bind_int(5, e.subscription_id)
        .bind_text(6, e.outcome)
        .bind_text(7, e.reason)
        .bind_int(8, e.outbox_id)
        .bind_int(9, unix_millis(e.at));
    return st->run();
  }

  result<std::vector<journey_row>> of_person(std::string_view person) override {
    auto st = prepare(std::string{journey_columns} + "WHERE person = ?1 ORDER BY started_at, id");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, person);
    return detail::collect_rows<journey_row>(*st, read_journey);
  }

  result<std::vector<journey_log_entry>> log_of(std::int64_t journey_id) override {
    auto st = prepare(std::string{log_columns} + "WHERE journey_id = ?1 ORDER BY at, id");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, journey_id);
    return detail::collect_rows<journey_log_entry>(*st, read_log_entry);
  }

  result<std::vector<journey_log_entry>> log_entries(std::string_view scenario, std::size_t limit) override {
    auto st = prepare(std::string{log_columns} + "WHERE ?1 = '' OR scenario = ?1 ORDER BY at, id LIMIT ?2");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_int(2, static_cast<std::int64_t>(limit));
    return detail::collect_rows<journey_log_entry>(*st, read_log_entry);
  }

  result<std::vector<outcome_count>> count_outcomes(std::string_view scenario, time_point from,
                                                    time_point to) override {
    auto st = prepare(R"sql(
        SELECT step, outcome, count(*) FROM journey_log WHERE scenario = ?1 AND at >= ?2 AND at < ?3
        GROUP BY step, outcome ORDER BY step, outcome)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_int(2, unix_millis(from)).bind_int(3, unix_millis(to));
    return detail::collect_rows<outcome_count>(*st, [](const detail::statement& r) {
      return outcome_count{r.column_text(0), r.column_text(1), r.column_int(2)};
    });
  }

  result<std::vector<step_reach>> count_step_reach(std::string_view scenario, time_point from,
                                                   time_point to) override {
    // The lines a step writes when it fires; 'deferred' (and the gate's own
    // 'suppressed' later) may follow for the same journey, 'restarted'
    // names the step a journey waits for, not one it reached.
    auto st = prepare(R"sql(
        SELECT step, count(DISTINCT journey_id) FROM journey_log
        WHERE scenario = ?1 AND at >= ?2 AND at < ?3 AND step <> '' AND outcome IN ('sent', 'suppressed', 'skipped')
        GROUP BY step ORDER BY step)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_int(2, unix_millis(from)).bind_int(3, unix_millis(to));
    return detail::collect_rows<step_reach>(*st, [](const detail::statement& r) {
      return step_reach{r.column_text(0), r.column_int(1)};
    });
  }

  result<std::size_t> cancel_queued_messages(std::int64_t journey_id, std::string_view reason, time_point now,
                                             std::optional<std::int64_t> subscription_id) override {
    auto st = prepare(R"sql(
        UPDATE outbox SET state = 'cancelled', last_reason = ?2, finished_at = ?3
        WHERE journey_id = ?1 AND state = 'queued' AND (?4 IS NULL OR subscription_id = ?4))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, journey_id).bind_text(2, reason).bind_int(3, unix_millis(now)).bind_int(4, subscription_id);
    if (auto r = st->run(); !r) return tl::unexpected(std::move(r.error()));
    return static_cast<std::size_t>(st->changes());
  }

  result<std::size_t> purge_ended(time_point before) override {
    auto journeys = prepare("DELETE FROM journeys WHERE state <> 'active' AND ended_at < ?1");
    if (!journeys) return tl::unexpected(std::move(journeys.error()));
    if (auto r = journeys->bind_int(1, unix_millis(before)).run(); !r) return tl::unexpected(std::move(r.error()));
    const auto removed = static_cast<std::size_t>(journeys->changes());
    auto log = prepare("DELETE FROM journey_log WHERE at < ?1");
    if (!log) return tl::unexpected(std::move(log.error()));
    if (auto r = log->bind_int(1, unix_millis(before)).run(); !r) return tl::unexpected(std::move(r.error()));
    return removed;
  }

  result<void> record_interest(std::string_view product_id, std::string_view person, time_point at) override {
    auto st = prepare(R"sql(
        INSERT INTO product_interest (product_id, person, at) VALUES (?1, ?2, ?3)
        ON CONFLICT (product_id, person) DO UPDATE SET at = max(at, excluded.at))sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, product_id).bind_text(2, person).bind_int(3, unix_millis(at));
    return st->run();
  }

  result<std::vector<std::string>> interested_persons(std::string_view product_id, time_point since,
                                                      std::size_t limit) override {
    auto st = prepare(
        "SELECT person FROM product_interest WHERE product_id = ?1 AND at >= ?2 ORDER BY person LIMIT ?3");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, product_id).bind_int(2, unix_millis(since)).bind_int(3, static_cast<std::int64_t>(limit));
    return detail::collect_rows<std::string>(*st, [](const detail::statement& s) { return s.column_text(0); });
  }

 private:
  static result<std::optional<journey_row>> first_of(detail::statement& st) {
    auto rows = detail::collect_rows<journey_row>(st, read_journey);
    if (!rows) return tl::unexpected(std::move(rows.error()));
    if (rows->empty()) return std::optional<journey_row>{};
    return std::optional<journey_row>{std::move(rows->front())};
  }

  result<detail::statement> prepare(std::string_view sql) { return detail::statement::prepare_cached(db_, sql); }

  database& db_;
};

}  // namespace

std::unique_ptr<journey_store> make_sqlite_journey_store(database& db) {
  return std::make_unique<sqlite_journey_store>(db);
}

}  // namespace webpushd::storage
