// The dashboard in real headless Chromium against the real daemon, on data
// made by real flows: shoppers subscribe through the API with push-service
// emulator subscriptions (web-push-testing, which checks VAPID and
// decrypts), a cart event starts a scenario whose reminder the emulator
// receives, a campaign reaches both shoppers, and "shown"/"clicked" beacons
// are posted with the signed delivery ids from the decrypted payloads, the
// way the service worker posts them; then a purchase. A marketer logs in
// through the form; the test waits for the page and its chart, checks that
// no Content-Security-Policy violation happened, compares every figure the
// page shows with the same API answer the page read, and keeps a full-page
// screenshot (its path is printed) in the build folder.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  binDir, daemonClient, daemonConfigYaml, run, startDaemon, startEmulator, stopChild, tempDir,
  waitFor, webpushctl,
} from '../integration/harness.mjs';
import { closeChromium, launchChromium, missingPrerequisite } from './browser.mjs';
import { missingDaemon } from './daemon-api.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const PASSWORD = `pw-${randomBytes(12).toString('base64url')}`;
const SHOP = 'https://shop.example';
const screenshotDir = path.join(binDir, '..', 'browser-screenshots');

const scenarioYaml = `
version: 1
scenarios:
  - name: abandoned_cart
    description: Reminds shoppers of the cart they left
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
          body: "{{cart.item_count}} item(s), {{cart.total_text}}"
          url: "{{cart.url}}"
`;

function configText(passwordHash) {
  return daemonConfigYaml({
    apiKey: API_KEY, origin: SHOP, categories: { cart_reminders: 'Cart reminders' },
    extra: [
      'automation:',
      '  scenario_files: [scenarios.yaml]',
      '  shop: {name: Test Shop, url: "https://shop.example"}',
      'dashboard:',
      '  users:',
      '    - name: marketing',
      `      password_hash: '${passwordHash}'`,
    ],
  });
}

/** The value at a dotted path, as the page's app.js reads it. */
const get = (obj, p) => p.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);

