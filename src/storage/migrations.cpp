// The schema, one migration per version. Append new versions at the end;
// never edit one that has shipped (databases in the field already ran it).
//
// Conventions: times are unix milliseconds (INTEGER); tables are STRICT so a
// wrong type is an error, not a silent conversion; states are TEXT with a
// CHECK so the database itself rejects an unknown state.

#include "migrations.hpp"

#include <array>

namespace webpushd::storage::detail {
namespace {

// v1: subscriptions and the outbox.
constexpr std::string_view v1_subscriptions_and_outbox = R"sql(
CREATE TABLE subscriptions (
  id          INTEGER PRIMARY KEY,
  endpoint    TEXT    NOT NULL UNIQUE,
  p256dh      TEXT    NOT NULL,
  auth        TEXT    NOT NULL,
  state       TEXT    NOT NULL DEFAULT 'active'
                      CHECK (state IN ('active', 'gone', 'erased')),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  gone_at     INTEGER,
  gone_reason TEXT
) STRICT;

CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
  payload         BLOB    NOT NULL,
  ttl_seconds     INTEGER NOT NULL CHECK (ttl_seconds >= 0),
  urgency         TEXT    NOT NULL DEFAULT 'normal'
                          CHECK (urgency IN ('very-low', 'low', 'normal', 'high')),
  topic           TEXT,
  source          TEXT    NOT NULL DEFAULT '',
  state           TEXT    NOT NULL DEFAULT 'queued'
                          CHECK (state IN ('queued', 'sending', 'sent', 'gone', 'failed',
                                           'dead', 'expired', 'cancelled')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  claimed_at      INTEGER,
  finished_at     INTEGER,
  last_status     INTEGER,
  last_reason     TEXT,
  location        TEXT
) STRICT;

-- claim_due and next_due read only queued rows, oldest due first; the
-- partial index stays small however many finished rows accumulate.
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'queued';

-- requeue_inflight at start-up.
CREATE INDEX outbox_inflight ON outbox (id) WHERE state = 'sending';

-- Finishing a gone subscription's queue, and the foreign key check when a
-- subscription row is deleted.
CREATE INDEX outbox_subscription ON outbox (subscription_id);
)sql";

// v2: subscribers and consent. Subscriptions become subscribers (a public
// id, a token hash, a customer link, time zone, locale, consent); granted
// categories live in their own table so the send-time check is one primary
// key lookup (and "everyone who granted X" is an index scan); the consent
// ledger is append-only, enforced by triggers as well as by the code; outbox
// messages carry the category they are sent under (NULL: an operator's
// one-off, which needs no marketing consent).
//
// Columns added by ALTER TABLE cannot carry UNIQUE, so public_id's
// uniqueness is a unique index (several NULLs are allowed: rows made by v1
// tools get their public id when a browser first subscribes with them).
constexpr std::string_view v2_subscribers_and_consent = R"sql(
ALTER TABLE subscriptions ADD COLUMN public_id            TEXT;
ALTER TABLE subscriptions ADD COLUMN token_hash           BLOB;
ALTER TABLE subscriptions ADD COLUMN customer_id          TEXT;
ALTER TABLE subscriptions ADD COLUMN timezone             TEXT;
ALTER TABLE subscriptions ADD COLUMN locale               TEXT;
ALTER TABLE subscriptions ADD COLUMN consent_text_version TEXT;
ALTER TABLE subscriptions ADD COLUMN replaced_by          INTEGER REFERENCES subscriptions (id);
ALTER TABLE subscriptions ADD COLUMN last_seen_at         INTEGER;

CREATE UNIQUE INDEX subscriptions_public_id ON subscriptions (public_id);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id) WHERE customer_id IS NOT NULL;

CREATE TABLE subscription_categories (
  subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
  category        TEXT    NOT NULL,
  granted_at      INTEGER NOT NULL,
  PRIMARY KEY (subscription_id, category)
) STRICT, WITHOUT ROWID;

CREATE INDEX subscription_categories_by_category ON subscription_categories (category, subscription_id);

