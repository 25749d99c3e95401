#include "webpushd/storage/delivery_event_store.hpp"

#include <sqlite3.h>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

class sqlite_delivery_event_store final : public delivery_event_store {
 public:
  explicit sqlite_delivery_event_store(database& db) : db_(db) {}

  result<bool> record(const delivery_event& e) override {
    auto st = detail::statement::prepare(db_.handle(),
                                 "INSERT INTO delivery_events (delivery_id, type, action, at) VALUES (?, ?, ?, ?) "
                                 "ON CONFLICT (delivery_id, type) DO NOTHING");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, e.delivery_id).bind_text(2, e.type).bind_text_or_null(3, e.action).bind_int(4, unix_millis(e.at));
    if (auto r = st->run(); !r) return tl::unexpected(r.error());
    return sqlite3_changes(db_.handle()) == 1;
  }

  result<std::vector<delivery_event>> for_delivery(const std::string& delivery_id) override {
    auto st = detail::statement::prepare(db_.handle(),
                                 "SELECT delivery_id, type, action, at FROM delivery_events WHERE delivery_id = ? "
                                 "ORDER BY at, type");
    if (!st) return tl::unexpected(st.error());
    st->bind_text(1, delivery_id);
    std::vector<delivery_event> out;
    while (true) {
      auto row = st->step();
      if (!row) return tl::unexpected(row.error());
      if (!*row) break;
      out.push_back({st->column_text(0), st->column_text(1), st->column_text(2), from_unix_millis(st->column_int(3))});
    }
    return out;
  }

 private:
  database& db_;
};

}  // namespace

std::unique_ptr<delivery_event_store> make_sqlite_delivery_event_store(database& db) {
  return std::make_unique<sqlite_delivery_event_store>(db);
}

}  // namespace webpushd::storage
