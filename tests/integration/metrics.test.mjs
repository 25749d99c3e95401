// GET /metrics and GET /v1/status of the running daemon after real traffic:
// two shoppers subscribe through the HTTP API with subscriptions of the
// independent push-service emulator (web-push-testing), the shop backend
// reports their carts, a scenario sends each a reminder — one accepted, one
// answered 410 because the emulator expired it — a purchase ends one
// journey, two campaigns meet the minimum gap (one deferred, one dropped),
// and a service worker reports a push shown. The scrape is read with an
// independent parser of the Prometheus text format (Debian's
// python3-prometheus-client), checked against the naming conventions (and by
// `promtool check metrics` when Prometheus is installed), and every figure
// must be exactly what that traffic makes. Nothing is scraped before the
// traffic: subscription counts are reused for a minute, so the one scrape
// that counts them comes after the 410.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { daemonClient, daemonConfigYaml, run, sourceDir, startDaemon, startEmulator, stopChild, tempDir, waitFor, webpushctl } from './harness.mjs';

const { parse: parseYaml } = createRequire(path.join(sourceDir, 'tests', 'peers', 'package.json'))('yaml');
const ALERTS = path.join(sourceDir, 'deploy', 'prometheus', 'webpushd-alerts.yml');
const hasPromtool = () => run('sh', ['-c', 'command -v promtool']).status === 0;

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const SHOP = 'https://shop.example';

const scenarioYaml = `
version: 1
scenarios:
  - name: abandoned_cart
    category: cart_reminders
    trigger:
      event: cart_updated
    journey:
      key: cart.id
    exit_on:
      - event: purchase
    steps:
      - name: first_reminder
        after: 1s
        message:
          title: Your cart is waiting
          body: "{{cart.total_text}}"
          url: "{{cart.url}}"
      - name: second_reminder
        after: 1h
        message:
          title: Still thinking it over?
          body: "{{cart.total_text}}"
          url: "{{cart.url}}"
`;

const configText = () => daemonConfigYaml({
  apiKey: API_KEY, origin: SHOP, categories: { cart_reminders: 'Cart reminders' }, defaultTimezone: 'UTC',
  extra: [
    'automation:',
    '  scenario_files: [scenarios.yaml]',
    '  shop: {name: Test Shop, url: "https://shop.example"}',
    'pacing:',
    '  min_gap: 1h',
  ],
});