CREATE TABLE consent_ledger (
  seq                    INTEGER PRIMARY KEY,
  subscription_public_id TEXT    NOT NULL,
  at                     INTEGER NOT NULL,
  action                 TEXT    NOT NULL
                                 CHECK (action IN ('grant', 'change', 'withdraw', 'unsubscribe', 'erase',
                                                   'resubscribe')),
  categories_before      TEXT    NOT NULL,
  categories_after       TEXT    NOT NULL,
  source                 TEXT    NOT NULL,
  text_version           TEXT    NOT NULL,
  ip_truncated           TEXT    NOT NULL,
  prev_hash              BLOB    NOT NULL CHECK (length(prev_hash) = 32),
  hash                   BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

CREATE INDEX consent_ledger_subscription ON consent_ledger (subscription_public_id, seq);

CREATE TRIGGER consent_ledger_no_update BEFORE UPDATE ON consent_ledger
BEGIN
  SELECT RAISE(ABORT, 'consent_ledger is append-only');
END;

CREATE TRIGGER consent_ledger_no_delete BEFORE DELETE ON consent_ledger
BEGIN
  SELECT RAISE(ABORT, 'consent_ledger is append-only');
END;

ALTER TABLE outbox ADD COLUMN category TEXT;
)sql";

// Reports from the service worker about a delivered push. One row per
// (delivery, kind): beacons are retried by browsers, so recording is
// idempotent by construction.
constexpr std::string_view v3_delivery_events = R"sql(
CREATE TABLE delivery_events (
  delivery_id  TEXT    NOT NULL,
  type         TEXT    NOT NULL CHECK (type IN ('shown', 'clicked', 'closed')),
  action       TEXT,
  at           INTEGER NOT NULL,
  PRIMARY KEY (delivery_id, type)
) STRICT, WITHOUT ROWID;
)sql";

// Shop events from the backend (POST /v1/events), the scenario engine's
// input. The sender's id is the primary key: a retried batch stores nothing
// twice. occurred_at is indexed for time-window queries by customer.
constexpr std::string_view v4_events = R"sql(
CREATE TABLE events (
  id              TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
  type            TEXT    NOT NULL,
  customer_id     TEXT,
  subscription_id TEXT,
  occurred_at     INTEGER NOT NULL,
  received_at     INTEGER NOT NULL,
  properties      TEXT    NOT NULL CHECK (json_valid(properties))
) STRICT;

CREATE INDEX events_customer ON events (customer_id, occurred_at) WHERE customer_id IS NOT NULL;
)sql";

// v5: the automation engine. A journey is one person's way through one
// scenario; its timer (next_at) lives in the row, so a restart finds every
// pending reminder. At most one active journey per (scenario, person, key).
// journey_log keeps what each step did (sent, or suppressed and why) for
// stats and `webpushctl simulate`. product_interest remembers who viewed or
// carted a product lately (back-in-stock and price-drop audiences) without
// scanning events. Campaigns keep their fan-out cursor, so a restart goes on
// where it stopped. Outbox rows learn their journey and delivery id.
constexpr std::string_view v5_automation = R"sql(
CREATE TABLE journeys (
  id          INTEGER PRIMARY KEY,
  scenario    TEXT    NOT NULL,
  person      TEXT    NOT NULL,
  journey_key TEXT    NOT NULL DEFAULT '',
  state       TEXT    NOT NULL CHECK (state IN ('active', 'completed', 'exited', 'cancelled')),
  next_step   INTEGER NOT NULL DEFAULT 0,
  step_name   TEXT    NOT NULL DEFAULT '',
  anchor_at   INTEGER NOT NULL,
  next_at     INTEGER,
  context     TEXT    NOT NULL CHECK (json_valid(context)),
  started_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  ended_at    INTEGER,
  end_reason  TEXT
) STRICT;

CREATE UNIQUE INDEX journeys_one_active ON journeys (scenario, person, journey_key) WHERE state = 'active';
CREATE INDEX journeys_due ON journeys (next_at, id) WHERE state = 'active';
CREATE INDEX journeys_person ON journeys (person, scenario, started_at);

CREATE TABLE journey_log (
  id              INTEGER PRIMARY KEY,
  journey_id      INTEGER NOT NULL,
  scenario        TEXT    NOT NULL,
  step            TEXT    NOT NULL,
  person          TEXT    NOT NULL,
  subscription_id INTEGER,
  outcome         TEXT    NOT NULL CHECK (outcome IN ('entered', 'sent', 'suppressed', 'skipped', 'exited', 'restarted', 'completed', 'cancelled')),
  reason          TEXT    NOT NULL DEFAULT '',
  outbox_id       INTEGER,
  at              INTEGER NOT NULL
) STRICT;

