// Clicks and conversions end to end, in the running daemon: a cart reminder
// and a campaign are delivered to the independent push-service emulator
// (web-push-testing, which checks VAPID and decrypts); the service worker's
// reports are posted with the signed delivery block the decrypted payload
// carries (a forged one is refused, a repeat is not counted again); the
// shop's purchases are credited to the push clicked last; the scenario and
// campaign stats show the funnel sent → shown → clicked → converted with the
// revenue, and the shopper's GDPR export shows what was kept.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { daemonClient, daemonConfigYaml, startDaemon, startEmulator, stopChild, tempDir, waitFor } from './harness.mjs';

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
          actions:
            - action: open_cart
              title: Open the cart
              url: "{{cart.url}}"
`;

function configText() {
  return daemonConfigYaml({
    apiKey: API_KEY, origin: SHOP, categories: { cart_reminders: 'Cart reminders', promotions: 'Sales' },
    extra: ['automation:', '  scenario_files: [scenarios.yaml]', '  shop: {name: Test Shop, url: "https://shop.example"}',
      'tracking:', '  click_window: 1h', '  view_window: 1h'],
  });
}

describe('clicks and conversions: emulator → beacons → attribution → stats', () => {
  let emulator;
  let daemon;
  let dir;
  let ola;

  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  /** The service worker's report of a push, as it posts it to the payload's report URL. */
  async function report(delivery, type, { action, sig = delivery.sig } = {}) {
    assert.ok(delivery.report.startsWith(daemon.base), delivery.report);
    const body = { type, sig, ...(action ? { action } : {}) };
    return call('POST', delivery.report.slice(daemon.base.length), body, { origin: SHOP });
  }

  /** The next push the emulator decrypted for the shopper, parsed. */
  async function nextPush(seen) {
    const messages = await waitFor(async () => {
      const m = await emulator.messages(ola.clientHash);
      return m.length > seen ? m : null;
    }, { timeoutMs: 15000, what: `push ${seen + 1} at the emulator` });
    return JSON.parse(messages[seen]);
  }

  const purchase = (total, currency) => backend('POST', '/v1/events', {
    id: `order-${randomBytes(6).toString('hex')}`,
    type: 'purchase',
    customer_id: 'cust-ola',
    occurred_at: new Date().toISOString(),
    properties: { order_id: `o-${randomBytes(4).toString('hex')}`, items: [{ product_id: 'mug', quantity: 1 }], total, currency },
  });

  const scenarioStats = async () => {
    const r = await backend('GET', '/v1/scenarios/abandoned_cart/stats');
    assert.equal(r.status, 200, r.text);
    return r.body;
  };

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-tracking-');
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml);
    const configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
    daemon = await startDaemon(configFile);

    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription, clientHash } = await emulator.subscribe(key);
    const r = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['cart_reminders', 'promotions'], text_version: 'v1' }, timezone: 'UTC', locale: 'en',
    }, { origin: SHOP });
    assert.equal(r.status, 201, r.text);
    const linked = await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: 'cust-ola' });
    assert.equal(linked.status, 200, linked.text);
    ola = { id: r.body.id, clientHash };
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await emulator?.stop();
  });

  test('a cart reminder shown and clicked, a forged and a repeated report, a purchase: the scenario\'s funnel', async () => {
    const cart = await backend('POST', '/v1/events', {
      id: `cart-${randomBytes(6).toString('hex')}`, type: 'cart_updated', customer_id: 'cust-ola',
      occurred_at: new Date().toISOString(),
      properties: { cart_id: 'cart-ola', items: [{ product_id: 'mug', quantity: 1, price: 129 }], total: 129, currency: 'PLN',
        cart_url: 'https://shop.example/cart/ola' },
    });
    assert.equal(cart.status, 202, cart.text);
    const push = await nextPush(0);
    assert.equal(push.title, 'Your cart is waiting');
    assert.equal(push.actions[0].action, 'open_cart');
    const { delivery } = push;
    assert.match(delivery.id, /^d_/);

    assert.deepEqual((await report(delivery, 'shown')).body, { recorded: true });
    assert.deepEqual((await report(delivery, 'clicked', { action: 'open_cart' })).body, { recorded: true });
    // A report signed by anyone but the daemon: refused, nothing stored.
    const flipped = (delivery.sig[0] === 'A' ? 'B' : 'A') + delivery.sig.slice(1);
    const forged = await report(delivery, 'closed', { sig: flipped });
    assert.equal(forged.status, 403, forged.text);
    assert.equal(forged.body.error.code, 'forbidden');
    // The browser retries: answered, not counted again.
    const repeat = await report(delivery, 'clicked', { action: 'open_cart' });
    assert.equal(repeat.status, 202, repeat.text);
    assert.deepEqual(repeat.body, { recorded: false });
    assert.equal(sql(`SELECT group_concat(type, ' ') FROM (SELECT type FROM delivery_events WHERE delivery_id = '${delivery.id}' ORDER BY type)`),
      'clicked shown');

    const bought = await purchase(129, 'PLN');
    assert.equal(bought.status, 202, bought.text);
    // The 202 came after the attribution, in the same transaction.
    assert.equal(sql('SELECT kind || \' \' || source || \' \' || step || \' \' || revenue || \' \' || currency FROM conversions'),
      'converted scenario:abandoned_cart first_reminder 12900 PLN');
    const scrape = await call('GET', '/metrics');
    assert.match(scrape.text, /^webpushd_purchases_attributed_total\{kind="converted"\} 1$/m);
    assert.match(scrape.text, /^webpushd_purchases_attributed_total\{kind="influenced"\} 0$/m);

    // `sent` is counted when the emulator's 201 is recorded, just after it decrypted the push.
    const stats = await waitFor(async () => {
      const s = await scenarioStats();
      return s.totals.sent === 1 ? s : null;
    }, { what: 'the send to be counted' });
    assert.deepEqual(stats.totals.funnel, { entered: 1, sent: 1, shown: 1, clicked: 1, converted: 1 });
    assert.deepEqual(stats.totals.rates, { show_rate: 1, click_rate: 1, conversion_rate: 1 });
    assert.deepEqual(stats.totals.revenue, { converted: { PLN: 129 }, influenced: {} });
    assert.equal(stats.totals.influenced, 0);
    assert.equal(stats.totals.closed, 0, 'the forged close was not counted');
    const [step] = stats.steps;
    assert.equal(step.name, 'first_reminder');
    assert.deepEqual(step.funnel, { entered: 1, sent: 1, shown: 1, clicked: 1, converted: 1 });
    assert.deepEqual(step.clicks_by_action, { open_cart: 1 });
    assert.deepEqual(step.variants, []);
    const today = stats.per_day.at(-1);
    assert.equal(today.date, new Date().toISOString().slice(0, 10));
    assert.deepEqual([today.sent, today.shown, today.clicked, today.converted, today.revenue], [1, 1, 1, 1, { PLN: 129 }]);
  });

  test('a campaign clicked later wins the next purchase; its stats show its own funnel', async () => {
    const created = await backend('POST', '/v1/campaigns', {
      name: 'Spring sale', category: 'promotions',
      message: { title: 'Spring sale', body: 'Everything -20%', url: 'https://shop.example/sale',
        actions: [{ action: 'shop_now', title: 'Shop now' }] },
    });
    assert.equal(created.status, 202, created.text);
    const campaign = created.body.id;
    const push = await nextPush(1);
    assert.equal(push.title, 'Spring sale');
    assert.deepEqual((await report(push.delivery, 'shown')).body, { recorded: true });
    assert.deepEqual((await report(push.delivery, 'clicked')).body, { recorded: true });  // on the notification itself

    assert.equal((await purchase(50, 'EUR')).status, 202);
    const stats = await waitFor(async () => {
      const r = await backend('GET', `/v1/campaigns/${campaign}/stats`);
      assert.equal(r.status, 200, r.text);
      return r.body.totals.sent === 1 ? r.body : null;
    }, { what: 'the campaign\'s send to be counted' });
    assert.equal(stats.campaign, campaign);
    assert.equal(stats.status, 'completed');
    assert.deepEqual(stats.totals.funnel, { entered: 1, sent: 1, shown: 1, clicked: 1, converted: 1 });
    assert.deepEqual(stats.totals.clicks_by_action, { body: 1 });
    assert.deepEqual(stats.totals.revenue, { converted: { EUR: 50 }, influenced: {} });
    assert.equal(stats.totals.journeys, undefined);
    assert.deepEqual(stats.variants, []);
    assert.equal(stats.per_day.at(-1).converted, 1);
    // The scenario kept its own conversion; the new one went to the campaign.
    assert.deepEqual((await scenarioStats()).totals.revenue.converted, { PLN: 129 });

    // The shopper's GDPR export lists both.
    const exported = await backend('GET', '/v1/customers/cust-ola');
    assert.equal(exported.status, 200, exported.text);
    const { tracking } = exported.body.subscriptions[0];
    assert.deepEqual(tracking.conversions.map((c) => [c.kind, c.source, c.revenue, c.currency]),
      [['converted', 'scenario:abandoned_cart', 129, 'PLN'], ['converted', `campaign:${campaign}`, 50, 'EUR']]);
    assert.equal(tracking.reports.length, 4);
  });

  test('campaign stats: 401 without the key, 404 for an unknown campaign, 422 for a bad range', async () => {
    assert.equal((await call('GET', '/v1/campaigns/cmp_none/stats')).status, 401);
    const unknown = await backend('GET', '/v1/campaigns/cmp_none/stats');
    assert.equal(unknown.status, 404, unknown.text);
    assert.equal(unknown.body.error.code, 'unknown_campaign');
    const [campaign] = (await backend('GET', '/v1/campaigns')).body.campaigns;
    const bad = await backend('GET', `/v1/campaigns/${campaign.id}/stats?from=yesterday`);
    assert.equal(bad.status, 422, bad.text);
    assert.equal(bad.body.error.code, 'invalid_from');
    const reversed = await backend('GET', `/v1/campaigns/${campaign.id}/stats?from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z`);
    assert.equal(reversed.status, 422, reversed.text);
    assert.equal(reversed.body.error.code, 'invalid_range');
  });
});
