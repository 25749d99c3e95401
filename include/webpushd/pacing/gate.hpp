#pragma once
/// @file
/// @brief The send-time gate: every message of every scenario and campaign
/// passes it once, inside the outbox's claim transaction, so caps hold under
/// any concurrency — two claims racing for a subscription's last slot are
/// serialised by SQLite's write lock and the second sees the first's
/// admission. A decision reads and writes a few short history rows by
/// primary key (rules.hpp decides), never the outbox's history.
///
/// What it records: deferrals and suppressions on the message (last_reason),
/// in the counters per source and step, and in the journey log (so
/// `webpushctl simulate` and the stats API show them); the adaptive level it
/// applies is read per decision, so a change by adaptive.hpp takes effect at
/// the next message.
///
/// Operator messages (sources without a "scenario:"/"campaign:" kind, e.g.
/// `webpushctl send`) are admitted as they are but counted in the history:
/// the subscriber received them all the same.

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "webpushd/core/error.hpp"
#include "webpushd/pacing/policy.hpp"
#include "webpushd/storage/outbox_store.hpp"

namespace date {
class time_zone;
}

namespace webpushd::storage {
class database;
class pacing_store;
class journey_store;
}  // namespace webpushd::storage

namespace webpushd::pacing {

/// @brief See the file comment. Use it on the outbox store's own connection
/// (`outbox.set_gate(&gate)`).
class send_gate final : public storage::outbox_gate {
 public:
  send_gate(storage::database& connection, std::shared_ptr<const policy> p);
  ~send_gate() override;

  /// @brief Told each message the gate holds back: deferred or not
  /// (suppressed), and the rule that held it ("quiet_hours", "global_cap",
  /// …), on the claiming thread (for metrics). It runs inside the claim's
  /// transaction: a claim that then fails to commit (a storage error) was
  /// reported, and its messages are decided, and reported, again.
  using held_observer = std::function<void(bool deferred, std::string_view rule)>;
  /// @brief Sets (or clears) the observer. Call before the dispatcher starts.
  void set_held_observer(held_observer observer);

  /// @brief Swaps the policy (config reload); safe from any thread.
  void set_policy(std::shared_ptr<const policy> p);
  std::shared_ptr<const policy> current_policy() const;

  result<storage::gate_verdict> decide(const storage::gate_candidate& c, time_point now) override;
  /// @brief Attributes the unsubscribe a 404/410 revealed.
  result<void> subscription_gone(std::int64_t subscription_id, time_point now) override;

 private:
  const date::time_zone* zone_of(const std::string& name, const policy& p);
  result<void> note(const storage::gate_candidate& c, const std::string& scenario, const std::string& step,
                    const char* outcome, const std::string& reason, time_point now);

  std::unique_ptr<storage::pacing_store> store_;
  std::unique_ptr<storage::journey_store> journeys_;
  mutable std::mutex policy_mutex_;
  std::shared_ptr<const policy> policy_;
  std::unordered_map<std::string, const date::time_zone*> zones_;
  held_observer held_observer_;  ///< IANA name → zone (nullptr: unknown)
};

/// @brief Attributes an unsubscribe seen by the consent service (`kind`
/// "unsubscribe" from the SDK, or "withdraw" with the categories withdrawn:
/// one attribution each) to the latest push within the policy's window. Runs
/// on `connection` inside the caller's transaction.
result<void> attribute_unsubscribe(storage::database& connection, const policy& p, std::int64_t subscription_id,
                                   std::string_view kind, const std::vector<std::string>& withdrawn, time_point now);

}  // namespace webpushd::pacing
