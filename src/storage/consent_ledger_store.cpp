#include "webpushd/storage/consent_ledger_store.hpp"

#include <algorithm>
#include <array>
#include <cstdio>

#include "statement.hpp"
#include "webpushd/core/bytes.hpp"
#include "webpushd/crypto/primitives.hpp"
#include "webpushd/storage/database.hpp"

namespace webpushd::storage {
namespace {

constexpr std::array action_names{"grant", "change", "withdraw", "unsubscribe", "erase", "resubscribe"};
constexpr std::string_view domain_tag = "webpushd.consent_ledger.v1";

// Appends F(x) = u32be(len(x)) ‖ x.
void put_field(bytes& out, std::string_view field) {
  const auto n = static_cast<std::uint32_t>(field.size());
  out.push_back(static_cast<std::uint8_t>(n >> 24));
  out.push_back(static_cast<std::uint8_t>(n >> 16));
  out.push_back(static_cast<std::uint8_t>(n >> 8));
  out.push_back(static_cast<std::uint8_t>(n));
  const auto b = as_bytes(field);
  out.insert(out.end(), b.begin(), b.end());
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += ch;
    }
  }
  out += '"';
}

ledger_hash to_hash(const bytes& b) {
  ledger_hash h{};
  std::copy_n(b.begin(), std::min(b.size(), h.size()), h.begin());
  return h;
}

constexpr std::string_view entry_columns = R"sql(
    seq, subscription_public_id, at, action, categories_before, categories_after, source, text_version,
    ip_truncated, prev_hash, hash)sql";

ledger_entry read_entry(const detail::statement& s) {
  ledger_entry e;
  e.seq = s.column_int(0);
  e.subscription_public_id = s.column_text(1);
  e.at_ms = s.column_int(2);
  e.action = s.column_text(3);
  e.categories_before = s.column_text(4);
  e.categories_after = s.column_text(5);
  e.source = s.column_text(6);
  e.text_version = s.column_text(7);
  e.ip_truncated = s.column_text(8);
  e.prev_hash = to_hash(s.column_blob(9));
  e.hash = to_hash(s.column_blob(10));
  return e;
}

class sqlite_consent_ledger_store final : public consent_ledger_store {
 public:
  explicit sqlite_consent_ledger_store(database& db) : db_(db) {}

