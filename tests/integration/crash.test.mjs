// Crash consistency of the whole daemon: rounds of start → traffic → kill -9
// at a random moment, on one data folder. The traffic is what a shop makes:
// cart events with unique ids (each starting an abandoned-cart journey with
// two reminders a second or two later), and campaigns fanning out to a few
// hundred subscriptions; all of it goes to a push-sink that accepts
// everything. After the rounds the daemon drains and the test checks what a
// crash must never cost: every event answered 202 is stored, every such cart
// has its journey, each journey sent each reminder once and each campaign
// each recipient once (no double fan-out), everything reached the sink, and
// what the sink got twice (at-least-once) is no more than what was in flight
// (claimed, not yet recorded) at the kills. The kill moments come from a
// seeded PRNG; the seed is printed, and CRASH_SEED=<seed> replays a run.
import assert from 'node:assert/strict';
import { Console } from 'node:console';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { cartScenarioYaml, daemonClient, daemonConfigYaml, deviceSubscription, startDaemon, startSink, stopChild, tempDir, waitFor } from './harness.mjs';

// Tables and figures for a human go to stderr: the test runner reads the
// file's stdout as its own protocol, and a long write there can break it
// ("Unable to deserialize cloned data", seen once in 5 runs).
const report = new Console(process.stderr);

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const SHOP = 'https://shop.example';
const ROUNDS = 6;
const SUBSCRIBERS = 200;  // campaign recipients: a fan-out a kill can land in
const CUSTOMERS = 40;     // the first 40 are linked to shop customers (cart events)
const INGEST_WORKERS = 3;

const scenarioYaml = cartScenarioYaml([
  { name: 'first', after: '1s', title: 'Your cart is waiting' },
  { name: 'second', after: '2s', title: 'Still there?' },
]);

