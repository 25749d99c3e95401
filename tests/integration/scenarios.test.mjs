// An abandoned-cart scenario end to end, in real time, through the HTTP API
// to the independent push-service emulator (web-push-testing), which checks
// VAPID and decrypts: a shopper subscribes, the shop's backend reports a
// cart, the reminder arrives with the cart's content; a purchase ends the
// journey at once and no later reminder comes. A reminder the push service
// accepted is recalled after the purchase (the project's push-sink answers
// DELETE of its Location). Delays are seconds here (the scenario file is the
// test's own), so the test stays short. The file ends with A/B variants of a
// scenario step and of a campaign, each shopper checked against the rule.
import assert from 'node:assert/strict';
import { createECDH, createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { daemonClient, daemonConfigYaml, run, sourceDir, startDaemon, startEmulator, startSink, stopChild, tempDir, waitFor, webpushctl } from './harness.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const SHOP = 'https://shop.example';

const scenarioYaml = `
version: 1
scenarios:
  - name: abandoned_cart
    category: cart_reminders
    trigger:
      event: cart_updated
      when: [cart.item_count > 0]
    journey:
      key: cart.id
    exit_on:
      - event: purchase
    steps:
      - name: first_reminder
        after: 1s
        message:
          title: Your cart is waiting
          body: "{{cart.item_count}} item(s), {{cart.total_text}}: {{#cart.items}}{{name}} {{/cart.items}}"
          url: "{{cart.url}}"
          locales:
            pl:
              title: Twój koszyk czeka
              body: "Produkty: {{cart.item_count}}, razem {{cart.total_text}}: {{#cart.items}}{{name}} {{/cart.items}}"
      - name: second_reminder
        after: 10s
        message:
          title: Still thinking it over?
          body: "{{cart.total_text}}"
          url: "{{cart.url}}"
`;

function configText() {
  return daemonConfigYaml({
    apiKey: API_KEY, origin: SHOP, categories: { cart_reminders: 'Cart reminders', promotions: 'Sales' },
    extra: ['automation:', '  scenario_files: [scenarios.yaml]', '  shop: {name: Test Shop, url: "https://shop.example"}'],
  });
}

describe('scenarios end to end: HTTP API → engine → outbox → emulator', () => {
  let emulator;
  let sink;
  let daemon;
  let dir;

  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  /** A browser subscribing through the daemon with `subscription`, linked to `customer`; returns its id. */
  async function register(subscription, customer, locale) {
    const r = await call('POST', '/v1/subscriptions', {
      subscription,
      consent: { categories: ['cart_reminders'], text_version: 'v1' },
      timezone: 'Europe/Warsaw',
      locale,
    }, { origin: SHOP });
    assert.equal(r.status, 201, r.text);
    const linked = await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: customer });
    assert.equal(linked.status, 200, linked.text);
    return r.body.id;
  }

  /** A browser subscribing through the daemon with an emulator subscription, linked to `customer`. */
  async function shopper(customer, locale) {
    const key = await call('GET', '/v1/vapid-public-key');
    assert.equal(key.status, 200, key.text);
    const { subscription, clientHash } = await emulator.subscribe(key.body.publicKey);
    return { clientHash, id: await register(subscription, customer, locale) };
  }

  const cartEvent = (customer, cartId) => ({
    id: `cart-${randomBytes(6).toString('hex')}`,
    type: 'cart_updated',
    customer_id: customer,
    occurred_at: new Date().toISOString(),
    properties: {
      cart_id: cartId,
      items: [{ product_id: 'mug', quantity: 2, name: 'Kubek', price: 39.5 }, { product_id: 'tea', quantity: 1, name: 'Herbata', price: 50 }],
      total: 129,
      currency: 'PLN',
      cart_url: `https://shop.example/cart/${cartId}`,
    },
  });
  const purchaseEvent = (customer, cartId) => ({
    id: `order-${randomBytes(6).toString('hex')}`,
    type: 'purchase',
    customer_id: customer,
    occurred_at: new Date().toISOString(),
    properties: { order_id: `o-${cartId}`, cart_id: cartId, items: [{ product_id: 'mug', quantity: 2 }], total: 129, currency: 'PLN' },
  });

  before(async () => {
    emulator = await startEmulator();
    sink = await startSink();
    dir = tempDir('webpushd-scenarios-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml);
    const configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
    daemon = await startDaemon(configFile);
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await emulator?.stop();
    await sink?.stop();
  });

  test('the reminder arrives decrypted with the cart\'s content, in the shopper\'s language; a purchase stops the next one', async () => {
    const anna = await shopper('cust-anna', 'pl-PL');
    const posted = await backend('POST', '/v1/events', cartEvent('cust-anna', 'cart-anna'));
    assert.equal(posted.status, 202, posted.text);

    const [first] = await waitFor(async () => {
      const m = await emulator.messages(anna.clientHash);
      return m.length > 0 ? m : null;
    }, { timeoutMs: 15000, what: 'the first reminder at the emulator' });
    const payload = JSON.parse(first);
    assert.equal(payload.title, 'Twój koszyk czeka');
    assert.match(payload.body, /^Produkty: 3, razem 129,00\s?zł: Kubek Herbata$/u);
    assert.match(payload.url, /^https:\/\/shop\.example\/cart\/cart-anna\?utm_source=webpush&utm_medium=push&utm_campaign=abandoned_cart&utm_content=first_reminder$/);
    assert.match(payload.delivery.id, /^d_/);
    assert.match(payload.delivery.report, new RegExp(`^${daemon.base}/v1/deliveries/d_[^/]+/events$`));
    // The signed delivery block is the daemon's: a beacon with it is accepted.
    const beacon = await call('POST', `/v1/deliveries/${payload.delivery.id}/events`, { type: 'shown', sig: payload.delivery.sig }, { origin: SHOP });
    assert.equal(beacon.status, 202, beacon.text);

    // The second step is due 10 s after the cart: far enough that a slow,
    // shared machine still purchases before it (it once raced a 4 s step).
    const secondDue = Number(sql("SELECT next_at FROM journeys WHERE person = 'c:cust-anna' AND state = 'active' AND next_step = 1"));
    assert.ok(secondDue > Date.now(), 'the purchase comes before the second reminder is due');
    const bought = await backend('POST', '/v1/events', purchaseEvent('cust-anna', 'cart-anna'));
    assert.equal(bought.status, 202, bought.text);
    // The 202 came after the journey ended, in the same transaction.
    assert.equal(sql("SELECT state || ' ' || end_reason FROM journeys WHERE person = 'c:cust-anna'"), 'exited purchase');
    await new Promise((r) => setTimeout(r, Math.max(0, secondDue - Date.now()) + 1000));  // past the second step's due time
    assert.equal((await emulator.messages(anna.clientHash)).length, 1, 'no reminder after the purchase');  // the emulator keeps every message
    assert.equal(sql("SELECT count(*) FROM outbox WHERE source LIKE 'scenario:abandoned_cart/%'"), '1');
  });

  test('a campaign over HTTP reaches every consenting subscriber in their language, with progress', async () => {
    // anna (pl) from the test above, carl (pl), and one who chose only promotions.
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription } = await emulator.subscribe(key);
    const declined = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['promotions'], text_version: 'v1' }, locale: 'en',
    }, { origin: SHOP });
    assert.equal(declined.status, 201, declined.text);
    const carl = await shopper('cust-carl', 'pl');
    const created = await backend('POST', '/v1/campaigns', {
      name: 'Winter sale', category: 'cart_reminders',
      message: { title: 'Winter sale at {{shop.name}}', body: 'Everything -20%', url: 'https://shop.example/sale',
        locales: { pl: { title: 'Zimowa wyprzedaż w {{shop.name}}' } } },
    });
    assert.equal(created.status, 202, created.text);
    assert.match(created.body.id, /^cmp_/);
    const messages = await waitFor(async () => {
      const m = await emulator.messages(carl.clientHash);
      return m.length > 0 ? m : null;
    }, { timeoutMs: 15000, what: 'the campaign at the emulator' });
    const payload = JSON.parse(messages[0]);
    assert.equal(payload.title, 'Zimowa wyprzedaż w Test Shop');
    assert.equal(payload.body, 'Everything -20%');
    assert.match(payload.url, /^https:\/\/shop\.example\/sale\?utm_source=webpush&utm_medium=push&utm_campaign=Winter%20sale$/);
    const progress = await waitFor(async () => {
      const r = await backend('GET', `/v1/campaigns/${created.body.id}`);
      return r.body.state === 'completed' && r.body.messages.sent === r.body.enqueued ? r : null;
    }, { timeoutMs: 15000, what: 'the campaign to complete' });
    assert.equal(progress.body.enqueued, 2, JSON.stringify(progress.body));  // anna and carl, not the promotions-only one
    assert.equal(progress.body.messages.sent, 2);
  });

  test('a purchase recalls the reminder a push service accepted but may not have delivered (RFC 8030 §7.3)', async () => {
    // A device whose push service is the push-sink: it answers 201 with a
    // Location, and 204 to a DELETE of it.
    const endpointPath = '/push/ok/dora';
    const device = createECDH('prime256v1');
    device.generateKeys();
    await register({
      endpoint: sink.base + endpointPath,
      keys: { p256dh: device.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') },
    }, 'cust-dora', 'en');
    assert.equal((await backend('POST', '/v1/events', cartEvent('cust-dora', 'cart-dora'))).status, 202);
    const sentMessage = `SELECT o.id || ' ' || o.location FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
                         WHERE s.endpoint = '${sink.base}${endpointPath}' AND o.state = 'sent'`;
    const [id, location] = (await waitFor(() => sql(sentMessage), { timeoutMs: 15000, what: 'the reminder accepted by the sink' })).split(' ');
    assert.ok(location.startsWith(`${sink.base}/message/`), location);

    const bought = await backend('POST', '/v1/events', purchaseEvent('cust-dora', 'cart-dora'));
    assert.equal(bought.status, 202, bought.text);
    // The 202 came after the recall was requested, in the same transaction.
    assert.equal(sql("SELECT reason FROM journey_log WHERE person = 'c:cust-dora' AND outcome = 'exited'"), 'purchase (1 recall(s) requested)');

    const messagePath = location.slice(sink.base.length);
    const [recall] = await waitFor(async () => (await sink.stats()).paths[messagePath]?.requests, { what: 'the DELETE at the sink' });
    assert.equal(recall.method, 'DELETE');
    assert.equal(recall.body_bytes, 0);
    const token = recall.authorization_header.match(/^vapid t=([^,]+), k=/)[1];
    assert.equal(JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).aud, sink.base);

    await waitFor(() => sql(`SELECT recall_state FROM outbox WHERE id = ${id}`) === 'recalled', { what: 'the recall recorded' });
    const shown = run(webpushctl, ['outbox', 'show', '--data-dir', path.join(dir, 'data'), id]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, /^recall: +recalled \(DELETE answered 204\)$/m);
    // One line says what happened, by origin: never the endpoint's path.
    assert.match(daemon.log(), new RegExp(`recall of message ${id} at ${sink.base}: recalled`));
    assert.ok(!daemon.log().includes(endpointPath), 'the log names no endpoint path');
  });

  test('a purchase right after the cart: no reminder at all', async () => {
    const ben = await shopper('cust-ben', 'en-GB');
    assert.equal((await backend('POST', '/v1/events', cartEvent('cust-ben', 'cart-ben'))).status, 202);
    assert.equal((await backend('POST', '/v1/events', purchaseEvent('cust-ben', 'cart-ben'))).status, 202);
    await new Promise((r) => setTimeout(r, 2500));  // past the first step's 1 s
    assert.deepEqual(await emulator.messages(ben.clientHash), []);
    assert.equal(sql("SELECT group_concat(outcome, ',') FROM journey_log WHERE person = 'c:cust-ben'"), 'entered,exited');
  });

  test('the scenario\'s stats say what the outbox and the journey log say about the journeys above, to the backend only', async () => {
    // The tests above sent first reminders (then purchases ended those
    // journeys) and ended one journey before any reminder.
    const count = (where) => Number(sql(`SELECT count(*) FROM ${where}`));
    const sent = count("outbox WHERE source = 'scenario:abandoned_cart/first_reminder' AND state = 'sent'");
    const logged = (outcome, step) => count(`journey_log WHERE scenario = 'abandoned_cart' AND outcome = '${outcome}'`
      + (step ? ` AND step = '${step}'` : ''));
    assert.ok(sent > 0 && logged('exited') > 0, 'the tests above ran');

    assert.equal((await call('GET', '/v1/scenarios')).status, 401);
    const anonymous = await call('GET', '/v1/scenarios/abandoned_cart/stats');
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal(anonymous.body.error.code, 'unauthorized');

    const list = await backend('GET', '/v1/scenarios');
    assert.equal(list.status, 200, list.text);
    assert.deepEqual(list.body.scenarios.map((s) => [s.name, s.trigger.event, s.steps.map((step) => step.name)]),
      [['abandoned_cart', 'cart_updated', ['first_reminder', 'second_reminder']]]);
    assert.deepEqual(list.body.scenarios[0].last_7d, { sent, unsubscribes: 0, unsubscribe_rate: 0 });

    const stats = await backend('GET', '/v1/scenarios/abandoned_cart/stats');
    assert.equal(stats.status, 200, stats.text);
    const { totals, steps, per_day: perDay, windows, pacing } = stats.body;
    assert.deepEqual(Object.keys(stats.body).sort(), ['from', 'generated_at', 'loaded', 'pacing', 'per_day',
      'recent_unsubscribes', 'scenario', 'steps', 'to', 'totals', 'windows']);
    assert.equal(totals.sent, sent);
    assert.equal(totals.unsubscribe_rate, 0);
    assert.deepEqual([totals.journeys.entered, totals.journeys.exited], [logged('entered'), logged('exited')]);
    assert.deepEqual(steps.map((s) => [s.name, s.configured, s.sent, s.journeys.sent]),
      [['first_reminder', true, sent, logged('sent', 'first_reminder')], ['second_reminder', true, 0, 0]]);
    assert.equal(perDay.at(-1).date, new Date(Date.parse(stats.body.to) - 3600e3).toISOString().slice(0, 10));
    assert.equal(perDay.reduce((sum, day) => sum + day.sent, 0), sent);
    assert.deepEqual(Object.keys(windows), ['24h', '30d', '7d']);
    assert.deepEqual(windows['24h'], { sent, unsubscribes: 0, unsubscribe_rate: 0 });
    assert.deepEqual([pacing.caps, pacing.adaptive, pacing.level], [[], null, 0]);  // no pacing configured
    assert.deepEqual(stats.body.recent_unsubscribes, []);

    const unknown = await backend('GET', '/v1/scenarios/no_such_scenario/stats');
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.body.error.code, 'unknown_scenario');
    const badFrom = await backend('GET', '/v1/scenarios/abandoned_cart/stats?from=yesterday');
    assert.equal(badFrom.status, 422, badFrom.text);
    assert.deepEqual([badFrom.body.error.code, badFrom.body.error.field], ['invalid_from', 'from']);
    const hourAgo = new Date(Date.now() - 3600e3).toISOString();
    const ranged = await backend('GET', `/v1/scenarios/abandoned_cart/stats?from=${encodeURIComponent(hourAgo.replace('Z', '+00:00'))}`);
    assert.equal(ranged.status, 200, ranged.text);
    assert.equal(ranged.body.from, `${hourAgo.slice(0, 13)}:00:00.000Z`);
  });
});

