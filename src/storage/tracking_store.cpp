#include "webpushd/storage/tracking_store.hpp"

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

constexpr std::string_view push_columns = R"sql(
    SELECT o.id, o.subscription_id, o.source, o.variant, coalesce(s.state = 'erased', 0)
    FROM outbox o LEFT JOIN subscriptions s ON s.id = o.subscription_id )sql";

std::optional<touch> touch_at(const detail::statement& st, int col) {
  const auto id = st.column_optional_int(col);
  const auto at = st.column_optional_int(col + 1);
  if (!id || !at) return std::nullopt;
  return touch{*id, from_unix_millis(*at)};
}

class sqlite_tracking_store final : public tracking_store {
 public:
  explicit sqlite_tracking_store(database& db) : db_(db) {}

  result<std::optional<tracked_push>> find_delivery(std::string_view delivery_id) override {
    auto st = prepare(std::string{push_columns} + "WHERE o.delivery_id = ?1 ORDER BY o.id LIMIT 1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, delivery_id);
    return read_push(*st);
  }

  result<std::optional<tracked_push>> find_push(std::int64_t outbox_id) override {
    auto st = prepare(std::string{push_columns} + "WHERE o.id = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, outbox_id);
    return read_push(*st);
  }

  result<bool> was_clicked(std::int64_t outbox_id) override {
    auto st = prepare(R"sql(
        SELECT 1 FROM outbox o JOIN delivery_events e ON e.delivery_id = o.delivery_id AND e.type = 'clicked'
        WHERE o.id = ?1)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    return st->bind_int(1, outbox_id).step();
  }

  result<void> touch(std::int64_t subscription_id, touch_kind kind, std::int64_t outbox_id, time_point at) override {
    // The DO UPDATE's WHERE keeps a touch reported later than this one (a
    // report may arrive after a newer push's).
    auto st = prepare(kind == touch_kind::shown ? R"sql(
        INSERT INTO tracking_touches (subscription_id, shown_outbox_id, shown_at) VALUES (?1, ?2, ?3)
        ON CONFLICT (subscription_id) DO UPDATE SET shown_outbox_id = excluded.shown_outbox_id,
                                                    shown_at = excluded.shown_at
        WHERE shown_at IS NULL OR shown_at <= excluded.shown_at)sql"
                                                : R"sql(
        INSERT INTO tracking_touches (subscription_id, clicked_outbox_id, clicked_at) VALUES (?1, ?2, ?3)
        ON CONFLICT (subscription_id) DO UPDATE SET clicked_outbox_id = excluded.clicked_outbox_id,
                                                    clicked_at = excluded.clicked_at
        WHERE clicked_at IS NULL OR clicked_at <= excluded.clicked_at)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    return st->bind_int(1, subscription_id).bind_int(2, outbox_id).bind_int(3, unix_millis(at)).run();
  }

  result<std::vector<subscription_touches>> touches(const std::vector<std::int64_t>& subscription_ids) override {
    auto st = prepare(R"sql(
        SELECT shown_outbox_id, shown_at, clicked_outbox_id, clicked_at FROM tracking_touches
        WHERE subscription_id = ?1)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    std::vector<subscription_touches> out;
    for (const auto id : subscription_ids) {
      st->reset();
      auto row = st->bind_int(1, id).step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (*row) out.push_back(subscription_touches{id, touch_at(*st, 0), touch_at(*st, 2)});
    }
    return out;
  }

  result<bool> record_conversion(const conversion& c) override {
    auto st = prepare(R"sql(
        INSERT INTO conversions (event_id, kind, subscription_id, outbox_id, source, step, variant, touch_at,
                                 occurred_at, revenue, currency, attributed_at)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
        ON CONFLICT (event_id) DO NOTHING)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, c.event_id)
        .bind_text(2, c.kind)
        .bind_int(3, c.subscription_id)
        .bind_int(4, c.outbox_id)
        .bind_text(5, c.source)
        .bind_text(6, c.step)
        .bind_text(7, c.variant)
        .bind_int(8, unix_millis(c.touch_at))
        .bind_int(9, unix_millis(c.occurred_at))
        .bind_int(10, c.revenue)
        .bind_text(11, c.currency)
        .bind_int(12, unix_millis(c.attributed_at));
    if (auto r = st->run(); !r) return tl::unexpected(std::move(r.error()));
    return st->changes() == 1;
  }

  result<std::vector<conversion>> conversions_of(std::int64_t subscription_id) override {
    auto st = prepare(R"sql(
        SELECT event_id, kind, subscription_id, outbox_id, source, step, variant, touch_at, occurred_at, revenue,
               currency, attributed_at
        FROM conversions WHERE subscription_id = ?1 ORDER BY occurred_at, event_id)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, subscription_id);
    return detail::collect_rows<conversion>(*st, [](const detail::statement& r) {
      return conversion{r.column_text(0),  r.column_text(1),
                        r.column_int(2),   r.column_int(3),
                        r.column_text(4),  r.column_text(5),
                        r.column_text(6),  from_unix_millis(r.column_int(7)),
                        from_unix_millis(r.column_int(8)), r.column_int(9),
                        r.column_text(10), from_unix_millis(r.column_int(11))};
    });
  }

  result<std::vector<push_report>> reports_of(std::int64_t subscription_id) override {
    auto st = prepare(R"sql(
        SELECT o.id, e.type, coalesce(e.action, ''), e.at
        FROM outbox o JOIN delivery_events e ON e.delivery_id = o.delivery_id
        WHERE o.subscription_id = ?1 ORDER BY e.at, o.id, e.type)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, subscription_id);
    return detail::collect_rows<push_report>(*st, [](const detail::statement& r) {
      return push_report{r.column_int(0), r.column_text(1), r.column_text(2), from_unix_millis(r.column_int(3))};
    });
  }

 private:
  result<detail::statement> prepare(std::string_view sql) { return detail::statement::prepare_cached(db_, sql); }

  static result<std::optional<tracked_push>> read_push(detail::statement& st) {
    auto row = st.step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::optional<tracked_push>{};
    return std::optional<tracked_push>{
        tracked_push{st.column_int(0), st.column_int(1), st.column_text(2), st.column_text(3), st.column_int(4) != 0}};
  }

  database& db_;
};

}  // namespace

std::unique_ptr<tracking_store> make_sqlite_tracking_store(database& db) {
  return std::make_unique<sqlite_tracking_store>(db);
}

}  // namespace webpushd::storage
