// POST /v1/events against the running daemon: single events and batches,
// idempotent ids, the documented batch rule (valid ones stored, invalid ones
// listed by index; 422 when none is valid), the batch limit, the API key,
// and durability (kill -9 right after a 202 loses nothing).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dataAndVapidYaml, run, startDaemon, stopChild, tempDir, webpushd } from './harness.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const MAX_BATCH = 20;

const configText = [
  'server:',
  '  listen: 127.0.0.1:0',
  `  max_batch_events: ${MAX_BATCH}`,
  '  api_keys:',
  '    - name: shop-backend',
  `      key: ${API_KEY}`,
  ...dataAndVapidYaml,
  'logging:',
  '  format: json',
  '',
].join('\n');

const unique = () => randomBytes(9).toString('base64url');

function viewed(id, extra = {}) {
  return {
    id,
    type: 'product_viewed',
    customer_id: 'cust-1',
    occurred_at: '2026-11-23T13:10:00.250+01:00',
    properties: { product_id: 'p-1', name: 'Mug', url: 'https://shop.example/p/1', price: 19.9, currency: 'EUR', ...extra },
  };
}

function purchase(id) {
  return {
    id,
    type: 'purchase',
    customer_id: 'cust-1',
    occurred_at: '2026-11-23T13:12:00Z',
    properties: { order_id: `o-${id}`, items: [{ product_id: 'p-1', quantity: 1, price: 19.9 }], total: 19.9, currency: 'EUR' },
  };
}