describe('webpushctl simulate on the shipped examples', () => {
  const shop = path.join(sourceDir, 'examples', 'shop.yaml');
  const week = path.join(sourceDir, 'examples', 'traces', 'first_week.jsonl');

  test('prints each person\'s timeline and a summary; --json carries the same', () => {
    const r = run(webpushctl, ['simulate', '--config', shop, '--events', week]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^customer anna$/m);
    // The first reminder is an A/B test (examples/scenarios/abandoned_cart.yaml): Anna's journey draws the question.
    assert.match(r.stdout, /2026-11-02 10:30 {2}abandoned_cart\/first_reminder {2}SENT to sub-anna \(pl, variant question\): "Czegoś zapomniałeś\?" — "Twój koszyk \(249,00\s?zł\) jest o jedno kliknięcie od Ciebie\." → \S+&utm_content=first_reminder-question$/m);
    assert.match(r.stdout, /2026-11-03 09:30 {2}abandoned_cart\/second_reminder {2}SENT to sub-anna \(pl\): "Jeszcze się zastanawiasz\?"/);
    assert.match(r.stdout, /abandoned_cart {2}exited: purchase/);
    assert.match(r.stdout, /browse_abandonment\/reminder {2}suppressed \(sub-ben\): consent missing: recommendations/);
    assert.match(r.stdout, /\(times are UTC; nothing was sent\)/);
    // The shop's pacing: quiet hours in Dan's zone hold his first reminder
    // until 08:00 New York time; his unsubscribe counts against it; Anna's
    // price alert meets her weekly cap.
    assert.match(r.stdout, /2026-11-08 02:10 {2}abandoned_cart\/first_reminder {2}deferred \(sub-dan, variant reminder\): quiet_hours: 21:00–08:00 America\/New_York; deferred to 2026-11-08T13:00:00.000Z/);
    assert.match(r.stdout, /2026-11-08 13:00 {2}abandoned_cart\/first_reminder {2}SENT to sub-dan \(en, variant reminder\): "Your cart is waiting"/);
    assert.match(r.stdout, /2026-11-08 15:00 {2}abandoned_cart\/first_reminder {2}unsubscribed \(sub-dan, variant reminder\): unsubscribe cart_reminders, attributed to the push of 2026-11-08 13:00/);
    assert.match(r.stdout, /^ {4}first_reminder sent by variant: question 1, reminder 1$/m);
    assert.match(r.stdout, /price_drop\/alert {2}suppressed \(sub-anna\): global_cap: 5 per 7d/);
    const j = run(webpushctl, ['simulate', '--config', shop, '--events', week, '--json']);
    assert.equal(j.status, 0, j.stderr);
    const out = JSON.parse(j.stdout);
    assert.equal(out.summary.abandoned_cart.sent, 3);
    assert.equal(out.summary.abandoned_cart.deferred, 1);
    assert.equal(out.summary.abandoned_cart.unsubscribed, 1);
    assert.equal(out.summary.abandoned_cart.exited, 1);
    assert.equal(out.summary.price_drop.held_back['suppressed: global_cap'], 1);
    assert.deepEqual(out.summary.abandoned_cart.sent_by_variant, { first_reminder: { question: 1, reminder: 1 } });
    assert.deepEqual(out.summary.welcome.sent_by_variant, {});
    const sent = out.timeline.filter((l) => l.outcome === 'sent');
    const anna = sent.find((l) => l.person === 'c:anna' && l.step === 'first_reminder');
    assert.equal(anna.variant, 'question');
    assert.equal(anna.reason, 'pl, variant question');
    assert.equal(anna.message.title, 'Czegoś zapomniałeś?');
    assert.ok(sent.filter((l) => l.step !== 'first_reminder').every((l) => !('variant' in l)));
    assert.ok(sent.every((l) => typeof l.message.title === 'string' && !('delivery' in l.message)));
  });

  test('--until stops the clock; a broken trace names its line', () => {
    const r = run(webpushctl, ['simulate', '--config', shop, '--events', week, '--until', '2026-11-02T10:00:00Z']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /first_reminder/);
    const dir = tempDir('webpushd-simulate-');
    const bad = path.join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"at":"2026-11-02T08:00:00Z","subscribe":{"subscription_id":"s"}}\n{"id":"e","type":"cart_updated","occurred_at":"yesterday","properties":{}}\n');
    const b = run(webpushctl, ['simulate', '--config', shop, '--events', bad]);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /line 2/);
    const help = run(webpushctl, ['simulate', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--events/);
  });
});

