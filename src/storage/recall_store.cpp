#include "webpushd/storage/recall_store.hpp"

#include <array>

#include "statement.hpp"
#include "webpushd/storage/campaign_store.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

constexpr std::array recall_state_names{"requested", "recalled", "too_late", "unsupported", "failed"};

// Only a message a push service accepted with a Location can be recalled,
// and only while it may still be waiting for the device: past expires_at
// the push service has dropped it. A message with a recall keeps its first.
constexpr std::string_view recallable = R"sql(
    state = 'sent' AND location IS NOT NULL AND expires_at > ?3 AND recall_state IS NULL)sql";

class sqlite_recall_store final : public recall_store {
 public:
  explicit sqlite_recall_store(database& db) : db_(db) {}

  result<std::size_t> request_for_journey(std::int64_t journey_id, std::string_view reason,
                                          time_point now) override {
    auto st = request("journey_id = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_int(1, journey_id);
    return run_request(*st, reason, now);
  }

  result<std::size_t> request_for_campaign(std::string_view campaign_id, std::string_view reason,
                                           time_point now) override {
    auto st = request("source = ?1");  // the outbox's index on source
    if (!st) return tl::unexpected(std::move(st.error()));
    st->bind_text(1, campaign_source(campaign_id));
    return run_request(*st, reason, now);
  }

  result<std::vector<recall_job>> claim_due(time_point now, std::chrono::milliseconds lease,
                                            std::size_t limit) override {
    if (limit == 0) return std::vector<recall_job>{};
    const std::int64_t now_ms = unix_millis(now);

    // The dispatcher asks on every pass and there is rarely anything to
    // recall: a read of the partial index outbox_recall answers that without
    // taking the write lock the claim needs.
    auto any = prepare(
        "SELECT EXISTS (SELECT 1 FROM outbox WHERE recall_state = 'requested' AND next_attempt_at <= ?1)");
    if (!any) return tl::unexpected(std::move(any.error()));
    auto due = any->bind_int(1, now_ms).step();
    if (!due) return tl::unexpected(std::move(due.error()));
    if (!*due || any->column_int(0) == 0) return std::vector<recall_job>{};
    any->reset();  // ends the read before the write transaction

    // IMMEDIATE: another connection's claim waits for this one and then sees
    // these recalls leased.
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto select = prepare(R"sql(
        SELECT o.id, o.location, o.expires_at, s.endpoint
        FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
        WHERE o.recall_state = 'requested' AND o.next_attempt_at <= ?1
        ORDER BY o.id
        LIMIT ?2)sql");
    if (!select) return tl::unexpected(std::move(select.error()));
    select->bind_int(1, now_ms).bind_int(2, static_cast<std::int64_t>(limit));
    // An erasure wipes the Location (the endpoint too): such a job fails the
    // origin check and is recorded as failed, with no request.
    auto jobs = detail::collect_rows<recall_job>(*select, [](const detail::statement& row) {
      return recall_job{row.column_int(0), row.column_text(1), row.column_text(3), from_unix_millis(row.column_int(2))};
    });
    if (!jobs) return tl::unexpected(std::move(jobs.error()));
    select->reset();  // ends the read before the updates

    auto lease_row = prepare(R"sql(
        UPDATE outbox SET next_attempt_at = ?2 WHERE id = ?1 AND recall_state = 'requested')sql");
    if (!lease_row) return tl::unexpected(std::move(lease_row.error()));
    const std::int64_t until_ms = now_ms + lease.count();
    for (const auto& job : *jobs) {
      lease_row->reset();
      if (auto r = lease_row->bind_int(1, job.message_id).bind_int(2, until_ms).run(); !r) {
        return tl::unexpected(std::move(r.error()));
      }
    }
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return jobs;
  }

  result<void> record(const std::vector<recall_result>& results) override {
    // Validate everything first: one bad result must not leave half a batch.
    for (const auto& r : results) {
      if (r.new_state == recall_state::requested && !r.retry_at) {
        return fail("invalid_recall_result",
                    "message " + std::to_string(r.message_id) + ": a retried recall needs retry_at", "retry_at");
      }
    }
    if (results.empty()) return {};

    transaction tx{db_};
    if (auto r = tx.begun(); !r) return r;
    // `AND recall_state = 'requested'` makes a stale outcome (a recall
    // claimed twice after its lease ran out) harmless: the first one stands.
    auto update = prepare(R"sql(
        UPDATE outbox SET recall_state = ?2, recall_reason = ?3, next_attempt_at = coalesce(?4, next_attempt_at)
        WHERE id = ?1 AND recall_state = 'requested')sql");
    if (!update) return tl::unexpected(std::move(update.error()));
    for (const auto& r : results) {
      update->reset();
      update->bind_int(1, r.message_id)
          .bind_text(2, to_string(r.new_state))
          .bind_text_or_null(3, r.reason)
          .bind_int(4, r.retry_at ? std::optional<std::int64_t>{unix_millis(*r.retry_at)} : std::nullopt);
      if (auto done = update->run(); !done) return tl::unexpected(std::move(done.error()));
    }
    return tx.commit();
  }

  result<std::size_t> release_claims(time_point now) override {
    // min(): a recall due earlier (a clock set back) keeps its place.
    auto st = prepare(R"sql(
        UPDATE outbox SET next_attempt_at = min(next_attempt_at, ?1) WHERE recall_state = 'requested')sql");
    if (!st) return tl::unexpected(std::move(st.error()));
    if (auto r = st->bind_int(1, unix_millis(now)).run(); !r) return tl::unexpected(std::move(r.error()));
    return static_cast<std::size_t>(st->changes());
  }

  result<std::optional<time_point>> next_due() override {
    auto st = prepare("SELECT min(next_attempt_at) FROM outbox WHERE recall_state = 'requested'");
    if (!st) return tl::unexpected(std::move(st.error()));
    return detail::optional_time(*st);
  }

  result<std::optional<recall_status>> get(std::int64_t message_id) override {
    auto st = prepare("SELECT recall_state, coalesce(recall_reason, '') FROM outbox WHERE id = ?1");
    if (!st) return tl::unexpected(std::move(st.error()));
    auto row = st->bind_int(1, message_id).step();
    if (!row) return tl::unexpected(std::move(row.error()));
    if (!*row || st->column_is_null(0)) return std::optional<recall_status>{};
    const auto state = parse_recall_state(st->column_text(0));
    if (!state) return fail("storage_error", "message " + std::to_string(message_id) + " has an unknown recall state");
    return std::optional<recall_status>{recall_status{*state, st->column_text(1)}};
  }

 private:
  result<detail::statement> prepare(std::string_view sql) { return detail::statement::prepare_cached(db_, sql); }

  // The UPDATE that requests recalls of the messages `which` selects (?1).
  result<detail::statement> request(std::string_view which) {
    return prepare(std::string{R"sql(
        UPDATE outbox SET recall_state = 'requested', recall_reason = ?2, next_attempt_at = ?3
        WHERE )sql"} + std::string{which} + " AND" + std::string{recallable});
  }

  static result<std::size_t> run_request(detail::statement& st, std::string_view reason, time_point now) {
    st.bind_text(2, reason).bind_int(3, unix_millis(now));
    if (auto r = st.run(); !r) return tl::unexpected(std::move(r.error()));
    return static_cast<std::size_t>(st.changes());
  }

  database& db_;
};

}  // namespace

const char* to_string(recall_state s) noexcept { return recall_state_names[static_cast<std::size_t>(s)]; }

std::optional<recall_state> parse_recall_state(std::string_view text) noexcept {
  return detail::enum_named<recall_state>(recall_state_names, text);
}

std::unique_ptr<recall_store> make_sqlite_recall_store(database& db) {
  return std::make_unique<sqlite_recall_store>(db);
}

}  // namespace webpushd::storage