  result<ledger_entry> append(const new_ledger_entry& in) override {
    // The write lock (BEGIN IMMEDIATE, or the caller's batch) makes reading
    // the head and inserting after it one step: no other writer can slip an
    // entry in between and fork the chain.
    transaction tx{db_};
    if (auto r = tx.begun(); !r) return tl::unexpected(std::move(r.error()));
    auto head = detail::statement::prepare(db_.handle(),
                                           "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1");
    if (!head) return tl::unexpected(std::move(head.error()));
    auto row = head->step();
    if (!row) return tl::unexpected(std::move(row.error()));
    ledger_entry e;
    ledger_hash prev{};
    e.seq = 1;
    if (*row) {
      e.seq = head->column_int(0) + 1;
      prev = to_hash(head->column_blob(1));
    }
    head->reset();
    e.subscription_public_id = in.subscription_public_id;
    e.at_ms = unix_millis(in.at);
    e.action = to_string(in.action);
    e.categories_before = canonical_categories(in.categories_before);
    e.categories_after = canonical_categories(in.categories_after);
    e.source = in.source;
    e.text_version = in.text_version;
    e.ip_truncated = in.ip_truncated;
    e.prev_hash = prev;
    e.hash = compute_ledger_hash(prev, e);

    auto insert = detail::statement::prepare(db_.handle(), R"sql(
        INSERT INTO consent_ledger (seq, subscription_public_id, at, action, categories_before, categories_after,
                                    source, text_version, ip_truncated, prev_hash, hash)
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11))sql");
    if (!insert) return tl::unexpected(std::move(insert.error()));
    insert->bind_int(1, e.seq)
        .bind_text(2, e.subscription_public_id)
        .bind_int(3, e.at_ms)
        .bind_text(4, e.action)
        .bind_text(5, e.categories_before)
        .bind_text(6, e.categories_after)
        .bind_text(7, e.source)
        .bind_text(8, e.text_version)
        .bind_text(9, e.ip_truncated)
        .bind_blob(10, e.prev_hash)
        .bind_blob(11, e.hash);
    if (auto r = insert->run(); !r) return tl::unexpected(std::move(r.error()));
    if (auto r = tx.commit(); !r) return tl::unexpected(std::move(r.error()));
    return e;
  }

  result<void> for_each(const std::function<bool(const ledger_entry&)>& visit, std::int64_t after_seq) override {
    auto stmt = detail::statement::prepare(
        db_.handle(), "SELECT " + std::string{entry_columns} + " FROM consent_ledger WHERE seq > ?1 ORDER BY seq");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    stmt->bind_int(1, after_seq);
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row || !visit(read_entry(*stmt))) return {};
    }
  }

  result<std::vector<ledger_entry>> for_subscription(std::string_view public_id) override {
    auto stmt = detail::statement::prepare(db_.handle(), "SELECT " + std::string{entry_columns} +
                                                             " FROM consent_ledger WHERE subscription_public_id = ?1"
                                                             " ORDER BY seq");
    if (!stmt) return tl::unexpected(std::move(stmt.error()));
    stmt->bind_text(1, public_id);
    std::vector<ledger_entry> entries;
    for (;;) {
      auto row = stmt->step();
      if (!row) return tl::unexpected(std::move(row.error()));
      if (!*row) return entries;
      entries.push_back(read_entry(*stmt));
    }
  }

  result<ledger_verification> verify() override {
    ledger_verification v;
    ledger_hash prev{};
    std::int64_t expected_seq = 1;
    auto walked = for_each([&](const ledger_entry& e) {
      ++v.entries;
      if (e.seq != expected_seq) {
        v.problem = "seq " + std::to_string(e.seq) + " follows seq " + std::to_string(expected_seq - 1) +
                    ": entries are missing";
      } else if (e.prev_hash != prev) {
        v.problem = "prev_hash " + hex_encode(e.prev_hash) + " is not the previous entry's hash " + hex_encode(prev);
      } else if (const auto recomputed = compute_ledger_hash(prev, e); recomputed != e.hash) {
        v.problem = "stored hash " + hex_encode(e.hash) + " differs from the recomputed " + hex_encode(recomputed) +
                    ": the entry's fields were changed";
      } else if (!parse_consent_action(e.action)) {
        v.problem = "unknown action '" + e.action + "'";
      }
      if (!v.problem.empty()) {
        v.first_broken_seq = e.seq;
        return false;
      }
      prev = e.hash;
      v.head = e.hash;
      ++expected_seq;
      return true;
    }, 0);
    if (!walked) return tl::unexpected(std::move(walked.error()));
    return v;
  }

 private:
  database& db_;
};

}  // namespace

const char* to_string(consent_action a) noexcept { return action_names[static_cast<std::size_t>(a)]; }

std::optional<consent_action> parse_consent_action(std::string_view text) noexcept {
  return detail::enum_named<consent_action>(action_names, text);
}

std::string canonical_categories(std::vector<std::string> categories) {
  std::sort(categories.begin(), categories.end());
  categories.erase(std::unique(categories.begin(), categories.end()), categories.end());
  std::string out = "[";
  for (std::size_t i = 0; i < categories.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, categories[i]);
  }
  out += ']';
  return out;
}

ledger_hash compute_ledger_hash(const ledger_hash& prev_hash, const ledger_entry& e) {
  bytes message(prev_hash.begin(), prev_hash.end());
  put_field(message, domain_tag);
  put_field(message, std::to_string(e.seq));
  put_field(message, e.subscription_public_id);
  put_field(message, std::to_string(e.at_ms));
  put_field(message, e.action);
  put_field(message, e.categories_before);
  put_field(message, e.categories_after);
  put_field(message, e.source);
  put_field(message, e.text_version);
  put_field(message, e.ip_truncated);
  return crypto::sha256(message);
}

std::unique_ptr<consent_ledger_store> make_sqlite_consent_ledger_store(database& db) {
  return std::make_unique<sqlite_consent_ledger_store>(db);
}

}  // namespace webpushd::storage