CREATE INDEX journey_log_scenario ON journey_log (scenario, at);
CREATE INDEX journey_log_journey ON journey_log (journey_id);
CREATE INDEX journey_log_person ON journey_log (person);

CREATE TABLE product_interest (
  product_id TEXT    NOT NULL,
  person     TEXT    NOT NULL,
  at         INTEGER NOT NULL,
  PRIMARY KEY (product_id, person)
) STRICT, WITHOUT ROWID;

CREATE INDEX product_interest_person ON product_interest (person);

CREATE TABLE campaigns (
  id          TEXT    PRIMARY KEY,
  name        TEXT    NOT NULL,
  category    TEXT    NOT NULL,
  definition  TEXT    NOT NULL CHECK (json_valid(definition)),
  send_at     INTEGER NOT NULL,
  local_time  INTEGER NOT NULL DEFAULT 0 CHECK (local_time IN (0, 1)),
  state       TEXT    NOT NULL CHECK (state IN ('scheduled', 'running', 'completed', 'cancelled')),
  cursor      INTEGER NOT NULL DEFAULT 0,
  targeted    INTEGER NOT NULL DEFAULT 0,
  enqueued    INTEGER NOT NULL DEFAULT 0,
  skipped     INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER
) STRICT;

CREATE INDEX campaigns_due ON campaigns (send_at) WHERE state IN ('scheduled', 'running');

ALTER TABLE outbox ADD COLUMN journey_id INTEGER;
ALTER TABLE outbox ADD COLUMN delivery_id TEXT;
CREATE INDEX outbox_journey ON outbox (journey_id) WHERE journey_id IS NOT NULL;
CREATE INDEX outbox_source ON outbox (source);
CREATE INDEX events_type_time ON events (type, occurred_at);
)sql";

// v6: campaigns learn when their fan-out starts (due_at: send_at, or for a
// local-time campaign — whose send_at is the wall-clock time read as UTC —
// 14 hours earlier, the moment it is that time in the earliest zone,
// UTC+14), why they were skipped per subscriber (counts by reason), who
// created them (the API key's name) and why they ended (cancellation).
constexpr std::string_view v6_campaign_progress = R"sql(
ALTER TABLE campaigns ADD COLUMN due_at INTEGER;
UPDATE campaigns SET due_at = send_at - local_time * 50400000;
ALTER TABLE campaigns ADD COLUMN skipped_reasons TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(skipped_reasons));
ALTER TABLE campaigns ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN end_reason TEXT NOT NULL DEFAULT '';
CREATE INDEX campaigns_fanout_due ON campaigns (due_at) WHERE state IN ('scheduled', 'running');
CREATE INDEX campaigns_created ON campaigns (created_at);
)sql";

