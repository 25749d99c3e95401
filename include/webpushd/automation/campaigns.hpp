#pragma once
/// @file
/// @brief One-off campaigns: a message to every active subscriber who grants
/// a consent category (optionally only some locales, or only subscribers
/// linked — or not linked — to a shop customer), now, at a time, or at a
/// wall-clock time in each subscriber's own time zone.
///
/// ## Life of a campaign
/// `POST /v1/campaigns` → parse_campaign() validates everything (a template
/// error names its field: "message.locales.pl.title"); campaign_service
/// stores it in one write_queue item and answers only after the commit
/// (state `scheduled`). The scheduler thread calls campaign_runner::run_due()
/// inside its own write_queue items: a due campaign becomes `running`, and
/// each call fans out one chunk of its audience — keyset-paginated by
/// subscription id, the cursor stored with the chunk's outbox messages in
/// the same transaction (written by storage::campaign_store::enqueue_messages:
/// the same rows outbox_store::enqueue makes, one prepared INSERT per chunk), so a restart (or `kill -9`) continues after the last
/// committed chunk and never enqueues a subscriber twice. When the cursor
/// reaches the end the campaign is `completed`. `DELETE` cancels it: state
/// `cancelled`, its queued messages cancelled (also after completion, when
/// local-time messages may still wait for their moment).
///
/// ## Audience
/// Whoever is active and grants the category *when the fan-out reaches
/// them* (a subscriber who joins during the fan-out is included if its id
/// is still ahead of the cursor). Filters (`audience.locales`,
/// `audience.customer`) narrow it; subscribers they exclude are not counted
/// as targeted. Consent is checked again when each message is sent (the
/// outbox's claim), so a withdrawal after the fan-out still stops it.
///
/// ## Local time
/// With `local_time`, `send_at` is a wall-clock time without offset
/// ("2026-11-27T09:00:00"), meant in each subscriber's time zone (theirs,
/// else the consent default). The fan-out starts when it is that time in
/// the earliest zone (UTC+14, send_at − 14 h) and gives each message
/// `not_before` = that subscriber's moment. A moment already past when the
/// fan-out reaches the subscriber means "now". A wall-clock time that does
/// not exist in a zone (skipped by a DST change, e.g. 02:30 on Europe/Warsaw's
/// last Sunday of March) means the moment the clocks jump; one that exists
/// twice (autumn) means the first.
///
/// ## Templates
/// Campaign messages are rendered once per variant and locale (and per time zone when
/// they use `subscriber.timezone`), not once per subscriber: that is what
/// makes a million-subscriber fan-out take seconds. So their context is
/// `{"subscriber": {"locale", "timezone"}, "shop": {"name", "url"},
/// "campaign": {"id", "name"}, "variant"}` — no event, and no `subscriber.customer_id`
/// (refused at POST with `field_not_allowed`: it would need one rendering
/// per subscriber; a scenario can use it). Any other field is refused
/// (`invalid_template`), since it could never be present.
///
/// ## A/B variants
/// `variants: [{name, weight, message}]` (2–10) instead of `message`: each
/// subscription gets one, by the rule of variants.hpp with source
/// "campaign:<id>" and its public id — the same one again when a restart
/// continues the fan-out, since the variants are stored in the definition.
/// Renderings are made per variant and locale; each message carries its
/// variant (outbox.variant), and `{{variant}}` names it (the default
/// utm_content).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "webpushd/automation/campaign_stats.hpp"
#include "webpushd/automation/message.hpp"
#include "webpushd/automation/scenario.hpp"
#include "webpushd/core/clock.hpp"
#include "webpushd/core/error.hpp"
#include "webpushd/storage/campaign_store.hpp"
#include "webpushd/storage/database.hpp"
#include "webpushd/storage/outbox_store.hpp"
#include "webpushd/storage/write_queue.hpp"

namespace webpushd::tracking {
class delivery_signer;
}