// The independent parser: every family with its type, help and samples.
const PARSER = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families = []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append({"name": f.name, "type": f.type, "help": f.documentation,
                     "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in f.samples]})
json.dump(families, sys.stdout)
`;

/**
 * Parses an exposition with python3-prometheus-client; throws on anything it
 * cannot read. Debian's own python3, where the Debian package installs the
 * module (a python3 earlier on PATH, e.g. pyenv's, would not have it).
 */
function parse(text) {
  const r = run('/usr/bin/python3', ['-c', PARSER], { input: text });
  assert.equal(r.status, 0, `the Prometheus parser refused the scrape:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * The naming and cardinality rules of https://prometheus.io/docs/practices/naming/
 * and /instrumentation/ that a parser does not enforce; the list of problems.
 */
function lint(families) {
  const problems = [];
  const snake = /^[a-z][a-z0-9_]*$/;
  let series = 0;
  for (const f of families) {
    const where = `${f.name} (${f.type})`;
    if (!/^(webpushd|process)_/.test(f.name)) problems.push(`${where}: no webpushd_ prefix`);
    if (!snake.test(f.name)) problems.push(`${where}: not snake_case`);
    if (!f.help) problems.push(`${where}: no HELP`);
    if (/_(ms|us|ns|millis|milliseconds|microseconds|nanoseconds|minutes|hours|days|kb|mb|kilobytes|megabytes|percent)(_|$)/.test(f.name)) {
      problems.push(`${where}: not a base unit (seconds, bytes, ratios)`);
    }
    if (f.type === 'counter') {
      // The parser names a counter's family without its _total suffix.
      for (const s of f.samples) if (!s.name.endsWith('_total')) problems.push(`${where}: sample ${s.name} lacks _total`);
    } else if (f.type === 'gauge') {
      if (/_(total|count|sum|bucket)$/.test(f.name)) problems.push(`${where}: a gauge with a counter's or histogram's suffix`);
    } else if (f.type === 'histogram') {
      if (!/_seconds$/.test(f.name)) problems.push(`${where}: a histogram of time must be in _seconds`);
      const byLabels = new Map();
      for (const s of f.samples) {
        const { le, ...rest } = s.labels;
        const key = JSON.stringify(Object.entries(rest).sort());
        if (!byLabels.has(key)) byLabels.set(key, { buckets: [], count: null });
        if (s.name.endsWith('_bucket')) byLabels.get(key).buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
        if (s.name.endsWith('_count')) byLabels.get(key).count = s.value;
      }
      for (const [key, h] of byLabels) {
        h.buckets.sort((a, b) => a[0] - b[0]);
        for (let i = 1; i < h.buckets.length; i++) if (h.buckets[i][1] < h.buckets[i - 1][1]) problems.push(`${where} ${key}: buckets not cumulative`);
        const inf = h.buckets.at(-1);
        if (!inf || inf[0] !== Infinity || inf[1] !== h.count) problems.push(`${where} ${key}: +Inf bucket is not the count`);
      }
    } else {
      problems.push(`${where}: unexpected type`);
    }
    for (const s of f.samples) {
      series += 1;
      for (const name of Object.keys(s.labels)) if (!snake.test(name) || name.startsWith('__')) problems.push(`${where}: label name ${name}`);
    }
  }
  if (series > 3000) problems.push(`${series} series: cardinality out of hand`);
  return problems;
}

/** The value of the sample `name` whose labels include `labels`; fails when there is not exactly one. */
function sample(families, name, labels = {}) {
  const found = families.flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `${name} ${JSON.stringify(labels)}: ${found.length} samples`);
  return found[0].value;
}

/** The sum of every sample `name` whose labels include `labels`. */
function total(families, name, labels = {}) {
  return families.flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

describe('metrics and status of the running daemon, after real traffic', () => {
  let emulator;
  let daemon;
  let dir;
  let anna;
  let ben;
  let scrape;  // the text of the scrape after the traffic
  let families;

  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  async function shopper(customer) {
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription, clientHash } = await emulator.subscribe(key);
    const r = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['cart_reminders'], text_version: 'v1' }, timezone: 'UTC', locale: 'en',
    }, { origin: SHOP });
    assert.equal(r.status, 201, r.text);
    const linked = await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: customer });
    assert.equal(linked.status, 200, linked.text);
    return { clientHash, id: r.body.id, customer };
  }

  const cartEvent = (customer, cartId) => ({
    id: `cart-${customer}-${cartId}`,
    type: 'cart_updated',
    customer_id: customer,
    occurred_at: new Date().toISOString(),
    properties: {
      cart_id: cartId, items: [{ product_id: 'mug', quantity: 1, name: 'Mug', price: 39.5 }], total: 39.5,
      currency: 'PLN', cart_url: `https://shop.example/cart/${cartId}`,
    },
  });

  /** A campaign to every cart_reminders subscriber; resolves with its id once its fan-out is done. */
  async function campaign(name, extra = {}) {
    const created = await backend('POST', '/v1/campaigns', {
      name, category: 'cart_reminders', message: { title: name, body: 'Your cart, 10% off', url: 'https://shop.example/cart' }, ...extra,
    });
    assert.equal(created.status, 202, created.text);
    await waitFor(async () => (await backend('GET', `/v1/campaigns/${created.body.id}`)).body.state === 'completed',
      { timeoutMs: 15000, what: `campaign ${name} to fan out` });
    return created.body.id;
  }
  const campaignState = (id) => sql(`SELECT state || '|' || coalesce(last_reason, '') FROM outbox WHERE source = 'campaign:${id}'`);

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-metrics-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml);
    const configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
    daemon = await startDaemon(configFile);

    // Anna's reminder is accepted; Ben's push service has dropped him (410).
    anna = await shopper('anna');
    ben = await shopper('ben');
    await emulator.expire(ben.clientHash);
    const carts = await backend('POST', '/v1/events', { events: [cartEvent('anna', 'c1'), cartEvent('ben', 'c2')] });
    assert.equal(carts.status, 202, carts.text);
    assert.equal(carts.body.accepted, 2);
    const again = await backend('POST', '/v1/events', cartEvent('anna', 'c1'));  // a backend retry
    assert.deepEqual([again.status, again.body.accepted, again.body.duplicates], [202, 0, 1]);
    await waitFor(async () => (await emulator.messages(anna.clientHash)).length === 1, { what: 'Anna\'s reminder' });
    await waitFor(() => sql(`SELECT state FROM subscriptions WHERE public_id = '${ben.id}'`) === 'gone', { what: 'Ben\'s 410' });
    await waitFor(() => sql("SELECT group_concat(state, ',') FROM (SELECT state FROM outbox WHERE source LIKE 'scenario:%' ORDER BY state)") === 'gone,sent',
      { what: 'both reminders recorded' });

    // Anna buys: her journey exits. Ben's waits for its second step (an hour).
    const purchase = await backend('POST', '/v1/events', {
      id: 'order-anna-1', type: 'purchase', customer_id: 'anna', occurred_at: new Date().toISOString(),
      properties: { order_id: 'o-1', cart_id: 'c1', items: [{ product_id: 'mug', quantity: 1 }], total: 39.5, currency: 'PLN' },
    });
    assert.equal(purchase.status, 202, purchase.text);

    // Within the hour's minimum gap: one campaign waits (deferred), one is dropped.
    const patient = await campaign('Deferred offer');
    const impatient = await campaign('Dropped offer', { on_cap: 'drop' });
    await waitFor(() => campaignState(patient).startsWith('queued|min_gap'), { what: 'the deferral' });
    await waitFor(() => campaignState(impatient).startsWith('suppressed|min_gap'), { what: 'the suppression' });

    // A service worker reports Anna's push shown (a real signed delivery id).
    const signed = run(webpushctl, ['delivery', 'sign', '--data-dir', path.join(dir, 'data')]);
    assert.equal(signed.status, 0, signed.stderr);
    const { id, sig } = JSON.parse(signed.stdout);
    const shown = await call('POST', `/v1/deliveries/${id}/events`, { type: 'shown', sig }, { origin: SHOP });
    assert.equal(shown.status, 202, shown.text);

    // Outcomes reach the registry right after their commit: wait for the last ones.
    await waitFor(async () => {
      const res = await fetch(`${daemon.base}/metrics`, { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
      scrape = await res.text();
      families = parse(scrape);
      return total(families, 'webpushd_sends_total') === 2 && total(families, 'webpushd_beacons_recorded_total') === 1 &&
        total(families, 'webpushd_journeys_ended_total') === 1;
    }, { what: 'the traffic to show in /metrics' });
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await emulator?.stop();
  });

  test('the scrape parses, follows the naming conventions and carries no unbounded label', () => {
    assert.ok(families.length >= 15, `${families.length} families`);
    assert.deepEqual(lint(families), []);
    // Nothing that identifies a shopper, a subscription, an endpoint or a request path.
    for (const secret of [anna.id, ben.id, anna.clientHash, ben.clientHash, '127.0.0.1', 'anna', 'ben', 'cart-anna', 'order-anna']) {
      assert.ok(!scrape.includes(secret), `the scrape mentions ${secret}`);
    }
    for (const f of families) {
      for (const s of f.samples) {
        if ('route' in s.labels) assert.match(s.labels.route, /^(unmatched|(\/([a-z0-9_.-]+|\{[a-z_]+\}))+)$/, `route label ${s.labels.route}`);
        if ('push_service' in s.labels) assert.ok(['fcm', 'mozilla', 'apple', 'windows', 'other'].includes(s.labels.push_service));
      }
    }
  });

  test('promtool check metrics accepts the scrape (when Prometheus is installed)', (t) => {
    if (!hasPromtool()) {
      t.skip('promtool not installed (Debian package prometheus): the parser and the checks above stand in');
      return;
    }
    const r = run('promtool', ['check', 'metrics'], { input: scrape });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test('the shipped alert rules use only metrics the daemon exports (and promtool accepts them)', () => {
    const rules = parseYaml(readFileSync(ALERTS, 'utf8')).groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 5);
    const exported = new Set(families.flatMap((f) => [f.name, ...f.samples.map((s) => s.name)]));
    for (const r of rules) {
      assert.ok(r.alert && r.expr && r.annotations?.summary, JSON.stringify(r));
      for (const name of r.expr.match(/\b(webpushd|process)_[a-z0-9_]+/g) ?? []) {
        assert.ok(exported.has(name), `${r.alert} uses ${name}, which the daemon does not export`);
      }
    }
    if (hasPromtool()) {
      const checked = run('promtool', ['check', 'rules', ALERTS]);
      assert.equal(checked.status, 0, checked.stdout + checked.stderr);
    }
  });

  test('the counters moved exactly as the traffic says', () => {
    // Two carts and a purchase stored; the retried cart is a duplicate, not counted.
    assert.equal(sample(families, 'webpushd_events_ingested_total', { type: 'cart_updated' }), 2);
    assert.equal(sample(families, 'webpushd_events_ingested_total', { type: 'purchase' }), 1);
    assert.equal(sample(families, 'webpushd_events_ingested_total', { type: 'product_viewed' }), 0);
    assert.equal(sample(families, 'webpushd_journeys_started_total', { scenario: 'abandoned_cart' }), 2);
    assert.equal(sample(families, 'webpushd_journeys_ended_total', { scenario: 'abandoned_cart', how: 'exited' }), 1);
    assert.equal(sample(families, 'webpushd_journeys_ended_total', { scenario: 'abandoned_cart', how: 'completed' }), 0);

    // The emulator is on 127.0.0.1: push service "other". One accepted, one gone, nothing else.
    assert.equal(sample(families, 'webpushd_sends_total', { push_service: 'other', outcome: 'sent' }), 1);
    assert.equal(sample(families, 'webpushd_sends_total', { push_service: 'other', outcome: 'gone' }), 1);
    assert.equal(total(families, 'webpushd_sends_total'), 2);
    assert.equal(total(families, 'webpushd_sends_total', { push_service: 'fcm' }), 0);
    assert.equal(total(families, 'webpushd_send_retries_total'), 0);
    assert.equal(total(families, 'webpushd_dead_letters_total'), 0);
    // Both were answered: two latencies, each under the +Inf bucket.
    assert.equal(sample(families, 'webpushd_delivery_latency_seconds_count', { push_service: 'other' }), 2);
    assert.equal(sample(families, 'webpushd_delivery_latency_seconds_bucket', { push_service: 'other', le: '+Inf' }), 2);
    assert.ok(sample(families, 'webpushd_delivery_latency_seconds_sum', { push_service: 'other' }) > 0);

    assert.equal(sample(families, 'webpushd_pacing_deferrals_total', { reason: 'min_gap' }), 1);
    assert.equal(sample(families, 'webpushd_pacing_suppressions_total', { reason: 'min_gap' }), 1);
    assert.equal(total(families, 'webpushd_pacing_deferrals_total') + total(families, 'webpushd_pacing_suppressions_total'), 2);
    assert.equal(total(families, 'webpushd_pacing_level_changes_total'), 0);
    assert.equal(sample(families, 'webpushd_beacons_recorded_total', { type: 'shown' }), 1);
    assert.equal(sample(families, 'webpushd_beacons_recorded_total', { type: 'clicked' }), 0);
  });

  test('the gauges read the database: the deferred campaign waits, Ben is gone', () => {
    assert.equal(sample(families, 'webpushd_outbox_messages', { state: 'queued' }), 1);
    assert.equal(sample(families, 'webpushd_outbox_messages', { state: 'sending' }), 0);
    assert.equal(sample(families, 'webpushd_outbox_due_messages'), 0);
    assert.equal(sample(families, 'webpushd_outbox_oldest_due_age_seconds'), 0);
    assert.equal(sample(families, 'webpushd_subscriptions', { state: 'active' }), 1);
    assert.equal(sample(families, 'webpushd_subscriptions', { state: 'gone' }), 1);
    assert.equal(sample(families, 'webpushd_build_info', { version: '0.1.0' }), 1);
    const started = sample(families, 'process_start_time_seconds');
    assert.ok(started > Date.now() / 1000 - 600 && started <= Date.now() / 1000, `${started}`);
  });

  test('HTTP requests are counted by route pattern, method and status', () => {
    const requests = (route, method, status) =>
      total(families, 'webpushd_http_request_duration_seconds_count', { route, method, status: String(status) });
    assert.equal(requests('/v1/events', 'POST', 202), 3);
    assert.equal(requests('/v1/subscriptions', 'POST', 201), 2);
    assert.equal(requests('/v1/subscriptions/{id}/customer', 'POST', 200), 2);
    assert.equal(requests('/v1/campaigns', 'POST', 202), 2);
    assert.equal(requests('/v1/deliveries/{id}/events', 'POST', 202), 1);
  });

  test('GET /v1/status reports the same traffic', async () => {
    assert.equal((await call('GET', '/v1/status')).status, 401, 'reader access: an API key or a dashboard session');
    const r = await backend('GET', '/v1/status');
    assert.equal(r.status, 200, r.text);
    const s = r.body;
    assert.deepEqual(s.outbox, { queued: 1, due: 0, sending: 0, oldest_due_seconds: null, by_state: { queued: 1, sending: 0 } });
    assert.equal(s.deliveries.window_seconds, 300);
    assert.deepEqual(s.deliveries.last_5m, { sent: 1, retried: 0, gone: 1, failed: 0, dead: 0, expired: 0 });
    assert.deepEqual(Object.keys(s.deliveries.by_push_service).sort(), ['apple', 'fcm', 'mozilla', 'other', 'windows']);
    assert.deepEqual(s.deliveries.by_push_service.other, { sent: 1, retried: 0, gone: 1, failed: 0, dead: 0, expired: 0 });
    assert.equal(s.deliveries.by_push_service.fcm.sent, 0);
    assert.ok(s.deliveries.latency_p50_seconds > 0, JSON.stringify(s.deliveries));
    assert.ok(s.deliveries.latency_p99_seconds >= s.deliveries.latency_p50_seconds);
    assert.deepEqual([s.subscriptions.active, s.subscriptions.gone, s.subscriptions.erased], [1, 1, 0]);
    assert.ok(Date.parse(s.started_at) <= Date.now() && Date.parse(s.started_at) > Date.now() - 600_000, s.started_at);
    assert.equal(s.version, '0.1.0');
  });
});
