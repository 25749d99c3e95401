#pragma once
/// @file
/// @brief The subscriber and consent operations the HTTP handlers call.
///
/// Each mutating operation validates its request (pure functions from
/// validation.hpp), then runs as ONE work item on the storage::write_queue:
/// the subscriber change and its consent ledger entry commit together, and
/// `done` is called only after that commit (ack after commit). `done` runs on
/// the writer thread, or at once on the caller's thread when validation
/// fails or the queue is full (`storage_busy`); keep it short and hand the
/// response to the session's executor. Reads (exports, ledger checks) use
/// the service's own read connection, serialised by a mutex, and return
/// directly; call them off the I/O threads if they may be slow.
///
/// Errors are `webpushd::error` values with a JSON field path; the codes:
/// validation (`invalid_endpoint`, `endpoint_not_allowed`, `invalid_p256dh`,
/// `invalid_auth`, `invalid_categories`, `unknown_category`,
/// `duplicate_category`, `invalid_text_version`, `invalid_timezone`,
/// `invalid_locale`, `invalid_source`, `invalid_ip`, `invalid_customer_id`)
/// → 400/422; `not_found` → 404 — also for a wrong token, on purpose (see
/// set_consent); `subscription_inactive` → 409; `storage_busy` → 503;
/// `storage_*` → 500.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "webpushd/consent/config.hpp"
#include "webpushd/consent/validation.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/delivery/endpoint_rules.hpp"
#include "webpushd/storage/consent_ledger_store.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/subscriber_store.hpp"
#include "webpushd/storage/write_queue.hpp"

namespace webpushd::consent {

/// @brief Called with an operation's outcome.
template <class T>
using callback = std::function<void(result<T>)>;

/// @brief Where a request came from, for the ledger.
struct request_origin {
  std::string source;  ///< page URL (query/fragment are cut) or "backend[:label]"; empty: "backend"
  std::string ip;      ///< the client's address as text; truncated before it is stored
};

/// @brief `POST /v1/subscriptions`.
struct subscribe_request {
  std::string endpoint;  ///< subscription.endpoint
  std::string p256dh;    ///< subscription.keys.p256dh
  std::string auth;      ///< subscription.keys.auth
  std::vector<std::string> categories;  ///< consent.categories (at least one)
  std::string text_version;             ///< consent.text_version
  std::string timezone;  ///< empty: the configured default
  std::string locale;    ///< empty: the configured default
  request_origin origin;
};

/// @brief What subscribe and resubscribe answer.
struct subscribe_outcome {
  std::string id;     ///< the public id, "sub_…"
  std::string token;  ///< the subscriber token; shown once (empty from resubscribe)
  bool created = false;  ///< true: 201 (a new subscriber); false: 200 (the same one, updated)
};

/// @brief A `pushsubscriptionchange`: the browser replaced the subscription.
/// The caller proves it held the old subscription either with `id` and
/// `token` (the SDK and service worker, which keep both) or, when `id` is
/// empty, with `old_endpoint`.
struct resubscribe_request {
  std::string id;            ///< the subscriber's public id (with `token`)
  std::string token;         ///< the subscriber token
  std::string old_endpoint;  ///< used when `id` is empty
  std::string endpoint;      ///< subscription.endpoint (the new one)
  std::string p256dh;
  std::string auth;
  request_origin origin;
};

/// @brief `PUT /v1/subscriptions/{id}/consent`.
struct consent_request {
  std::string id;
  std::string token;
  std::vector<std::string> categories;  ///< the full new set; empty withdraws everything
  std::string text_version;
  request_origin origin;
};

/// @brief What set_consent answers.
struct consent_outcome {
  std::vector<std::string> categories;  ///< granted now, sorted
  bool changed = false;                 ///< false: nothing differed, no ledger entry
};

/// @brief `DELETE /v1/subscriptions/{id}` (by the subscriber).
struct unsubscribe_request {
  std::string id;
  std::string token;
  request_origin origin;
};

/// @brief What a subscriber's browser may read about itself.
struct subscriber_state {
  std::string id;
  std::string state;  ///< "active", "unsubscribed", "gone" (the push service ended it)
  std::vector<std::string> categories;
  std::string timezone;
  std::string locale;
  std::string text_version;
};

/// @brief Calls into the scenario engine from inside the service's write
/// transactions, so a subscriber change and the journeys it starts or moves
/// commit together. Each gets the writer's connection, the subscriber
/// record after the change, and the clock's time; an error fails the
/// request (nothing of it is written) and is what the caller gets. Unset
/// hooks do nothing.
struct lifecycle_hooks {
  using hook = std::function<result<void>(storage::database&, const storage::subscriber_record&, time_point)>;
  /// @brief subscribe() created a subscriber, or brought back one that was
  /// not active (unsubscribed or gone). Not called for a subscribe that
  /// only updates an active subscriber, nor for resubscribe (the same
  /// subscriber on a new endpoint).
  hook on_subscribed;
  /// @brief link_customer() (and so identify) linked the subscriber to a
  /// customer it was not linked to; the record carries the new customer_id.
  hook on_customer_linked;
  /// @brief The subscriber took consent away: `kind` "unsubscribe" (every
  /// category) or "withdraw" (consent narrowed by set_consent or a
  /// re-subscribe), with the categories taken away. Pacing attributes it to
  /// the push that most likely caused it.
  std::function<result<void>(storage::database&, const storage::subscriber_record&, std::string_view kind,
                             const std::vector<std::string>& withdrawn, time_point)>
      on_withdrawn;
};

/// @brief What an erasure did.
struct erase_outcome {
  std::size_t subscriptions_erased = 0;  ///< 0: nothing (left) to erase
  std::size_t messages_cancelled = 0;
};

/// @brief See the file comment.
class subscriber_service {
 public:
  /// @brief Validates `config` (error `config_invalid`) and builds the
  /// service. `writer`, `clk` must outlive it; `reader` is a second
  /// connection to the same database file, owned by the service.
  static result<std::unique_ptr<subscriber_service>> create(consent_config config, delivery::endpoint_rules rules,
                                                            storage::write_queue& writer, storage::database reader,
                                                            const clock& clk);