describe('journeys survive kill -9', () => {
  let emulator;
  let dir;
  let configFile;

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-journeys-kill-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml.replace('after: 1s', 'after: 2s').replace('after: 10s', 'after: 5s'));
    configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
  });
  after(async () => { await emulator?.stop(); });

  test('a pending reminder is neither lost nor sent twice across two kill -9 restarts', async () => {
    let daemon = await startDaemon(configFile);
    const call = async (method, route, json, headers = {}) => {
      const res = await fetch(daemon.base + route, {
        method, headers: { 'content-type': 'application/json', ...headers },
        body: json === undefined ? undefined : JSON.stringify(json), signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null, text };
    };
    const backend = (method, route, json) => call(method, route, json, { authorization: `Bearer ${API_KEY}` });
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription, clientHash } = await emulator.subscribe(key);
    const sub = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['cart_reminders'], text_version: 'v1' }, locale: 'en',
    }, { origin: SHOP });
    assert.equal(sub.status, 201, sub.text);
    assert.equal((await backend('POST', `/v1/subscriptions/${sub.body.id}/customer`, { customer_id: 'cust-k' })).status, 200);
    const cart = await backend('POST', '/v1/events', {
      id: 'kill-cart-1', type: 'cart_updated', customer_id: 'cust-k', occurred_at: new Date().toISOString(),
      properties: { cart_id: 'cart-k', items: [{ product_id: 'mug', quantity: 1, name: 'Mug' }], total: 10, currency: 'EUR', cart_url: 'https://shop.example/cart' },
    });
    assert.equal(cart.status, 202, cart.text);
    daemon.child.kill('SIGKILL');  // right after the 202: the journey must already be on disk
    await new Promise((r) => daemon.child.once('exit', r));

    daemon = await startDaemon(configFile);
    await waitFor(async () => (await emulator.messages(clientHash)).length >= 1, { timeoutMs: 15000, what: 'the first reminder after the restart' });
    // Delivery is at-least-once: a message whose 201 is not recorded yet may
    // go out again after a crash. Kill once the 201 is on disk, so a second
    // copy could only come from the journey (which must not happen).
    const sent = () => run('sqlite3', [path.join(dir, 'data', 'webpushd.db'), "SELECT count(*) FROM outbox WHERE state = 'sent'"]).stdout.trim();
    await waitFor(() => sent() === '1', { timeoutMs: 5000, what: 'the first reminder recorded as sent' });
    daemon.child.kill('SIGKILL');  // the first step is done: its move to the second step committed with it
    await new Promise((r) => daemon.child.once('exit', r));

    daemon = await startDaemon(configFile);
    await waitFor(async () => (await emulator.messages(clientHash)).length >= 2, { timeoutMs: 15000, what: 'the second reminder' });
    await new Promise((r) => setTimeout(r, 1500));
    const messages = (await emulator.messages(clientHash)).map((m) => JSON.parse(m).title);
    assert.deepEqual(messages, ['Your cart is waiting', 'Still thinking it over?']);
    await stopChild(daemon.child);
  });
});

