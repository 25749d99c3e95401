#pragma once
/// @file
/// @brief The consent ledger: an append-only, hash-chained record of every
/// grant, change and withdrawal of consent, and of unsubscriptions and
/// erasures. It outlives erasure: it holds no endpoint, key, customer id or
/// full IP, only the subscriber's public id, so it can prove what was
/// consented to and that an erasure happened without keeping the person's data.
///
/// ## The chain (for auditors)
///
/// Entries are numbered by `seq` (1, 2, 3 … without gaps). For entry n:
///
///     hash_n = SHA-256( prev_hash_n ‖ F("webpushd.consent_ledger.v1") ‖ F(seq) ‖
///                       F(subscription_public_id) ‖ F(at) ‖ F(action) ‖
///                       F(categories_before) ‖ F(categories_after) ‖ F(source) ‖
///                       F(text_version) ‖ F(ip_truncated) )
///     prev_hash_1 = 32 zero bytes;  prev_hash_n = hash_(n-1)
///
/// where F(x) is the byte length of x as a 4-byte big-endian unsigned integer
/// followed by the bytes of x (UTF-8). Integers (`seq`, `at` in unix
/// milliseconds) are written in base 10 ASCII, '-' for a negative value, no
/// leading zeros. The length prefixes make the encoding unambiguous: no two
/// different entries serialise to the same bytes. Columns are exactly as
/// stored in table `consent_ledger` (categories as the canonical JSON array
/// text: sorted, unique, no spaces, e.g. `["cart_reminders","promotions"]`).
/// In Python:
///
///     F = lambda b: len(b).to_bytes(4, "big") + b
///     h = sha256(prev + F(b"webpushd.consent_ledger.v1") + F(str(seq).encode()) + …)
///
/// A hash chain detects a changed, inserted or removed entry anywhere but at
/// the very end; truncation of the newest entries is detected only against a
/// head hash recorded elsewhere (verify() reports the head for that purpose).
/// Triggers in the schema also refuse UPDATE and DELETE on the table.

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"

namespace webpushd::storage {

class database;

/// @brief A SHA-256 value of the chain.
using ledger_hash = std::array<std::uint8_t, 32>;

/// @brief What an entry records.
enum class consent_action {
  grant,        ///< first consent (a new subscriber)
  change,       ///< categories or consent text version changed
  withdraw,     ///< every category withdrawn (still subscribed)
  unsubscribe,  ///< the subscriber unsubscribed (or was merged into another)
  erase,        ///< personal data erased on request
  resubscribe,  ///< pushsubscriptionchange: new endpoint, same subscriber
};

/// @brief Text form, as stored ("grant", …).
const char* to_string(consent_action a) noexcept;
/// @brief The inverse of to_string.
std::optional<consent_action> parse_consent_action(std::string_view text) noexcept;

/// @brief The canonical JSON array of category names: sorted, duplicates
/// removed, no whitespace (names are escaped as JSON strings).
std::string canonical_categories(std::vector<std::string> categories);

/// @brief What a caller appends; seq, prev_hash and hash are assigned.
struct new_ledger_entry {
  std::string subscription_public_id;
  time_point at{};                           ///< stored in milliseconds
  consent_action action = consent_action::grant;
  std::vector<std::string> categories_before;
  std::vector<std::string> categories_after;
  std::string source;        ///< page URL without query/fragment, or "backend…"
  std::string text_version;  ///< consent text shown; may be empty (erase)
  std::string ip_truncated;  ///< "203.0.113.0/24", "2001:db8:1::/48" or empty
};

/// @brief A stored entry, exactly as hashed.
struct ledger_entry {
  std::int64_t seq = 0;
  std::string subscription_public_id;
  std::int64_t at_ms = 0;
  std::string action;             ///< as stored (normally a consent_action's text)
  std::string categories_before;  ///< canonical JSON array text
  std::string categories_after;   ///< canonical JSON array text
  std::string source;
  std::string text_version;
  std::string ip_truncated;
  ledger_hash prev_hash{};
  ledger_hash hash{};
};

/// @brief hash_n of the file comment, for `entry` after `prev_hash`
/// (entry.prev_hash and entry.hash are not read).
ledger_hash compute_ledger_hash(const ledger_hash& prev_hash, const ledger_entry& entry);

/// @brief The outcome of checking the whole chain.
struct ledger_verification {
  std::int64_t entries = 0;                    ///< entries read
  std::optional<std::int64_t> first_broken_seq;  ///< the first entry that fails, if any
  std::string problem;                         ///< what differs there
  ledger_hash head{};                          ///< hash of the last entry (zeros when empty)
  /// @brief Whether every entry checked out.
  bool intact() const noexcept { return !first_broken_seq; }
};

/// @brief Repository interface (SQLite now; another backend later).
class consent_ledger_store {
 public:
  virtual ~consent_ledger_store() = default;
  /// @brief Appends one entry chained to the current last one. Runs in the
  /// caller's transaction when there is one (so the entry commits or rolls
  /// back with the change it records), otherwise in its own. Errors:
  /// `storage_busy`, `storage_error`.
  virtual result<ledger_entry> append(const new_ledger_entry& entry) = 0;
  /// @brief Calls `visit` for each entry with seq > `after_seq`, in seq
  /// order, until it returns false.
  virtual result<void> for_each(const std::function<bool(const ledger_entry&)>& visit,
                                std::int64_t after_seq = 0) = 0;
  /// @brief One subscriber's entries, in seq order.
  virtual result<std::vector<ledger_entry>> for_subscription(std::string_view public_id) = 0;
  /// @brief Walks the whole chain: seq contiguous from 1, each prev_hash equal
  /// to the previous hash, each hash recomputed. Reports the first failure.
  virtual result<ledger_verification> verify() = 0;
};

/// @brief The SQLite implementation. Uses the given connection (not owned).
std::unique_ptr<consent_ledger_store> make_sqlite_consent_ledger_store(database& db);

}  // namespace webpushd::storage
