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

constexpr std::array all_migrations{
    migration{1, v1_subscriptions_and_outbox},
};

}  // namespace

std::span<const migration> migrations() noexcept { return all_migrations; }

}  // namespace webpushd::storage::detail