// A/B variants: the daemon runs a scenario whose step has two variants and a
// campaign with two variants; eight shoppers subscribe with the emulator.
// Each must receive exactly the variant the documented rule gives them —
// recomputed here with Node's own SHA-256 from
// include/webpushd/automation/variants.hpp, not with the daemon's code — in
// their language, with the variant in utm_content and on the outbox row.
const variantsYaml = `
version: 1
scenarios:
  - name: cart_ab
    category: cart_reminders
    trigger:
      event: cart_updated
    journey:
      key: cart.id
    steps:
      - name: nudge
        after: 1s
        variants:
          - name: plain
            weight: 1
            message:
              title: Your cart is waiting
              body: "{{cart.total_text}}"
              url: "{{cart.url}}"
              locales:
                pl:
                  title: Twój koszyk czeka
          - name: question
            weight: 1
            message:
              title: Forgot something?
              body: "Group {{variant}}: {{cart.total_text}}"
              url: "{{cart.url}}"
              locales:
                pl:
                  title: Czegoś zapomniałeś?
`;

// The rule of variants.hpp, written anew: SHA-256 over length-prefixed
// fields, the first 8 bytes >> 11 as a fraction of 2^53, onto the cumulative weights.
function assign(source, who, key, variants) {
  const field = (s) => {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const h = createHash('sha256').update(Buffer.concat(['webpushd.variant.v1', source, who, key].map(field))).digest();
  const u = Number(h.readBigUInt64BE(0) >> 11n) / 2 ** 53;
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  const p = u * total;
  let cumulative = 0;
  for (const v of variants) {
    cumulative += v.weight;
    if (p < cumulative) return v.name;
  }
  return variants[variants.length - 1].name;
}

describe('A/B variants end to end: scenario and campaign → outbox → emulator', () => {
  let emulator;
  let daemon;
  let dir;
  const shoppers = [];

  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-variants-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), variantsYaml);
    const configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
    daemon = await startDaemon(configFile);
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    for (let i = 0; i < 8; i += 1) {
      const locale = i % 2 === 0 ? 'pl-PL' : 'en';
      const { subscription, clientHash } = await emulator.subscribe(key);
      const r = await call('POST', '/v1/subscriptions', {
        subscription, consent: { categories: ['cart_reminders'], text_version: 'v1' }, timezone: 'Europe/Warsaw', locale,
      }, { origin: SHOP });
      assert.equal(r.status, 201, r.text);
      const customer = `cust-${i}-${randomBytes(4).toString('hex')}`;
      const linked = await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: customer });
      assert.equal(linked.status, 200, linked.text);
      shoppers.push({ id: r.body.id, clientHash, customer, polish: locale === 'pl-PL' });
    }
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await emulator?.stop();
  });

  test('each shopper gets the scenario variant the rule gives their journey, decrypted, in their language', async () => {
    const events = shoppers.map((s) => ({
      id: `cart-${randomBytes(6).toString('hex')}`,
      type: 'cart_updated',
      customer_id: s.customer,
      occurred_at: new Date().toISOString(),
      properties: { cart_id: `cart-${s.customer}`, items: [{ product_id: 'mug', quantity: 1 }], total: 129, currency: 'PLN',
        cart_url: `https://shop.example/cart/${s.customer}` },
    }));
    const posted = await backend('POST', '/v1/events', { events });
    assert.equal(posted.status, 202, posted.text);

    const weights = [{ name: 'plain', weight: 1 }, { name: 'question', weight: 1 }];
    const seen = new Set();
    const sentBy = { plain: 0, question: 0 };
    for (const s of shoppers) {
      const [text] = await waitFor(async () => {
        const m = await emulator.messages(s.clientHash);
        return m.length > 0 ? m : null;
      }, { timeoutMs: 15000, what: `the reminder for ${s.customer}` });
      const payload = JSON.parse(text);
      const expected = assign('scenario:cart_ab/nudge', `c:${s.customer}`, `cart-${s.customer}`, weights);
      seen.add(expected);
      sentBy[expected] += 1;
      const titles = { plain: s.polish ? 'Twój koszyk czeka' : 'Your cart is waiting',
        question: s.polish ? 'Czegoś zapomniałeś?' : 'Forgot something?' };
      assert.equal(payload.title, titles[expected], s.customer);
      if (expected === 'question') assert.match(payload.body, /^Group question: /);
      assert.equal(payload.url, `https://shop.example/cart/${s.customer}?utm_source=webpush&utm_medium=push`
        + `&utm_campaign=cart_ab&utm_content=nudge-${expected}`);
      assert.equal(sql(`SELECT o.variant FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id WHERE s.public_id = '${s.id}' AND o.source = 'scenario:cart_ab/nudge'`), expected);
      assert.equal(sql(`SELECT reason FROM journey_log WHERE outcome = 'sent' AND person = 'c:${s.customer}'`),
        `${s.polish ? 'pl' : 'en'}, variant ${expected}`);  // the translation used, and the variant
    }
    // Eight journeys at 50/50: both variants went out (which ones is fixed by the rule).
    assert.deepEqual([...seen].sort(), ['plain', 'question']);
    // The step's stats show both variants as configured, baseline first,
    // each with what it sent.
    const stats = await waitFor(async () => {
      const r = await backend('GET', '/v1/scenarios/cart_ab/stats');
      const step = r.body.steps?.find((s) => s.name === 'nudge');
      return step && step.sent === shoppers.length ? step : null;
    }, { timeoutMs: 15000, what: 'the sends counted' });
    assert.deepEqual(stats.variants.map((v) => [v.name, v.weight, v.configured, v.sent]),
      [['plain', 1, true, sentBy.plain], ['question', 1, true, sentBy.question]]);
    assert.equal(stats.variants[0].significance, null);
    assert.equal(stats.variants[1].significance.baseline, 'plain');
    assert.equal(stats.variants[1].significance.significant, false);
    // The operator sees it too.
    const first = shoppers[0];
    const id = sql(`SELECT o.id FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id WHERE s.public_id = '${first.id}'`);
    const shown = run(webpushctl, ['outbox', 'show', '--data-dir', path.join(dir, 'data'), id]);
    assert.equal(shown.status, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^variant: +${assign('scenario:cart_ab/nudge', `c:${first.customer}`, `cart-${first.customer}`, weights)}$`, 'm'));
  });

  test('a campaign with variants gives each subscription the variant of its public id', async () => {
    const created = await backend('POST', '/v1/campaigns', {
      id: `cmp_ab-${randomBytes(4).toString('hex')}`,
      name: 'Winter sale', category: 'cart_reminders',
      variants: [
        { name: 'control', weight: 1, message: { title: 'Winter sale at {{shop.name}}', url: 'https://shop.example/sale',
          locales: { pl: { title: 'Zimowa wyprzedaż w {{shop.name}}' } } } },
        { name: 'urgent', weight: 3, message: { title: 'Only today: -20%', url: 'https://shop.example/sale',
          locales: { pl: { title: 'Tylko dziś: -20%' } } } },
      ],
    });
    assert.equal(created.status, 202, created.text);
    const id = created.body.id;
    const weights = [{ name: 'control', weight: 1 }, { name: 'urgent', weight: 3 }];
    const sentBy = { control: 0, urgent: 0 };
    for (const s of shoppers) {
      const messages = await waitFor(async () => {
        const m = await emulator.messages(s.clientHash);
        return m.length > 1 ? m : null;
      }, { timeoutMs: 15000, what: `the campaign for ${s.customer}` });
      const payload = JSON.parse(messages[1]);
      const expected = assign(`campaign:${id}`, s.id, '', weights);
      sentBy[expected] += 1;
      const titles = { control: s.polish ? 'Zimowa wyprzedaż w Test Shop' : 'Winter sale at Test Shop',
        urgent: s.polish ? 'Tylko dziś: -20%' : 'Only today: -20%' };
      assert.equal(payload.title, titles[expected], s.id);
      assert.equal(payload.url, `https://shop.example/sale?utm_source=webpush&utm_medium=push&utm_campaign=Winter%20sale&utm_content=${expected}`);
      assert.equal(sql(`SELECT o.variant FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id WHERE s.public_id = '${s.id}' AND o.source = 'campaign:${id}'`), expected);
    }
    const shown = await backend('GET', `/v1/campaigns/${id}`);
    assert.equal(shown.status, 200, shown.text);
    assert.deepEqual(shown.body.variants.map((v) => [v.name, v.weight]), [['control', 1], ['urgent', 3]]);
    assert.equal(shown.body.message, undefined);
    const stats = await waitFor(async () => {
      const r = await backend('GET', `/v1/campaigns/${id}/stats`);
      return r.body.totals?.sent === shoppers.length ? r.body : null;
    }, { timeoutMs: 15000, what: 'the campaign sends counted' });
    assert.deepEqual(stats.variants.map((v) => [v.name, v.weight, v.configured, v.sent]),
      [['control', 1, true, sentBy.control], ['urgent', 3, true, sentBy.urgent]]);

    const refused = await backend('POST', '/v1/campaigns', {
      name: 'Broken', category: 'cart_reminders',
      variants: [{ name: 'a', weight: 1, message: { title: 'A' } }, { name: 'b', weight: 0, message: { title: 'B' } }],
    });
    assert.equal(refused.status, 422, refused.text);
    assert.equal(refused.body.error.code, 'invalid_variants');
    assert.equal(refused.body.error.field, 'variants[1].weight');
  });
});