describe('POST /v1/events', () => {
  let daemon;
  let configFile;

  async function post(body, { key = API_KEY, raw } = {}) {
    const headers = { 'content-type': 'application/json' };
    if (key !== null) headers.authorization = `Bearer ${key}`;
    const res = await fetch(`${daemon.base}/v1/events`, {
      method: 'POST', headers, body: raw ?? JSON.stringify(body), signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    let parsed = null;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  before(async () => {
    const dir = tempDir('webpushd-events-');
    configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText);
    daemon = await startDaemon(configFile);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('a single event: 202 accepted 1; the same id again is a duplicate', async () => {
    const id = `ev-${unique()}`;
    const r = await post(viewed(id));
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.body, { accepted: 1, duplicates: 0, rejected: [] });
    const again = await post(viewed(id, { price: 5 }));  // a retry, even with other content
    assert.equal(again.status, 202, again.text);
    assert.deepEqual(again.body, { accepted: 0, duplicates: 1, rejected: [] });
  });

  test('a batch: all stored; a retried batch reports every id as a duplicate', async () => {
    const events = [viewed(`ev-${unique()}`), purchase(`ev-${unique()}`), {
      id: `ev-${unique()}`, type: 'price_dropped', occurred_at: '2026-11-23T13:00:00Z',
      properties: { product_id: 'p-1', old_price: 20, new_price: 15, currency: 'PLN' },
    }];
    const r = await post({ events });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.body, { accepted: 3, duplicates: 0, rejected: [] });
    const again = await post({ events: [...events, viewed(`ev-${unique()}`)] });
    assert.deepEqual(again.body, { accepted: 1, duplicates: 3, rejected: [] });
  });

  test('a mixed batch: valid events stored, each invalid one listed with index, code and field', async () => {
    const good = [viewed(`ev-${unique()}`), purchase(`ev-${unique()}`)];
    const events = [
      good[0],
      viewed(`ev-${unique()}`, { price: -1 }),
      { ...purchase(`ev-${unique()}`), type: 'page_viewed' },
      good[1],
      { ...purchase(`ev-${unique()}`), occurred_at: '2026-02-30T00:00:00Z' },
    ];
    const r = await post({ events });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.accepted, 2);
    assert.equal(r.body.duplicates, 0);
    assert.deepEqual(r.body.rejected.map(({ index, code, field }) => ({ index, code, field })), [
      { index: 1, code: 'invalid_property', field: 'events[1].properties.price' },
      { index: 2, code: 'unknown_event_type', field: 'events[2].type' },
      { index: 4, code: 'invalid_timestamp', field: 'events[4].occurred_at' },
    ]);
    for (const x of r.body.rejected) assert.ok(x.message.length > 0);
    // The valid ones were stored; the rejected ones were not.
    const check = await post({ events: [good[0], good[1], { ...events[4], occurred_at: '2026-02-28T00:00:00Z' }] });
    assert.deepEqual(check.body, { accepted: 1, duplicates: 2, rejected: [] });
  });

  test('nothing valid: 422 with the first reason as the error and every one listed; nothing stored', async () => {
    const id = `ev-${unique()}`;
    const r = await post({ events: [{ ...viewed(id), properties: { name: 'no product id' } }, { id: '' }] });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.body.error.code, 'events_invalid');
    assert.equal(r.body.error.field, 'events[0].properties.product_id');
    assert.deepEqual(r.body.rejected.map((x) => [x.index, x.code]), [[0, 'missing_field'], [1, 'invalid_event_id']]);
    const single = await post({ ...viewed(id), type: 'page_viewed' });
    assert.equal(single.status, 422, single.text);
    assert.equal(single.body.error.field, 'type', 'a single event names its fields from the top');
    assert.deepEqual(single.body.rejected.map((x) => [x.index, x.code]), [[0, 'unknown_event_type']]);
    assert.deepEqual((await post(viewed(id))).body, { accepted: 1, duplicates: 0, rejected: [] });
  });

  test('over server.max_batch_events: 413 batch_too_large, nothing stored; empty: 422', async () => {
    const events = Array.from({ length: MAX_BATCH + 1 }, () => viewed(`ev-${unique()}`));
    const r = await post({ events });
    assert.equal(r.status, 413, r.text);
    assert.equal(r.body.error.code, 'batch_too_large');
    assert.equal(r.body.error.field, 'events');
    const exact = await post({ events: events.slice(0, MAX_BATCH) });
    assert.deepEqual(exact.body, { accepted: MAX_BATCH, duplicates: 0, rejected: [] }, 'none of the refused batch was stored');
    const empty = await post({ events: [] });
    assert.equal(empty.status, 422);
    assert.equal(empty.body.error.code, 'events_required');
    const notArray = await post({ events: {} });
    assert.equal(notArray.status, 422);
    assert.equal(notArray.body.error.field, 'events');
  });

  test('unreadable bodies: 400 for broken JSON, 415 without application/json', async () => {
    assert.equal((await post(null, { raw: '{"events": [' })).status, 400);
    const res = await fetch(`${daemon.base}/v1/events`, {
      method: 'POST', headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'text/plain' }, body: '{}',
    });
    assert.equal(res.status, 415);
  });

  test('auth: 401 with WWW-Authenticate without a key or with a wrong one; nothing stored', async () => {
    const id = `ev-${unique()}`;
    for (const key of [null, 'wrong-key']) {
      const r = await post(viewed(id), { key });
      assert.equal(r.status, 401, r.text);
      assert.equal(r.body.error.code, 'unauthorized');
      assert.match(r.headers.get('www-authenticate'), /^Bearer /);
    }
    assert.equal((await post(viewed(id))).body.accepted, 1);
  });

  test('kill -9 right after a 202: after restart the same ids are duplicates (ack after commit)', async () => {
    const events = Array.from({ length: 5 }, (_, i) => (i % 2 ? purchase : viewed)(`ev-${unique()}`));
    const r = await post({ events });
    assert.equal(r.status, 202, r.text);
    assert.equal(r.body.accepted, 5);
    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => {
      if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) resolve();
      else daemon.child.once('exit', resolve);
    });
    daemon = await startDaemon(configFile);
    const again = await post({ events });
    assert.equal(again.status, 202, again.text);
    assert.deepEqual(again.body, { accepted: 0, duplicates: 5, rejected: [] });
  });

  // GDPR: the events a shop sent about a person are part of what is held
  // about them — exported with them and erased with them.
  test('a customer\'s events are in the GDPR export and are erased with the customer', async () => {
    const customer = `cust-gdpr-${unique()}`;
    const ids = [`ev-${unique()}`, `ev-${unique()}`];
    const own = ids.map((id) => ({ ...viewed(id), customer_id: customer }));
    const other = viewed(`ev-${unique()}`);  // another customer's event stays
    assert.equal((await post({ events: [...own, other] })).body.accepted, 3);

    const auth = { authorization: `Bearer ${API_KEY}` };
    const exported = await (await fetch(`${daemon.base}/v1/customers/${customer}`, { headers: auth })).json();
    assert.deepEqual(exported.events.map((e) => e.id).sort(), [...ids].sort());
    assert.equal(exported.events[0].properties.name, 'Mug');

    const erased = await fetch(`${daemon.base}/v1/customers/${customer}`, { method: 'DELETE', headers: auth });
    assert.equal(erased.status, 200);
    const after = await (await fetch(`${daemon.base}/v1/customers/${customer}`, { headers: auth })).json();
    assert.deepEqual(after.events, []);
    // The erased ids are gone from the store: posting them again stores them
    // anew, while the other customer's event is still a duplicate.
    const again = await post({ events: [...own, other] });
    assert.equal(again.body.accepted, 2);
    assert.equal(again.body.duplicates, 1);
  });
});