  subscriber_service(const subscriber_service&) = delete;
  subscriber_service& operator=(const subscriber_service&) = delete;
  ~subscriber_service();

  /// @brief The consent configuration (for the SDK's category texts).
  const consent_config& config() const noexcept { return config_; }

  /// @brief Sets the lifecycle hooks (replacing earlier ones). Call before
  /// serving: not synchronised with the operations.
  void set_lifecycle_hooks(lifecycle_hooks hooks);

  /// @brief New subscriber (created = true, ledger `grant`), or the
  /// subscriber with the same endpoint updated (keys, consent, time zone,
  /// locale; ledger `change` when the categories or text version changed,
  /// `grant` when it had unsubscribed). Presenting the endpoint proves
  /// possession of the subscription, so a new token is issued either way and
  /// the previous one stops working.
  void subscribe(subscribe_request request, callback<subscribe_outcome> done);

  /// @brief Moves the subscriber holding `old_endpoint` to the new
  /// subscription, keeping id, token, consent, customer link and history
  /// (ledger `resubscribe`). Retrying after success answers the same.
  /// With `id`: `not_found` for an unknown id or a wrong token. Without:
  /// `not_found` (field "old_endpoint") when neither endpoint is known.
  void resubscribe(resubscribe_request request, callback<subscribe_outcome> done);

  /// @brief Replaces the granted categories (ledger `change`, or `withdraw`
  /// when none remain). An unknown id and a wrong token both answer
  /// `not_found`, in the same time: a caller cannot probe which ids exist,
  /// and the SDK has one recovery for both (subscribe again).
  /// `subscription_inactive` after unsubscription.
  void set_consent(consent_request request, callback<consent_outcome> done);

  /// @brief The subscriber's own view of its subscription (token as in
  /// set_consent). Synchronous, on the read connection.
  result<subscriber_state> describe(std::string_view id, std::string_view token);

  /// @brief Unsubscribes (ledger `unsubscribe`); queued messages are
  /// cancelled. Idempotent. Token as in set_consent.
  void unsubscribe(unsubscribe_request request, callback<void> done);

  /// @brief Links a subscriber to the shop's customer id (backend calls and
  /// events carrying both). `not_found` for an unknown or erased id.
  void link_customer(std::string id, std::string customer_id, callback<void> done);

  /// @brief Erases one subscriber's personal data (see
  /// storage::subscriber_store::erase) and appends a ledger `erase` entry.
  /// `not_found` for an unknown id; an already erased one answers 0 erased.
  ///
  /// Also erased, in the same transaction: the shop's events naming the
  /// subscriber or its customer, and the scenario engine's data
  /// (storage::erase_person_data) of the person "s:<id>" and the
  /// journey_log rows about messages to this subscriber. The customer's own
  /// automation data ("c:<customer id>": journeys, their log, product
  /// interest) goes too only when no other active subscriber of that
  /// customer remains: while one does, those journeys still serve the
  /// customer on that device (erase_customer removes them at once).
  void erase_subscription(std::string id, request_origin origin, callback<erase_outcome> done);

  /// @brief erase_subscription for every subscriber linked to the customer,
  /// in one transaction, plus the customer's events and automation data
  /// ("c:<customer id>"), also from before any subscription. No linked
  /// subscriber: 0 erased (not an error).
  void erase_customer(std::string customer_id, request_origin origin, callback<erase_outcome> done);

  /// @brief Everything held about one subscriber: `{"subscription": {…
  /// endpoint, keys, customer_id, categories, timezone, locale, dates…},
  /// "consent_ledger": [entries…], "messages": [outbox rows with state and
  /// payload…], "events": [the shop's events naming it or its customer],
  /// "journeys": [journeys of "s:<id>" and "c:<customer id>": scenario, key,
  /// state, step, next_at, started_at, updated_at, ended_at, end_reason,
  /// context, log], "product_interest": [{product_id, at}]}`. Never the
  /// token or its hash. `not_found` for an unknown id.
  result<nlohmann::json> export_subscription(std::string_view id);

  /// @brief `{"customer_id": …, "subscriptions": [export_subscription of each
  /// linked subscriber], "events": […], "journeys": […],
  /// "product_interest": […]}` (the last three: those of the customer id
  /// itself, also from before any subscription; lists empty when none).
  result<nlohmann::json> export_customer(std::string_view customer_id);

  /// @brief Checks the whole consent ledger chain.
  result<storage::ledger_verification> verify_ledger();

 private:
  subscriber_service(consent_config config, delivery::endpoint_rules rules, storage::write_queue& writer,
                     storage::database reader, const clock& clk);
  result<nlohmann::json> export_one(const std::string& public_id);

  consent_config config_;
  delivery::endpoint_rules rules_;
  storage::write_queue& writer_;
  const clock& clock_;
  lifecycle_hooks hooks_;
  std::mutex reader_mutex_;
  storage::database reader_;
};

}  // namespace webpushd::consent
