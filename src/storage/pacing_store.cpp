#include "webpushd/storage/pacing_store.hpp"

#include <cstring>

#include "statement.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {

std::string scenario_scope(std::string_view scenario) { return "s:" + std::string{scenario}; }
std::string category_scope(std::string_view category) { return "c:" + std::string{category}; }

std::pair<std::string, std::string> split_source(std::string_view source) {
  const auto slash = source.find('/');
  if (slash == std::string_view::npos) return {std::string{source}, std::string{}};
  return {std::string{source.substr(0, slash)}, std::string{source.substr(slash + 1)}};
}

namespace {

constexpr std::int64_t millis_per_hour = 3'600'000;
constexpr std::int64_t millis_per_day = 24 * millis_per_hour;

std::int64_t hour_of(time_point t) {
  const std::int64_t ms = unix_millis(t);
  return ms >= 0 ? ms / millis_per_hour : (ms - millis_per_hour + 1) / millis_per_hour;
}

// History blobs: 8-byte little-endian milliseconds, newest first. A blob
// rather than rows: one primary-key read and one write per decision, however
// many entries the caps need.
bytes pack(const std::vector<time_point>& times) {
  bytes out(times.size() * 8);
  for (std::size_t i = 0; i < times.size(); ++i) {
    auto v = static_cast<std::uint64_t>(unix_millis(times[i]));
    for (int b = 0; b < 8; ++b) out[i * 8 + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(v >> (8 * b));
  }
  return out;
}

std::vector<time_point> unpack(const bytes& blob) {
  std::vector<time_point> out;
  out.reserve(blob.size() / 8);
  for (std::size_t i = 0; i + 8 <= blob.size(); i += 8) {
    std::uint64_t v = 0;
    for (int b = 7; b >= 0; --b) v = (v << 8) | blob[i + static_cast<std::size_t>(b)];
    out.push_back(from_unix_millis(static_cast<std::int64_t>(v)));
  }
  return out;
}

class sqlite_pacing_store final : public pacing_store {
 public:
  explicit sqlite_pacing_store(database& db) : db_(db) {}

  result<std::vector<time_point>> history(std::int64_t subscription_id, std::string_view scope) override {
    auto st = prepare("SELECT sends FROM pacing_history WHERE subscription_id = ?1 AND scope = ?2");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->bind_int(1, subscription_id).bind_text(2, scope).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::vector<time_point>{};
    return unpack(st->column_blob(0));
  }

  result<void> save_history(std::int64_t subscription_id, std::string_view scope,
                            const std::vector<time_point>& newest_first) override {
    auto st = prepare(R"sql(
        INSERT INTO pacing_history (subscription_id, scope, sends) VALUES (?1, ?2, ?3)
        ON CONFLICT (subscription_id, scope) DO UPDATE SET sends = excluded.sends)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    return st->bind_int(1, subscription_id).bind_text(2, scope).bind_blob(3, pack(newest_first)).run();
  }

  result<void> count(std::string_view source, std::string_view step, std::string_view variant, time_point at,
                     std::string_view metric, std::int64_t n) override {
    auto st = prepare(R"sql(
        INSERT INTO pacing_counters (source, step, variant, hour, metric, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
        ON CONFLICT (source, step, variant, hour, metric) DO UPDATE SET n = n + excluded.n)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    return st->bind_text(1, source)
        .bind_text(2, step)
        .bind_text(3, variant)
        .bind_int(4, hour_of(at))
        .bind_text(5, metric)
        .bind_int(6, n)
        .run();
  }

  result<std::vector<counter_total>> totals(std::string_view source, time_point from, time_point to) override {
    auto st = prepare(R"sql(
        SELECT step, variant, metric, sum(n) FROM pacing_counters
        WHERE source = ?1 AND hour >= ?2 AND hour < ?3
        GROUP BY step, variant, metric ORDER BY step, variant, metric)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, source).bind_int(2, hour_of(from)).bind_int(3, hour_of(to));
    return detail::collect_rows<counter_total>(*st, [](const detail::statement& r) {
      return counter_total{r.column_text(0), r.column_text(1), r.column_text(2), r.column_int(3)};
    });
  }

  result<std::vector<daily_total>> daily_totals(std::string_view source, time_point from, time_point to) override {
    // The day is the floor of hour / 24; SQLite's / and % truncate toward
    // zero, so the remainder is made non-negative first (hours before 1970).
    auto st = prepare(R"sql(
        SELECT (hour - ((hour % 24) + 24) % 24) / 24 AS day, metric, sum(n) FROM pacing_counters
        WHERE source = ?1 AND hour >= ?2 AND hour < ?3
        GROUP BY day, metric ORDER BY day, metric)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, source).bind_int(2, hour_of(from)).bind_int(3, hour_of(to));
    return detail::collect_rows<daily_total>(*st, [](const detail::statement& r) {
      return daily_total{from_unix_millis(r.column_int(0) * millis_per_day), r.column_text(1),
                         r.column_int(2)};
    });
  }

  result<level_state> level(std::string_view scenario) override {
    auto st = prepare("SELECT level, changed_at FROM pacing_levels WHERE scenario = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->bind_text(1, scenario).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return level_state{};
    return level_state{static_cast<int>(st->column_int(0)), from_unix_millis(st->column_int(1))};
  }

  result<void> change_level(const level_change& c) override {
    auto set = prepare(R"sql(
        INSERT INTO pacing_levels (scenario, level, changed_at) VALUES (?1, ?2, ?3)
        ON CONFLICT (scenario) DO UPDATE SET level = excluded.level, changed_at = excluded.changed_at)sql");
    if (!set) return tl::unexpected(std::move(set.error()));
    if (auto r = set->bind_text(1, c.scenario).bind_int(2, c.to_level).bind_int(3, unix_millis(c.at)).run(); !r) {
      return r;
    }
    auto log = prepare(R"sql(
        INSERT INTO pacing_level_log (scenario, at, from_level, to_level, sends, unsubscribes, reason)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7))sql");
    if (!log) return tl::unexpected(std::move(log.error()));
    return log->bind_text(1, c.scenario)
        .bind_int(2, unix_millis(c.at))
        .bind_int(3, c.from_level)
        .bind_int(4, c.to_level)
        .bind_int(5, c.sends)
        .bind_int(6, c.unsubscribes)
        .bind_text(7, c.reason)
        .run();
  }

  result<std::vector<level_change>> level_log(std::string_view scenario, std::size_t limit) override {
    auto st = prepare(R"sql(
        SELECT scenario, at, from_level, to_level, sends, unsubscribes, reason FROM pacing_level_log
        WHERE scenario = ?1 ORDER BY at DESC, id DESC LIMIT ?2)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, scenario).bind_int(2, static_cast<std::int64_t>(limit));
    return detail::collect_rows<level_change>(*st, [](const detail::statement& r) {
      return level_change{r.column_text(0),      from_unix_millis(r.column_int(1)), static_cast<int>(r.column_int(2)),
                          static_cast<int>(r.column_int(3)), r.column_int(4), r.column_int(5), r.column_text(6)};
    });
  }