namespace webpushd::automation {

/// @brief Which subscribers by their link to a shop customer.
enum class customer_filter {
  any,        ///< everyone
  linked,     ///< only subscribers linked to a customer
  anonymous,  ///< only subscribers not linked to one
};

/// @brief Narrows a campaign's audience beyond its category.
struct campaign_audience {
  /// @brief Locale tags; empty: every locale. A tag matches a subscriber's
  /// locale (or the default locale, for subscribers who sent none) exactly
  /// or as its language, case-insensitively: "pl" matches "pl-PL".
  std::vector<std::string> locales;
  customer_filter customer = customer_filter::any;
};

/// @brief A validated campaign.
struct campaign_spec {
  std::string id;        ///< "cmp_…" (given by the client for idempotent retries, else generated)
  std::string name;      ///< 1–200 characters, for people (shown in `{{campaign.name}}` and lists)
  std::string category;  ///< consent category the audience grants
  message_def message;   ///< what it sends, when it has no variants
  /// @brief A/B variants (2–10) instead of `message`; the first is the
  /// baseline. Empty: everyone gets `message`.
  std::vector<variant_def> variants;
  campaign_audience audience;
  /// @brief When to send; for local_time the wall-clock time read as UTC.
  /// Absent in the request: the time of the request.
  time_point send_at{};
  std::string send_at_text;  ///< as given ("" when absent)
  bool local_time = false;
  std::chrono::seconds ttl{std::chrono::hours{24}};  ///< 0 … 28 d
  std::string ttl_text = "24h";
  std::string urgency = "normal";  ///< very-low | low | normal | high
  /// @brief Pacing: a promotion yields a contested slot to scenarios (default
  /// 10 of 0–100) and, held by a cap or quiet hours, waits at most
  /// defer_max (nullopt: `on_cap: drop`, given up at once).
  int priority = 10;
  std::optional<std::chrono::milliseconds> defer_max{std::chrono::hours{12}};
  std::string defer_max_text = "12h";
  utm_def utm;                     ///< templates over the campaign context
  /// @brief When the fan-out starts: send_at, or send_at − 14 h with local_time.
  time_point due_at() const;
};

/// @brief What campaigns take from the daemon's configuration.
struct campaign_options {
  std::vector<std::string> categories;  ///< consent categories that exist (consent.categories[].name)
  std::string default_locale = "en";    ///< consent.default_locale
  std::string default_timezone = "UTC"; ///< consent.default_timezone
  shop_view shop;                       ///< automation.shop_name / shop_url
  /// @brief Base of the report URL in each push (server.public_url).
  std::string public_url = "http://127.0.0.1:8080";
  /// @brief Default link decoration: only `source`, `medium` and `enabled`
  /// are used (automation.utm); `campaign` and `content` are always
  /// "{{campaign.name}}" and "" unless a request's `utm` sets them.
  utm_def utm;
  /// @brief How far ahead send_at may be.
  std::chrono::hours max_schedule_ahead{24 * 366};
};

/// @brief Parses and validates a `POST /v1/campaigns` body (docs/API.md,
/// "Campaigns"); `id` is used unless the body names its own. Every check
/// runs here, nothing is stored: shape (`invalid_type`, `missing_field`,
/// `field_not_allowed` for unknown keys), `unknown_category` ("category"),
/// template syntax and fields (`invalid_template`, `field_not_allowed`,
/// field e.g. "message.locales.pl.title"), links, `invalid_locale`,
/// `invalid_send_at`, `invalid_ttl`, `invalid_urgency`, `invalid_audience`,
/// `invalid_campaign_id`, `invalid_variants` (count, names, weights, both
/// message and variants; field e.g. "variants[1].weight"), and a trial
/// rendering of every translation of every variant (`invalid_message` when
/// one renders an empty title or a payload above the Web Push limit). All
/// are 422.
result<campaign_spec> parse_campaign(const nlohmann::json& body, const campaign_options& options, std::string id,
                                     time_point now);

/// @brief The stored definition of a campaign (the request in normal form:
/// every default filled in). parse_stored_campaign() reads it back.
nlohmann::json definition_json(const campaign_spec& spec);

/// @brief Reads a stored definition without the checks that depend on
/// the time or the config of the day (the category may have been removed
/// since; the fan-out then simply finds nobody).
result<campaign_spec> parse_stored_campaign(const storage::campaign_row& row, const campaign_options& options);

/// @brief What one run_due call did.
struct campaign_tick {
  std::size_t campaigns = 0;  ///< campaigns that fanned out a chunk (or started or ended)
  std::size_t examined = 0;   ///< audience rows read (bounded by max_messages)
  std::size_t enqueued = 0;   ///< outbox messages created
  std::size_t completed = 0;  ///< campaigns that reached the end of their audience
  /// @brief More work is due now (the budget ran out): call again at once.
  bool more = false;
};

/// @brief The fan-out. No thread and no clock of its own: the scheduler
/// calls run_due inside a write_queue item with `now`; tests call it in
/// virtual time. Thread-safe (no mutable state between calls).
class campaign_runner {
 public:
  /// @brief `signer` must outlive the runner.
  campaign_runner(campaign_options options, const tracking::delivery_signer& signer);

