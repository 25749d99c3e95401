// The scenario engine's rows about a person, for GDPR. A request names a
// handful of persons (a customer and their subscribers), so each statement
// runs once per person on the person indexes of schema v5.
#include "webpushd/storage/automation_data.hpp"

#include <algorithm>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

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
  auto journeys = make_sqlite_journey_store(db);
  std::vector<person_journey> out;
  for (const auto& person : persons) {
    auto rows = journeys->of_person(person);
    if (!rows) return tl::unexpected(std::move(rows.error()));
    for (auto& row : *rows) {
      auto log = journeys->log_of(row.id);
      if (!log) return tl::unexpected(std::move(log.error()));
      out.push_back(person_journey{std::move(row), std::move(*log)});
    }
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
  // Pacing's per-device history, the unsubscribes attributed to the
  // device, its latest shown and clicked pushes and the purchases credited
  // to them; the hourly counters hold no person and stay.
  for (const auto* sql : {"DELETE FROM pacing_history WHERE subscription_id = ?1",
                          "DELETE FROM unsubscribe_attributions WHERE subscription_id = ?1",
                          "DELETE FROM tracking_touches WHERE subscription_id = ?1",
                          "DELETE FROM conversions WHERE subscription_id = ?1"}) {
    if (auto r = delete_each(db, sql, subscription_ids, number); !r) return tl::unexpected(std::move(r.error()));
  }
  if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
  out.log_entries = *log + *sent;
  out.journeys = *journeys;
  out.product_interest = *interest;
  return out;
}

}  // namespace webpushd::storage