  result<std::optional<unsubscribe_attribution>> attribute_unsubscribe(std::int64_t subscription_id,
                                                                        std::string_view kind,
                                                                        std::string_view category, time_point now,
                                                                        std::chrono::milliseconds window) override {
    // The push most likely to have caused it: the latest one a push service
    // accepted (finished as 'sent') within the window.
    auto last = prepare(R"sql(
        SELECT id, source, finished_at, variant FROM outbox
        WHERE subscription_id = ?1 AND state = 'sent' AND finished_at >= ?2 AND finished_at <= ?3
        ORDER BY finished_at DESC, id DESC LIMIT 1)sql");
    if (!last) return tl::unexpected(std::move(last.error()));
    const std::int64_t now_ms = unix_millis(now);
    auto row = last->bind_int(1, subscription_id).bind_int(2, now_ms - window.count()).bind_int(3, now_ms).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row) return std::optional<unsubscribe_attribution>{};
    unsubscribe_attribution a;
    a.subscription_id = subscription_id;
    a.at = now;
    a.kind = std::string{kind};
    a.category = std::string{category};
    a.outbox_id = last->column_int(0);
    std::tie(a.source, a.step) = split_source(last->column_text(1));
    a.sent_at = from_unix_millis(last->column_int(2));
    a.variant = last->column_text(3);
    last->reset();

    auto insert = prepare(R"sql(
        INSERT INTO unsubscribe_attributions (subscription_id, at, kind, category, source, step, outbox_id, sent_at,
                                              variant)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql");
    if (!insert) return tl::unexpected(std::move(insert.error()));
    insert->bind_int(1, subscription_id)
        .bind_int(2, now_ms)
        .bind_text(3, a.kind)
        .bind_text_or_null(4, a.category)
        .bind_text(5, a.source)
        .bind_text(6, a.step)
        .bind_int(7, a.outbox_id)
        .bind_int(8, unix_millis(a.sent_at))
        .bind_text(9, a.variant);
    if (auto r = insert->run(); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = count(a.source, a.step, a.variant, now, "unsubscribed:" + a.kind, 1); !r) return tl::unexpected(std::move(r.error()));
    return std::optional<unsubscribe_attribution>{std::move(a)};
  }

  result<std::vector<unsubscribe_attribution>> attributions(std::string_view source, time_point from, time_point to,
                                                            std::size_t limit) override {
    auto st = prepare(R"sql(
        SELECT subscription_id, at, kind, coalesce(category, ''), source, step, variant, outbox_id, sent_at
        FROM unsubscribe_attributions WHERE (?1 = '' OR source = ?1) AND at >= ?2 AND at < ?3
        ORDER BY at DESC, id DESC LIMIT ?4)sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, source).bind_int(2, unix_millis(from)).bind_int(3, unix_millis(to)).bind_int(
        4, static_cast<std::int64_t>(limit));
    return detail::collect_rows<unsubscribe_attribution>(*st, [](const detail::statement& r) {
      return unsubscribe_attribution{r.column_int(0),  from_unix_millis(r.column_int(1)), r.column_text(2),
                                     r.column_text(3), r.column_text(4), r.column_text(5), r.column_text(6),
                                     r.column_int(7),  from_unix_millis(r.column_int(8))};
    });
  }

 private:
  result<detail::statement> prepare(std::string_view sql) { return detail::statement::prepare_cached(db_, sql); }

  database& db_;
};

}  // namespace

std::unique_ptr<pacing_store> make_sqlite_pacing_store(database& db) {
  return std::make_unique<sqlite_pacing_store>(db);
}

}  // namespace webpushd::storage
