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

// Retention: old events, and sooner those of people who are no
// subscriber. An event is about a known person when its customer is linked
// to any subscription, or its subscription id is a subscriber's that was
// not erased (unsubscribed ones count: they may come back, and their
// events are theirs to export or erase). `IN (SELECT …)` is evaluated once
// per statement, not per row.
constexpr const char* purge_events_sql = R"sql(
DELETE FROM events
WHERE occurred_at < ?1
   OR (occurred_at < ?2
       AND (customer_id IS NOT NULL OR subscription_id IS NOT NULL)
       AND (customer_id IS NULL
            OR customer_id NOT IN (SELECT customer_id FROM subscriptions WHERE customer_id IS NOT NULL))
       AND (subscription_id IS NULL
            OR subscription_id NOT IN (SELECT public_id FROM subscriptions
                                       WHERE public_id IS NOT NULL AND state <> 'erased')))
)sql";

// The same rule for product_interest, whose person is "c:<customer id>" or
// "s:<public id>".
constexpr const char* purge_interest_sql = R"sql(
DELETE FROM product_interest
WHERE at < ?1
   OR (at < ?2
       AND NOT (substr(person, 1, 2) = 'c:'
                AND substr(person, 3) IN (SELECT customer_id FROM subscriptions WHERE customer_id IS NOT NULL))
       AND NOT (substr(person, 1, 2) = 's:'
                AND substr(person, 3) IN (SELECT public_id FROM subscriptions
                                          WHERE public_id IS NOT NULL AND state <> 'erased')))
)sql";

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
    auto st = detail::statement::prepare_cached(
        db_,
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
    auto st = detail::statement::prepare_cached(db_, std::string{select_columns} + "WHERE id = ?");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, id);
    auto row = st->step();
    if (!row) return tl::unexpected(row.error());
    if (!*row) return std::optional<stored_event>{};
    return std::optional<stored_event>{read(*st)};
  }

  result<std::vector<stored_event>> list_for(const std::string& customer_id,
                                             const std::string& subscription_id) override {
    auto st = detail::statement::prepare_cached(db_, std::string{select_columns} + person_filter +
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
    auto st = detail::statement::prepare_cached(db_, std::string{"DELETE FROM events "} + person_filter);
    if (!st) return tl::unexpected(st.error());
    if (auto r = st->bind_text(1, customer_id).bind_text(2, subscription_id).run(); !r) {
      return tl::unexpected(r.error());
    }
    return static_cast<std::size_t>(st->changes());
  }

  result<std::size_t> purge(time_point before, time_point unknown_before) override {
    // Both tables or neither (a savepoint inside the writer's batch).
    transaction tx(db_);
    if (auto r = tx.begun(); !r) return tl::unexpected(r.error());
    auto events = detail::statement::prepare_cached(db_, purge_events_sql);
    if (!events) return tl::unexpected(events.error());
    if (auto r = events->bind_int(1, unix_millis(before)).bind_int(2, unix_millis(unknown_before)).run(); !r) {
      return tl::unexpected(r.error());
    }
    const auto purged = static_cast<std::size_t>(events->changes());
    auto interest = detail::statement::prepare_cached(db_, purge_interest_sql);
    if (!interest) return tl::unexpected(interest.error());
    if (auto r = interest->bind_int(1, unix_millis(before)).bind_int(2, unix_millis(unknown_before)).run(); !r) {
      return tl::unexpected(r.error());
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(r.error());
    return purged;
  }

 private:
  database& db_;
};

}  // namespace

std::unique_ptr<event_store> make_sqlite_event_store(database& db) {
  return std::make_unique<sqlite_event_store>(db);
}

}  // namespace webpushd::storage