// v7: pacing (frequency caps, quiet hours, unsubscribe learning) and recall.
//
// The outbox is rebuilt (SQLite cannot change a CHECK constraint in place)
// to admit the state 'suppressed' — held back by a cap or quiet hours, as
// opposed to 'cancelled', withdrawn by a journey exit, consent or erasure —
// and gains what the send-time gate needs: the message's priority and
// expected value (who wins a contested slot), admitted_at (set once, when it
// first passes the gate, so a retry is not counted twice) and defer_limit
// (the latest moment a deferral may push it to; NULL: dropped, never
// deferred). recall_state tracks the RFC 8030 §7.3 DELETE of a message the
// push service accepted but a journey exit made unwanted.
//
// pacing_history keeps, per subscription and scope ('' every push,
// 's:<scenario>', 'c:<category>'), the most recent admission times as
// packed 64-bit milliseconds, newest first, no more than the largest cap of
// that scope needs: a cap decision reads and writes a few short rows by
// primary key and never scans history.
constexpr std::string_view v7_pacing = R"sql(
CREATE TABLE outbox_v7 (
  id              INTEGER PRIMARY KEY,
  subscription_id INTEGER NOT NULL REFERENCES subscriptions (id),
  payload         BLOB    NOT NULL,
  ttl_seconds     INTEGER NOT NULL CHECK (ttl_seconds >= 0),
  urgency         TEXT    NOT NULL DEFAULT 'normal'
                          CHECK (urgency IN ('very-low', 'low', 'normal', 'high')),
  topic           TEXT,
  source          TEXT    NOT NULL DEFAULT '',
  state           TEXT    NOT NULL DEFAULT 'queued'
                          CHECK (state IN ('queued', 'sending', 'sent', 'gone', 'failed',
                                           'dead', 'expired', 'cancelled', 'suppressed')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  claimed_at      INTEGER,
  finished_at     INTEGER,
  last_status     INTEGER,
  last_reason     TEXT,
  location        TEXT,
  category        TEXT,
  journey_id      INTEGER,
  delivery_id     TEXT,
  priority        INTEGER NOT NULL DEFAULT 0,
  value           REAL,
  admitted_at     INTEGER,
  defer_limit     INTEGER,
  recall_state    TEXT CHECK (recall_state IN ('requested', 'recalled', 'too_late', 'unsupported', 'failed')),
  recall_reason   TEXT
) STRICT;

INSERT INTO outbox_v7 (id, subscription_id, payload, ttl_seconds, urgency, topic, source, state, attempts,
                       created_at, next_attempt_at, expires_at, claimed_at, finished_at, last_status,
                       last_reason, location, category, journey_id, delivery_id, admitted_at)
SELECT id, subscription_id, payload, ttl_seconds, urgency, topic, source, state, attempts,
       created_at, next_attempt_at, expires_at, claimed_at, finished_at, last_status,
       last_reason, location, category, journey_id, delivery_id,
       CASE WHEN attempts > 0 OR state = 'sending' THEN coalesce(claimed_at, created_at) END
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v7 RENAME TO outbox;

CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'queued';
CREATE INDEX outbox_inflight ON outbox (id) WHERE state = 'sending';
CREATE INDEX outbox_subscription ON outbox (subscription_id);
CREATE INDEX outbox_journey ON outbox (journey_id) WHERE journey_id IS NOT NULL;
CREATE INDEX outbox_source ON outbox (source);
CREATE INDEX outbox_recall ON outbox (id) WHERE recall_state = 'requested';

-- The journey log learns 'deferred' (held by a cap or quiet hours, sent
-- later); like the outbox, a CHECK change means a rebuild.
CREATE TABLE journey_log_v7 (
  id              INTEGER PRIMARY KEY,
  journey_id      INTEGER NOT NULL,
  scenario        TEXT    NOT NULL,
  step            TEXT    NOT NULL,
  person          TEXT    NOT NULL,
  subscription_id INTEGER,
  outcome         TEXT    NOT NULL CHECK (outcome IN ('entered', 'sent', 'suppressed', 'skipped', 'exited', 'restarted',
                                                      'completed', 'cancelled', 'deferred')),
  reason          TEXT    NOT NULL DEFAULT '',
  outbox_id       INTEGER,
  at              INTEGER NOT NULL
) STRICT;
INSERT INTO journey_log_v7 SELECT id, journey_id, scenario, step, person, subscription_id, outcome, reason,
                                  outbox_id, at FROM journey_log;
DROP TABLE journey_log;
ALTER TABLE journey_log_v7 RENAME TO journey_log;
CREATE INDEX journey_log_scenario ON journey_log (scenario, at);
CREATE INDEX journey_log_journey ON journey_log (journey_id);
CREATE INDEX journey_log_person ON journey_log (person);

CREATE TABLE pacing_history (
  subscription_id INTEGER NOT NULL,
  scope           TEXT    NOT NULL,
  sends           BLOB    NOT NULL,
  PRIMARY KEY (subscription_id, scope)
) STRICT, WITHOUT ROWID;

-- Per source (scenario or campaign) and step, per hour: sends, deferrals and
-- suppressions by reason, attributed unsubscribes by kind. Rolling windows
-- are sums over hours.
CREATE TABLE pacing_counters (
  source TEXT    NOT NULL,
  step   TEXT    NOT NULL,
  hour   INTEGER NOT NULL,
  metric TEXT    NOT NULL,
  n      INTEGER NOT NULL,
  PRIMARY KEY (source, step, hour, metric)
) STRICT, WITHOUT ROWID;

CREATE TABLE pacing_levels (
  scenario   TEXT    PRIMARY KEY,
  level      INTEGER NOT NULL CHECK (level >= 0),
  changed_at INTEGER NOT NULL
) STRICT;

CREATE TABLE pacing_level_log (
  id           INTEGER PRIMARY KEY,
  scenario     TEXT    NOT NULL,
  at           INTEGER NOT NULL,
  from_level   INTEGER NOT NULL,
  to_level     INTEGER NOT NULL,
  sends        INTEGER NOT NULL,
  unsubscribes INTEGER NOT NULL,
  reason       TEXT    NOT NULL
) STRICT;

CREATE INDEX pacing_level_log_scenario ON pacing_level_log (scenario, at);

CREATE TABLE unsubscribe_attributions (
  id              INTEGER PRIMARY KEY,
  subscription_id INTEGER NOT NULL,
  at              INTEGER NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('gone', 'unsubscribe', 'withdraw')),
  category        TEXT,
  source          TEXT    NOT NULL,
  step            TEXT    NOT NULL,
  outbox_id       INTEGER NOT NULL,
  sent_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX unsubscribe_attributions_source ON unsubscribe_attributions (source, at);
CREATE INDEX unsubscribe_attributions_subscription ON unsubscribe_attributions (subscription_id);
)sql";