  /// @brief Starts due campaigns (scheduled → running) and fans out one
  /// chunk of at most `max_messages` audience rows, over as many due
  /// campaigns as the budget reaches, earliest due first; a campaign whose
  /// audience ended is completed. Call inside a write transaction.
  result<campaign_tick> run_due(storage::database& db, time_point now, std::size_t max_messages);

  /// @brief The earliest due_at of a scheduled or running campaign (a
  /// running one is due at once), if any.
  result<std::optional<time_point>> next_due(storage::database& db);

 private:
  struct impl;
  std::shared_ptr<const impl> impl_;
};

/// @brief A campaign as GET shows it.
struct campaign_view {
  storage::campaign_row row;
  std::optional<storage::outbox_counts> messages;  ///< by state; not in lists
  std::optional<std::size_t> messages_cancelled;   ///< set by cancel()
  std::optional<std::size_t> recalls_requested;    ///< set by cancel()
};

/// @brief The JSON of a campaign (docs/API.md): id, name, category, state,
/// send_at, local_time, ttl, urgency, audience, created_at, created_by,
/// started_at, finished_at, end_reason, targeted, enqueued, skipped,
/// skipped_reasons; with `detailed` also message (or variants), utm and
/// messages (counts by outbox state); messages_cancelled and
/// recalls_requested when set.
nlohmann::json to_json(const campaign_view& view, bool detailed);

/// @brief What create answers.
struct campaign_created {
  std::string id;
  storage::campaign_state state = storage::campaign_state::scheduled;
  bool created = true;  ///< false: a retry of an identical campaign with the same client id
};

/// @brief The campaign operations the HTTP handlers call: validation, then
/// ONE write_queue item, `done` after its commit (on the writer thread, or
/// at once on the caller's thread when validation fails or the queue is
/// full). Reads use the service's own connection, serialised by a mutex.
class campaign_service {
 public:
  template <class T>
  using callback = std::function<void(result<T>)>;

  /// @brief `writer` and `clk` must outlive the service; `reader` is a
  /// second connection to the same database file, owned by the service.
  campaign_service(campaign_options options, storage::write_queue& writer, storage::database reader,
                   const clock& clk);
  campaign_service(const campaign_service&) = delete;
  campaign_service& operator=(const campaign_service&) = delete;

  /// @brief Called after a campaign was stored (wakes the scheduler so a
  /// campaign due now starts at once). Call before serving.
  void set_on_created(std::function<void()> hook);

  /// @brief Validates (parse_campaign) and stores a campaign. A body with an
  /// `id` that exists answers that campaign (created = false) when name,
  /// category and definition are the same, else `campaign_conflict` (409).
  void create(const nlohmann::json& body, std::string created_by, callback<campaign_created> done);

  /// @brief One campaign with its outbox messages counted by state.
  /// `not_found` for an unknown id.
  result<campaign_view> get(std::string_view id);

  /// @brief Campaigns newest first (1 ≤ limit ≤ 1000).
  result<std::vector<campaign_view>> list(std::size_t limit);

  /// @brief One campaign's stats over the query's range (read_campaign_stats):
  /// `unknown_campaign` for an unknown id, the parse_stats_range errors.
  result<campaign_stats> stats(std::string_view id, const stats_query& query);

  /// @brief Cancels (storage::campaign_store::cancel; end_reason "cancelled
  /// by <by>") and, in the same transaction, requests the recall of its
  /// messages push services accepted and may not have delivered yet
  /// (storage::recall_store). Idempotent; `not_found` for an unknown id.
  /// Answers the campaign after the change with messages_cancelled and
  /// recalls_requested.
  void cancel(std::string id, std::string by, callback<campaign_view> done);

 private:
  campaign_options options_;
  storage::write_queue& writer_;
  const clock& clock_;
  std::function<void()> on_created_;
  std::mutex reader_mutex_;
  storage::database reader_;
};

}  // namespace webpushd::automation