/** mulberry32: small, seedable, good enough to pick kill moments. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('crash consistency: kill -9 during ingestion, scheduling and a campaign', () => {
  let sink;
  let daemon;
  let dir;
  let configFile;
  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  before(async () => {
    sink = await startSink();
    dir = tempDir('webpushd-crash-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml);
    configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, daemonConfigYaml({
      apiKey: API_KEY, origin: SHOP, categories: { promotions: 'Sales', cart_reminders: 'Cart reminders' },
      extra: ['  retry:', '    base_delay: 200ms', 'automation:', '  scenario_files: [scenarios.yaml]'],
    }));
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await sink?.stop();
  });

  test(`${ROUNDS} rounds of kill -9 lose nothing that was acknowledged`, async (t) => {
    const seed = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : (Math.random() * 2 ** 32) >>> 0;
    report.log(`crash: seed ${seed} (replay with CRASH_SEED=${seed})`);
    t.diagnostic(`seed ${seed}`);
    const rng = prng(seed);

    // The audience, created with a daemon that is not killed meanwhile.
    daemon = await startDaemon(configFile);
    for (let i = 0; i < SUBSCRIBERS; ++i) {
      const r = await call('POST', '/v1/subscriptions', {
        subscription: deviceSubscription(`${sink.base}/push/ok/d${i}`),
        consent: { categories: ['promotions', 'cart_reminders'], text_version: 'v1' }, locale: 'en',
      }, { origin: SHOP });
      assert.equal(r.status, 201, r.text);
      if (i < CUSTOMERS) assert.equal((await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: `cust-${i}` })).status, 200);
    }
    await stopChild(daemon.child);

    const acked = new Set();      // event ids answered 202 (all carts: one journey each)
    const campaigns = [];         // campaign ids answered 202
    let inFlightAtKills = 0;      // outbox rows claimed and not recorded, summed over the kills
    let sequence = 0;
    const table = [];

    for (let round = 0; round < ROUNDS; ++round) {
      daemon = await startDaemon(configFile);
      const killAfter = 300 + Math.floor(rng() * 2200);
      // Most rounds (the first always) start a campaign, at a random moment before the kill.
      const campaignAfter = round === 0 || rng() < 0.7 ? Math.floor(rng() * killAfter) : null;
      let stop = false;
      let posted = 0;
      const before = acked.size;
      const ingest = async () => {
        while (!stop) {
          const events = Array.from({ length: 1 + Math.floor(rng() * 4) }, () => {
            const n = ++sequence;
            return {
              id: `cart-${seed}-${n}`, type: 'cart_updated', customer_id: `cust-${n % CUSTOMERS}`, occurred_at: new Date().toISOString(),
              properties: { cart_id: `c-${seed}-${n}`, items: [{ product_id: 'mug', quantity: 1, price: 10 }], total: 10, currency: 'PLN' },
            };
          });
          try {
            const r = await backend('POST', '/v1/events', { events });
            ++posted;
            if (r.status === 202) {
              assert.deepEqual(r.body.rejected, [], r.text);
              assert.equal(r.body.accepted, events.length, r.text);
              for (const e of events) acked.add(e.id);
            }
          } catch { /* killed mid-request: not acknowledged, so nothing is owed */ }
          await sleep(30);
        }
      };
      const sendCampaign = async () => {
        if (campaignAfter === null) return;
        await sleep(campaignAfter);
        try {
          const r = await backend('POST', '/v1/campaigns', { name: `crash ${round}`, category: 'promotions', message: { title: `Round ${round}`, url: 'https://shop.example/sale' } });
          if (r.status === 202) campaigns.push(r.body.id);
        } catch { /* killed mid-request */ }
      };
      const workers = [...Array.from({ length: INGEST_WORKERS }, ingest), sendCampaign()];
      await sleep(killAfter);
      daemon.child.kill('SIGKILL');
      await new Promise((r) => (daemon.child.exitCode !== null || daemon.child.signalCode !== null ? r() : daemon.child.once('exit', r)));
      stop = true;
      await Promise.all(workers);
      const inFlight = Number(sql("SELECT count(*) FROM outbox WHERE state = 'sending'"));
      inFlightAtKills += inFlight;
      table.push({ round, kill_ms: killAfter, campaign_ms: campaignAfter, requests: posted, acked_events: acked.size - before,
        in_flight: inFlight, queued: Number(sql("SELECT count(*) FROM outbox WHERE state = 'queued'")),
        active_journeys: Number(sql("SELECT count(*) FROM journeys WHERE state = 'active'")) });
      assert.equal(sql('PRAGMA integrity_check'), 'ok', `round ${round}`);
    }
    report.table(table);

    // Drain: one more start, left alone until every journey, campaign and message is done.
    daemon = await startDaemon(configFile);
    await waitFor(async () => {
      const open = Number(sql(`SELECT (SELECT count(*) FROM journeys WHERE state = 'active')
        + (SELECT count(*) FROM outbox WHERE state IN ('queued', 'sending'))
        + (SELECT count(*) FROM campaigns WHERE state NOT IN ('completed', 'cancelled'))`));
      return open === 0;
    }, { timeoutMs: 60000, intervalMs: 200, what: 'the daemon to drain journeys, campaigns and the outbox' });
    assert.equal((await stopChild(daemon.child)).code, 0, daemon.log());
    assert.equal(sql('PRAGMA integrity_check'), 'ok');
    assert.ok(acked.size > 0 && campaigns.length > 0, `the rounds acknowledged ${acked.size} events and ${campaigns.length} campaigns`);

    // Every acknowledged event is stored...
    const stored = new Set(sql(`SELECT id FROM events WHERE id LIKE 'cart-${seed}-%'`).split('\n').filter(Boolean));
    const missing = [...acked].filter((id) => !stored.has(id));
    assert.deepEqual(missing, [], 'acknowledged events missing after the crashes');
    // ...and its cart's journey ran to the end. Each step's message was
    // enqueued at most once; the last step's was sent; an earlier one is sent
    // too, unless the next step came due before it went out (a kill kept it
    // queued) — then the rules replace it: cancelled, "replaced by step …".
    const journeys = JSON.parse(sql(`SELECT json_group_object(j.journey_key, json_object('state', j.state,
        'messages', (SELECT count(*) FROM outbox o WHERE o.journey_id = j.id),
        'steps', (SELECT count(DISTINCT l.step) FROM journey_log l WHERE l.journey_id = j.id AND l.outbox_id IS NOT NULL),
        'last_sent', (SELECT count(*) FROM outbox o WHERE o.journey_id = j.id AND o.state = 'sent' AND o.source LIKE '%/second'),
        'other', (SELECT count(*) FROM outbox o WHERE o.journey_id = j.id AND o.source LIKE '%/first'
                  AND (o.state = 'sent' OR (o.state = 'cancelled' AND o.last_reason LIKE 'replaced by step second%')))))
      FROM journeys j WHERE j.scenario = 'abandoned_cart'`));
    const good = (j) => j && j.state === 'completed' && j.messages === 2 && j.steps === 2 && j.last_sent === 1 && j.other === 1;
    const wrong = [...acked].map((id) => id.replace(/^cart-/, 'c-')).filter((key) => !good(journeys[key]))
      .map((key) => `${key}: ${JSON.stringify(journeys[key] ?? 'no journey')}`);
    const outboxSummary = () => sql("SELECT group_concat(state || ' ' || coalesce(last_reason, '') || ' ' || n, '; ') FROM (SELECT state, last_reason, count(*) AS n FROM outbox GROUP BY 1, 2)");
    assert.deepEqual(wrong.slice(0, 5), [], `journeys of acknowledged carts (${wrong.length} wrong); outbox: ${outboxSummary()}`);
    const replaced = Number(sql("SELECT count(*) FROM outbox WHERE state = 'cancelled' AND last_reason LIKE 'replaced by step%'"));

    // Each acknowledged campaign reached every subscriber exactly once in the outbox, all sent.
    for (const id of campaigns) {
      const c = JSON.parse(sql(`SELECT json_object('state', state) FROM campaigns WHERE id = '${id}'`) || 'null');
      const rows = JSON.parse(sql(`SELECT json_object('messages', count(*), 'recipients', count(DISTINCT subscription_id), 'sent', sum(state = 'sent'))
        FROM outbox WHERE source = 'campaign:${id}'`));
      assert.deepEqual([c?.state, rows], ['completed', { messages: SUBSCRIBERS, recipients: SUBSCRIBERS, sent: SUBSCRIBERS }], id);
    }

    // The sink saw every sent message at least once; what it saw more often
    // (at-least-once duplicates) is bounded by what was in flight at the kills.
    const stats = await sink.stats();
    const sentPerPath = JSON.parse(sql(`SELECT json_group_object(substr(s.endpoint, ${sink.base.length + 1}), n)
      FROM (SELECT subscription_id, count(*) AS n FROM outbox WHERE state = 'sent' GROUP BY subscription_id) o
      JOIN subscriptions s ON s.id = o.subscription_id`));
    const short = Object.entries(sentPerPath).filter(([p, n]) => (stats.paths[p]?.count ?? 0) < n).map(([p, n]) => `${p}: sink ${stats.paths[p]?.count ?? 0} < sent ${n}`);
    assert.deepEqual(short, [], 'messages the outbox counts as sent that the sink never saw');
    const sent = Object.values(sentPerPath).reduce((a, b) => a + b, 0);
    const received = Object.entries(stats.paths).filter(([p]) => p.startsWith('/push/')).reduce((a, [, v]) => a + v.count, 0);
    const duplicates = received - sent;
    report.log(`crash: ${acked.size} events acknowledged, ${Object.keys(journeys).length} journeys, ${campaigns.length} campaigns, ` +
      `${sent} messages sent (${replaced} reminders replaced by the next step), ${received} requests at the sink: ${duplicates} duplicates, ${inFlightAtKills} in flight at the kills`);
    assert.ok(duplicates >= 0 && duplicates <= inFlightAtKills, `duplicates ${duplicates} > in flight at the kills ${inFlightAtKills}`);
  });
});