// v8: A/B message variants. Each outbox message names the variant of its
// step it carries ('' when the step has one message), as does an
// unsubscribe attributed to it, and the hourly counters gain the variant as
// a key, so sends, clicks and unsubscribes can
// be compared per variant. A primary-key change means a rebuild.
constexpr std::string_view v8_variants = R"sql(
ALTER TABLE outbox ADD COLUMN variant TEXT NOT NULL DEFAULT '';
ALTER TABLE unsubscribe_attributions ADD COLUMN variant TEXT NOT NULL DEFAULT '';

CREATE TABLE pacing_counters_v8 (
  source  TEXT    NOT NULL,
  step    TEXT    NOT NULL,
  variant TEXT    NOT NULL DEFAULT '',
  hour    INTEGER NOT NULL,
  metric  TEXT    NOT NULL,
  n       INTEGER NOT NULL,
  PRIMARY KEY (source, step, variant, hour, metric)
) STRICT, WITHOUT ROWID;
INSERT INTO pacing_counters_v8 (source, step, variant, hour, metric, n)
SELECT source, step, '', hour, metric, n FROM pacing_counters;
DROP TABLE pacing_counters;
ALTER TABLE pacing_counters_v8 RENAME TO pacing_counters;
)sql";

// v9: what happened after delivery, and what it earned. Beacons find
// their outbox message by delivery id (an index: one lookup per report).
// tracking_touches keeps, per subscription, the latest push reported shown
// and the latest reported clicked (the report's time), which is all
// conversion attribution reads. conversions records each attributed
// purchase once (the event id is the key): the push it is credited to (its
// source, step and variant as they were), the touch's time, the revenue in
// hundredths of the currency's unit. Both hold a subscription id, so an
// erasure finds them; the hourly counters they feed hold no person.
constexpr std::string_view v9_tracking = R"sql(
CREATE INDEX outbox_delivery ON outbox (delivery_id) WHERE delivery_id IS NOT NULL;

CREATE TABLE tracking_touches (
  subscription_id   INTEGER PRIMARY KEY,
  shown_outbox_id   INTEGER,
  shown_at          INTEGER,
  clicked_outbox_id INTEGER,
  clicked_at        INTEGER
) STRICT;

CREATE TABLE conversions (
  event_id        TEXT    PRIMARY KEY,
  kind            TEXT    NOT NULL CHECK (kind IN ('converted', 'influenced')),
  subscription_id INTEGER NOT NULL,
  outbox_id       INTEGER NOT NULL,
  source          TEXT    NOT NULL,
  step            TEXT    NOT NULL,
  variant         TEXT    NOT NULL DEFAULT '',
  touch_at        INTEGER NOT NULL,
  occurred_at     INTEGER NOT NULL,
  revenue         INTEGER NOT NULL CHECK (revenue >= 0),
  currency        TEXT    NOT NULL,
  attributed_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX conversions_subscription ON conversions (subscription_id);
)sql";

constexpr std::array all_migrations{
    migration{1, v1_subscriptions_and_outbox},
    migration{2, v2_subscribers_and_consent},
    migration{3, v3_delivery_events},
    migration{4, v4_events},
    migration{5, v5_automation},
    migration{6, v6_campaign_progress},
    migration{7, v7_pacing},
    migration{8, v8_variants},
    migration{9, v9_tracking},
};

}  // namespace

std::span<const migration> migrations() noexcept { return all_migrations; }

}  // namespace webpushd::storage::detail
