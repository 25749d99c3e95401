#pragma once
/// @file
/// @brief Reports from service workers about delivered pushes (shown,
/// clicked, closed), authenticated by a signed delivery id so nobody can
/// forge clicks for deliveries they did not receive, and recorded once.

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "webpushd/core/bytes.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/write_queue.hpp"

namespace webpushd::storage {
struct delivery_event;
}

namespace webpushd::tracking {

/// @brief Signs and checks delivery ids (HMAC-SHA-256 under a daemon secret).
class delivery_signer {
 public:
  /// @brief Uses `key` (at least 32 bytes).
  explicit delivery_signer(bytes key);
  /// @brief Reads the key at `path` (base64url text), or makes one (mode
  /// 0600, written atomically) if there is none; `created` tells which.
  /// Errors as crypto::load_or_create_key: `secret_unreadable`,
  /// `invalid_key`, `secret_unwritable`.
  static result<delivery_signer> load_or_create(const std::filesystem::path& path, bool& created);
  /// @brief A new, unguessable delivery id ("d_" + 22 characters).
  static std::string new_delivery_id();
  /// @brief The signature the push payload carries for `delivery_id`
  /// (base64url, 22 characters: HMAC truncated to 128 bits).
  std::string sign(std::string_view delivery_id) const;
  /// @brief Constant-time check of a presented signature.
  bool verify(std::string_view delivery_id, std::string_view signature) const;

 private:
  bytes key_;
};

/// @brief One report as the service worker sends it.
struct beacon {
  std::string delivery_id;
  std::string type;       ///< "shown" | "clicked" | "closed"
  std::string action;     ///< the action button clicked; empty for the body or other types
  std::string signature;  ///< from the push payload's `delivery.sig`
};

/// @brief Field checks: `invalid_delivery_id` ("id"), `invalid_type`
/// ("type"), `invalid_action` ("action"), `missing_field` ("sig").
result<void> validate_beacon(const beacon& b);

/// @brief The counter a click adds besides `clicked`: "clicked:<action>",
/// "clicked:body" for the notification itself (no action), and
/// "clicked:other" for an action that is no action name
/// (`^[a-z][a-z0-9_]{0,63}$`, as messages name them): a report's action is
/// the browser's word, not ours.
std::string click_metric(std::string_view action);

/// @brief Counts a report recorded for the first time, through `db` (the
/// transaction that records it): `shown`, `closed` or `clicked` (and
/// click_metric) for its push's source, step and variant in the hour of
/// the report, and for shown and clicked the push as the device's latest
/// touch (storage::tracking_store), which conversion attribution reads —
/// unless the subscriber was erased. false, and nothing counted, when no
/// outbox message carries the delivery id.
result<bool> count_report(storage::database& db, const storage::delivery_event& report);

/// @brief Verifies and durably records beacons.
class beacon_recorder {
 public:
  /// @brief `signer`, `writer` and `clk` must outlive the recorder.
  beacon_recorder(const delivery_signer& signer, storage::write_queue& writer, const clock& clk);
  /// @brief Validates, checks the signature (`invalid_signature`, 403 — the
  /// same for an unknown id, so ids cannot be probed), and records it once,
  /// counting it (count_report) in the same transaction; `done(true)` when
  /// stored now, `done(false)` for a repeat (nothing counted again). `done`
  /// runs after the commit, on the writer thread (or at once on failure).
  void record(beacon b, std::function<void(result<bool>)> done);

  /// @brief Told the type of each beacon stored (after its commit, not for
  /// repeats), on the writer thread (for metrics). Call before serving.
  void set_recorded_observer(std::function<void(std::string_view type)> observer);

 private:
  const delivery_signer& signer_;
  storage::write_queue& writer_;
  const clock& clock_;
  std::function<void(std::string_view type)> observer_;
};

}  // namespace webpushd::tracking