// Custom event types declared in the config (events.custom_types): accepted
// with their own JSON Schema, and a name that would shadow a built-in type
// stops the start.
describe('POST /v1/events: custom types from the config', () => {
  let daemon;
  const customConfig = (customTypes) => [
    'server:',
    '  listen: 127.0.0.1:0',
    '  api_keys:',
    '    - name: shop-backend',
    `      key: ${API_KEY}`,
    ...dataAndVapidYaml,
    'events:',
    '  retention: 90d',
    '  unknown_retention: 7d',
    '  custom_types:',
    ...customTypes,
    'logging:',
    '  format: json',
    '',
  ].join('\n');
  const wishlist = [
    '    wishlist_added:',
    '      type: object',
    '      additionalProperties: false',
    '      required: [product_id]',
    '      properties:',
    '        product_id: { type: string, minLength: 1 }',
    '        name: { type: string }',
    "        url: { type: string, pattern: '^https?://' }",
  ];

  async function post(body) {
    const res = await fetch(`${daemon.base}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, body: await res.json() };
  }

  before(async () => {
    const dir = tempDir('webpushd-events-custom-');
    const file = path.join(dir, 'webpushd.yaml');
    writeFileSync(file, customConfig(wishlist));
    daemon = await startDaemon(file);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('a declared type is accepted, checked against its schema, and idempotent like the built-in ones', async () => {
    const event = (id, properties) => ({
      id, type: 'wishlist_added', customer_id: 'cust-1', occurred_at: '2026-11-23T13:10:00Z', properties,
    });
    const id = `ev-${unique()}`;
    const r = await post({
      events: [
        event(id, { product_id: 'p-9', name: 'Teapot', url: 'https://shop.example/p/9' }),
        event(`ev-${unique()}`, { name: 'no product' }),
        event(`ev-${unique()}`, { product_id: 'p-9', colour: 'red' }),
        viewed(`ev-${unique()}`),
      ],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.accepted, 2);
    assert.deepEqual(r.body.rejected.map(({ index, code, field }) => ({ index, code, field })), [
      { index: 1, code: 'missing_field', field: 'events[1].properties.product_id' },
      { index: 2, code: 'field_not_allowed', field: 'events[2].properties.colour' },
    ]);
    const again = await post(event(id, { product_id: 'p-9' }));
    assert.deepEqual(again.body, { accepted: 0, duplicates: 1, rejected: [] });
    // An undeclared type is still unknown; the message names the declared ones.
    const unknown = await post({ ...event(`ev-${unique()}`, {}), type: 'wishlist_removed' });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.rejected[0].code, 'unknown_event_type');
    assert.match(unknown.body.rejected[0].message, /wishlist_added/);
  });

  test('a custom type may not shadow a built-in one (nor the reserved "subscribed"): the daemon does not start', () => {
    for (const name of ['purchase', 'subscribed']) {
      const dir = tempDir('webpushd-events-shadow-');
      const file = path.join(dir, 'webpushd.yaml');
      writeFileSync(file, customConfig([`    ${name}:`, '      type: object']));
      const r = run(webpushd, ['--config', file], { timeoutMs: 10000 });
      assert.notEqual(r.status, 0, `${name}: started anyway`);
      assert.match(r.stderr, new RegExp(`events\\.custom_types\\.${name}`), r.stderr);
    }
  });
});
