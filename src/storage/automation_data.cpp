// The scenario engine's rows about a person, for GDPR. A request names a
// handful of persons (a customer and their subscribers), so each statement
// runs once per person on the person indexes of schema v5.
#include "webpushd/storage/automation_data.hpp"

#include <algorithm>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

std::optional<time_point> optional_time(const detail::statement& st, int col) {
  const auto ms = st.column_optional_int(col);
  return ms ? std::optional<time_point>{from_unix_millis(*ms)} : std::nullopt;
}

result<std::vector<journey_log_entry>> journey_log(database& db, std::int64_t journey_id) {
  auto st = detail::statement::prepare(
      db.handle(),
      "SELECT journey_id, scenario, step, person, subscription_id, outcome, reason, outbox_id, at FROM journey_log "
      "WHERE journey_id = ? ORDER BY at, id");
  if (!st) return tl::unexpected(std::move(st.error()));
  st->bind_int(1, journey_id);
  std::vector<journey_log_entry> out;
  while (true) {
    auto row = st->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return out;
    journey_log_entry e;
    e.journey_id = st->column_int(0);
    e.scenario = st->column_text(1);
    e.step = st->column_text(2);
    e.person = st->column_text(3);
    e.subscription_id = st->column_optional_int(4);
    e.outcome = st->column_text(5);
    e.reason = st->column_text(6);
    e.outbox_id = st->column_optional_int(7);
    e.at = from_unix_millis(st->column_int(8));
    out.push_back(std::move(e));
  }
}

// Runs a one-parameter DELETE once per value; adds up the rows removed.
template <class Value, class Bind>
result<std::size_t> delete_each(database& db, std::string_view sql, const std::vector<Value>& values, Bind bind) {
  auto st = detail::statement::prepare(db.handle(), sql);
  if (!st) return tl::unexpected(std::move(st.error()));
  std::size_t removed = 0;
  for (const auto& v : values) {
    st->reset();
    bind(*st, v);
    if (auto r = st->run(); !r) return tl::unexpected(std::move(r.error()));
    removed += static_cast<std::size_t>(st->changes());
  }
  return removed;
}

}  // namespace

result<std::vector<person_journey>> list_person_journeys(database& db, const std::vector<std::string>& persons) {
  auto st = detail::statement::prepare(db.handle(), R"sql(
      SELECT id, scenario, person, journey_key, state, next_step, next_at, context, started_at, updated_at,
             ended_at, end_reason
      FROM journeys WHERE person = ? ORDER BY started_at, id)sql");
  if (!st) return tl::unexpected(std::move(st.error()));
  std::vector<person_journey> out;
  for (const auto& person : persons) {
    st->reset();
    st->bind_text(1, person);
    while (true) {
      auto row = st->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      person_journey j;
      j.id = st->column_int(0);
      j.scenario = st->column_text(1);
      j.person = st->column_text(2);
      j.journey_key = st->column_text(3);
      j.state = st->column_text(4);
      j.next_step = st->column_int(5);
      j.next_at = optional_time(*st, 6);
      j.context = st->column_text(7);
      j.started_at = from_unix_millis(st->column_int(8));
      j.updated_at = from_unix_millis(st->column_int(9));
      j.ended_at = optional_time(*st, 10);
      j.end_reason = st->column_text(11);
      out.push_back(std::move(j));
    }
  }
  for (auto& j : out) {
    auto log = journey_log(db, j.id);
    if (!log) return tl::unexpected(std::move(log.error()));
    j.log = std::move(*log);
  }
  // Several persons: one timeline.
  std::stable_sort(out.begin(), out.end(), [](const person_journey& a, const person_journey& b) {
    return a.started_at != b.started_at ? a.started_at < b.started_at : a.id < b.id;
  });
  return out;
}

result<std::vector<product_interest_entry>> list_person_interest(database& db,
                                                                 const std::vector<std::string>& persons) {
  auto st = detail::statement::prepare(
      db.handle(), "SELECT product_id, person, at FROM product_interest WHERE person = ? ORDER BY at, product_id");
  if (!st) return tl::unexpected(std::move(st.error()));
  std::vector<product_interest_entry> out;
  for (const auto& person : persons) {
    st->reset();
    st->bind_text(1, person);
    while (true) {
      auto row = st->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) break;
      out.push_back({st->column_text(0), st->column_text(1), from_unix_millis(st->column_int(2))});
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const product_interest_entry& a, const product_interest_entry& b) { return a.at < b.at; });
  return out;
}

result<person_data_erased> erase_person_data(database& db, const std::vector<std::string>& persons,
                                             const std::vector<std::int64_t>& subscription_ids) {
  transaction tx{db};
  if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
  const auto text = [](detail::statement& st, const std::string& v) { st.bind_text(1, v); };
  const auto number = [](detail::statement& st, std::int64_t v) { st.bind_int(1, v); };
  person_data_erased out;
  // The log first: its rows are found through the journeys they belong to.
  auto log = delete_each(db,
                         "DELETE FROM journey_log WHERE person = ?1 "
                         "OR journey_id IN (SELECT id FROM journeys WHERE person = ?1)",
                         persons, text);
  if (!log) return tl::unexpected(std::move(log.error()));
  auto sent = delete_each(db, "DELETE FROM journey_log WHERE subscription_id = ?1", subscription_ids, number);
  if (!sent) return tl::unexpected(std::move(sent.error()));
  auto journeys = delete_each(db, "DELETE FROM journeys WHERE person = ?1", persons, text);
  if (!journeys) return tl::unexpected(std::move(journeys.error()));
  auto interest = delete_each(db, "DELETE FROM product_interest WHERE person = ?1", persons, text);
  if (!interest) return tl::unexpected(std::move(interest.error()));
  if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
  out.log_entries = *log + *sent;
  out.journeys = *journeys;
  out.product_interest = *interest;
  return out;
}

}  // namespace webpushd::storage