describe('the dashboard in Chromium, on data from real flows', { skip: missingPrerequisite() ?? missingDaemon() ?? false, timeout: 120000 }, () => {
  let emulator;
  let daemon;
  let dir;
  let browser;
  let page;
  const problems = [];  // page errors, console errors and CSP violations
  const { call, backend } = daemonClient(() => daemon, API_KEY, () => dir);

  async function shopper(customer) {
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription, clientHash } = await emulator.subscribe(key);
    const r = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['cart_reminders'], text_version: 'v1' }, timezone: 'Europe/Warsaw', locale: 'en',
    }, { origin: SHOP });
    assert.equal(r.status, 201, r.text);
    assert.equal((await backend('POST', `/v1/subscriptions/${r.body.id}/customer`, { customer_id: customer })).status, 200);
    return { clientHash, customer };
  }

  /** The decrypted payloads the emulator received for a shopper, once there are `n`. */
  const payloads = (who, n, what) => waitFor(async () => {
    const m = await emulator.messages(who.clientHash);
    return m.length >= n ? m.map((text) => JSON.parse(text)) : null;
  }, { timeoutMs: 20000, what });

  /** A beacon as the service worker posts it, with the payload's signed delivery id. */
  async function beacon(payload, type) {
    const r = await call('POST', `/v1/deliveries/${payload.delivery.id}/events`, { type, sig: payload.delivery.sig }, { origin: SHOP });
    assert.equal(r.status, 202, r.text);
  }

  const cartEvent = (customer) => ({
    id: `cart-${randomBytes(6).toString('hex')}`, type: 'cart_updated', customer_id: customer, occurred_at: new Date().toISOString(),
    properties: { cart_id: `cart-${customer}`, items: [{ product_id: 'mug', quantity: 2, name: 'Mug', price: 39.5 }], total: 79, currency: 'PLN', cart_url: `${SHOP}/cart` },
  });

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-dashboard-browser-');
    const hashed = run(webpushctl, ['dashboard', 'hash-password'], { input: `${PASSWORD}\n` });
    assert.equal(hashed.status, 0, hashed.stderr);
    writeFileSync(path.join(dir, 'scenarios.yaml'), scenarioYaml);
    const configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText(hashed.stdout.trim()));
    daemon = await startDaemon(configFile);

    // Two shoppers leave carts: the scenario's reminder reaches both.
    const anna = await shopper('cust-anna');
    const ben = await shopper('cust-ben');
    for (const who of [anna, ben]) assert.equal((await backend('POST', '/v1/events', cartEvent(who.customer))).status, 202);
    const [annaReminder] = await payloads(anna, 1, 'anna\'s reminder at the emulator');
    const [benReminder] = await payloads(ben, 1, 'ben\'s reminder at the emulator');
    assert.equal(annaReminder.title, 'Your cart is waiting');
    // Both were shown; anna clicked and bought.
    await beacon(annaReminder, 'shown');
    await beacon(benReminder, 'shown');
    await beacon(annaReminder, 'clicked');
    assert.equal((await backend('POST', '/v1/events', {
      id: `order-${randomBytes(6).toString('hex')}`, type: 'purchase', customer_id: 'cust-anna', occurred_at: new Date().toISOString(),
      properties: { order_id: 'o-1', cart_id: 'cart-cust-anna', items: [{ product_id: 'mug', quantity: 2 }], total: 79, currency: 'PLN' },
    })).status, 202);
    // A campaign to both; ben's is shown.
    const created = await backend('POST', '/v1/campaigns', {
      name: 'Spring sale', category: 'cart_reminders', message: { title: 'Spring sale', body: 'Everything -20%', url: `${SHOP}/sale` },
    });
    assert.equal(created.status, 202, created.text);
    await payloads(anna, 2, 'the campaign at anna\'s emulator subscription');
    const benCampaign = (await payloads(ben, 2, 'the campaign at ben\'s emulator subscription'))[1];
    assert.equal(benCampaign.title, 'Spring sale');
    await beacon(benCampaign, 'shown');
    await waitFor(async () => {
      const r = await backend('GET', `/v1/campaigns/${created.body.id}`);
      return r.body.state === 'completed' && r.body.messages.sent === 2;
    }, { timeoutMs: 15000, what: 'the campaign to complete' });

    browser = await launchChromium({ origin: 'http://127.0.0.1:9' });  // no push subscription needed here
    page = await browser.context.newPage();
    page.setDefaultTimeout(15000);
    await page.setViewportSize({ width: 1280, height: 900 });
    page.on('pageerror', (e) => problems.push(`page error: ${e}`));
    // Chromium logs every 4xx as a console error: the 401 of the wrong
    // password is expected. Anything else (a 404 of a route the page reads,
    // too) is a problem.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on('response', (res) => { if (res.status() >= 500 || res.status() === 404) problems.push(`${res.status()} from ${res.url()}`); });
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
  });

  after(async () => {
    try {
      if (browser) await closeChromium(browser);
    } finally {
      if (daemon) await stopChild(daemon.child);
      await emulator?.stop();
    }
  });

  test('a wrong password shows the form again with a message', async () => {
    await page.goto(`${daemon.base}/dashboard`);
    await page.fill('#name', 'marketing');
    await page.fill('#password', 'not the password');
    await Promise.all([page.waitForLoadState('load'), page.click('button[type=submit]')]);
    assert.equal(await page.locator('.message').textContent(), 'Wrong name or password.');
    assert.equal(await page.locator('#login-form').count(), 1);
  });

  test('logs in through the form, renders the chart, shows the API\'s figures, and keeps a screenshot', async (t) => {
    await page.goto(`${daemon.base}/dashboard`);
    await page.fill('#name', 'marketing');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(`${daemon.base}/dashboard`), page.click('button[type=submit]')]);
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 20000 });
    assert.equal(await page.locator('#user').textContent(), 'Logged in as marketing');

    // The chart: a canvas uPlot drew on (non-transparent pixels).
    const drawn = await waitFor(() => page.evaluate(() => {
      const canvas = document.querySelector('#chart canvas');
      if (!canvas || canvas.width === 0) return null;
      const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
      return painted > 500 ? { painted, width: canvas.width, height: canvas.height } : null;
    }), { timeoutMs: 10000, what: 'the chart to be drawn' });
    assert.ok(drawn.width >= 320 && drawn.height > 0, JSON.stringify(drawn));
    assert.ok(await page.locator('#chart .u-legend').count() > 0, 'uPlot\'s legend is there');

    // Every figure on the page against the same API answer.
    const shown = await page.evaluate(() => [...document.querySelectorAll('[data-path]')].map((e) => ({
      api: e.closest('[data-api]')?.getAttribute('data-api') ?? null,
      path: e.getAttribute('data-path'),
      value: e.getAttribute('data-value'),
      text: e.textContent,
    })));
    const cookie = (await browser.context.cookies(daemon.base)).find((c) => c.name === 'webpushd_session');
    assert.ok(cookie?.httpOnly && cookie.sameSite === 'Strict', JSON.stringify(cookie));
    const answers = new Map();
    let compared = 0;
    for (const f of shown) {
      assert.ok(f.api, `${f.path} names its API answer`);
      if (f.api === '/v1/status') continue;  // live figures: checked for presence below, they move
      if (!answers.has(f.api)) {
        // The same URL the page read, with the page's session cookie.
        const r = await call('GET', f.api, undefined, { cookie: `${cookie.name}=${cookie.value}` });
        answers.set(f.api, r.status === 404 ? null : r.body);
        if (r.status !== 404) assert.equal(r.status, 200, `${f.api}: ${r.text}`);
      }
      const expected = get(answers.get(f.api), f.path);
      assert.equal(f.value, expected === undefined ? '' : JSON.stringify(expected), `${f.api} ${f.path}`);
      if (expected === undefined || expected === null) assert.equal(f.text, '—', `${f.api} ${f.path} absent: shown as —`);
      compared += 1;
    }
    assert.ok(compared >= 40, `compared ${compared} figures`);

    // The seeded data is there: two reminders sent, and the scenario's figures add up to the chart's.
    const stats = [...answers.entries()].find(([url]) => url.startsWith('/v1/scenarios/abandoned_cart/stats'))[1];
    assert.equal(stats.totals.funnel?.sent ?? stats.totals.sent, 2);
    assert.equal(await page.locator('[data-scenario="abandoned_cart"] .funnel [data-path$="sent"]').first().textContent(), '2');
    const campaignSent = await page.locator('[data-campaign] [data-path="messages.sent"]').textContent();
    assert.equal(campaignSent, '2');
    const chartSent = Number(await page.locator('#chart').getAttribute('data-sent'));
    const campaignStats = [...answers.entries()].filter(([url]) => /^\/v1\/campaigns\/[^/]+\/stats/.test(url)).map(([, body]) => body);
    const perDaySent = [stats, ...campaignStats].reduce((sum, body) => sum + (body?.per_day ?? []).reduce((s, d) => s + (d.sent ?? 0), 0), 0);
    assert.equal(chartSent, perDaySent, 'the chart sums the per-day figures it was given');
    // Live health: a card per figure. Subscription counts hold still (the
    // daemon reuses them for a minute), so they equal the API's.
    assert.equal(await page.locator('#health-cards .card').count(), 12);
    const live = await call('GET', '/v1/status', undefined, { cookie: `${cookie.name}=${cookie.value}` });
    assert.equal(live.status, 200, live.text);
    assert.ok(live.body.subscriptions.active >= 2, live.text);
    assert.equal(await page.locator('#health-cards [data-path="subscriptions.active"]').getAttribute('data-value'),
      JSON.stringify(live.body.subscriptions.active));

    assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'no Content-Security-Policy violation');
    assert.deepEqual(problems, []);

    mkdirSync(screenshotDir, { recursive: true });
    const file = path.join(screenshotDir, 'dashboard.png');
    await page.screenshot({ path: file, fullPage: true });
    t.diagnostic(`screenshot: ${file}`);
    console.log(`dashboard screenshot: ${file}`);
  });

  test('the period selector reloads the figures for 30 days', async () => {
    await page.click('.range button[data-days="30"]');
    await page.waitForSelector('body[data-loaded="true"][data-range-days="30"]', { timeout: 15000 });
    const from = Date.parse(await page.getAttribute('body', 'data-range-from'));
    const to = Date.parse(await page.getAttribute('body', 'data-range-to'));
    assert.equal(to - from, 30 * 24 * 3600 * 1000);
    const api = await page.locator('[data-scenario="abandoned_cart"]').getAttribute('data-api');
    assert.ok(api.includes(encodeURIComponent(new Date(from).toISOString())), api);
    assert.deepEqual(problems, []);
  });

  test('logging out returns to the form, and the API refuses the old page\'s requests', async () => {
    await Promise.all([page.waitForURL(`${daemon.base}/dashboard`), page.click('.who button')]);
    await page.waitForSelector('#login-form');
    assert.equal((await browser.context.cookies(daemon.base)).some((c) => c.name === 'webpushd_session'), false);
    const status = await page.evaluate(async () => (await fetch('/v1/scenarios')).status);
    assert.equal(status, 401);
  });
});
