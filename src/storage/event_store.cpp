#include "webpushd/storage/event_store.hpp"

#include <sqlite3.h>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

constexpr std::string_view select_columns =
    "SELECT id, type, customer_id, subscription_id, occurred_at, received_at, properties FROM events ";
// A person's events: by customer id or by subscription id; an empty id
// matches nothing (events without one store NULL or '').
constexpr const char* person_filter =
    "WHERE (?1 <> '' AND customer_id = ?1) OR (?2 <> '' AND subscription_id = ?2)";

stored_event read(const detail::statement& st) {
  return stored_event{st.column_text(0),
                      st.column_text(1),
                      st.column_text(2),
                      st.column_text(3),
                      from_unix_millis(st.column_int(4)),
                      from_unix_millis(st.column_int(5)),
                      st.column_text(6)};
}

class sqlite_event_store final : public event_store {
 public:
  explicit sqlite_event_store(database& db) : db_(db) {}

  result<bool> insert_if_new(const stored_event& e) override {
    auto st = detail::statement::prepare(
        db_.handle(),
        "INSERT INTO events (id, type, customer_id, subscription_id, occurred_at, received_at, properties) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, e.id)
        .bind_text(2, e.type)
        .bind_text_or_null(3, e.customer_id)
        .bind_text_or_null(4, e.subscription_id)
        .bind_int(5, unix_millis(e.occurred_at))
        .bind_int(6, unix_millis(e.received_at))
        .bind_text(7, e.properties);
    if (auto r = st->run(); !r) return tl::unexpected(r.error());
    return sqlite3_changes(db_.handle()) == 1;
  }

  result<std::optional<stored_event>> find(const std::string& id) override {
    auto st = detail::statement::prepare(db_.handle(), std::string{select_columns} + "WHERE id = ?");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, id);
    auto row = st->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<stored_event>{};
    return std::optional<stored_event>{read(*st)};
  }

  result<std::vector<stored_event>> list_for(const std::string& customer_id,
                                             const std::string& subscription_id) override {
    auto st = detail::statement::prepare(db_.handle(), std::string{select_columns} + person_filter +
                                                           " ORDER BY occurred_at, id");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, customer_id).bind_text(2, subscription_id);
    std::vector<stored_event> out;
    while (true) {
      auto row = st->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) return out;
      out.push_back(read(*st));
    }
  }

  result<std::size_t> erase_for(const std::string& customer_id, const std::string& subscription_id) override {
    auto st = detail::statement::prepare(db_.handle(), std::string{"DELETE FROM events "} + person_filter);
    if (!st) return tl::unexpected(st.error());
    if (auto r = st->bind_text(1, customer_id).bind_text(2, subscription_id).run(); !r) {
      return tl::unexpected(r.error());
    }
    return static_cast<std::size_t>(st->changes());
  }

 private:
  database& db_;
};

}  // namespace

std::unique_ptr<event_store> make_sqlite_event_store(database& db) {
  return std::make_unique<sqlite_event_store>(db);
}

}  // namespace webpushd::storage
