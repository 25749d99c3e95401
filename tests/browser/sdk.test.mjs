// The browser SDK (GET /sdk/webpushd.js) and service worker (GET /sdk/sw.js)
// in real headless Chromium against the real daemon (build/bin/webpushd): a
// shop page on origin A loads the SDK from the daemon on origin B (so CORS is
// real), the pre-prompt subscribes with a genuine PushSubscription (fake GCM
// server, see browser.mjs) and registers it with the daemon, pushes carrying
// deliveries the daemon signed are delivered to the worker through the
// DevTools protocol, and the worker's shown/clicked/closed reports are
// recorded by the daemon. What the daemon holds is checked the way a shop
// backend sees it: the GDPR exports (Bearer API key).
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { binDir, sourceDir, waitFor } from '../integration/harness.mjs';
import {
  BROWSER_TIMEZONE, clearNotifications, closeChromium, deliverPush, dispatchNotificationEvent, launchChromium,
  missingPrerequisite, notifications, startFakeGcm, startShop, waitForNotificationDisplay,
} from './browser.mjs';
import { CONSENT, missingDaemon, missingRoutes, startDaemonApi } from './daemon-api.mjs';

// The pre-prompt as rendered with the daemon's texts, kept for people to look at.
const screenshotDir = path.join(binDir, '..', 'browser-screenshots');

// Records, in the page, when the permission and the push subscription are
// asked for and whether a user gesture was active at that moment.
function recordPermissionCalls() {
  window.__calls = [];
  const wrap = (owner, name) => {
    if (!owner || typeof owner[name] !== 'function') return;
    const original = owner[name];
    owner[name] = function (...args) {
      window.__calls.push({ name, activation: navigator.userActivation ? navigator.userActivation.isActive : null });
      return original.apply(this, args);
    };
  };
  wrap(window.Notification, 'requestPermission');
  wrap(window.PushManager && window.PushManager.prototype, 'subscribe');
}

const texts = (locale) => CONSENT.categories.map((c) => ({ name: c.name, ...c.texts[locale] }));

describe('SDK and service worker against the real webpushd', { skip: missingPrerequisite() ?? missingDaemon() ?? false, timeout: 90000 }, () => {
  let gcm, api, shop, browser, context, page;
  const pageErrors = [];
  // The worker's delivery reports as the browser saw them (Playwright reports
  // service-worker requests too): what was sent and what the daemon answered.
  const reports = [];
  const answered = (delivery, type) => reports.find((r) => r.url === delivery.report && r.body?.type === type);
  const waitForReport = (delivery, type) => waitFor(() => answered(delivery, type), { timeoutMs: 5000, what: `${type} report` });
  const stored = () => page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('webpushd', 1);
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const req = open.result.transaction('kv').objectStore('kv').get('subscription');
      req.onsuccess = () => { open.result.close(); resolve(req.result ?? null); };
    };
  }));
  const worker = () => context.serviceWorkers().find((w) => w.url().startsWith(`${shop.origin}/webpushd-sw.js`));

  // The daemon recorded the report the browser sent: it answered 202
  // {"recorded":true}, the same report again is {"recorded":false}, and (with
  // sqlite3) the row is in delivery_events.
  async function assertRecorded(delivery, type, action) {
    const seen = await waitForReport(delivery, type);
    assert.equal(seen.status, 202, `the daemon accepted the ${type} report`);
    assert.equal(seen.origin, shop.origin, 'sent from the shop\'s worker');
    assert.equal(seen.allowOrigin, shop.origin, 'and allowed by the daemon\'s CORS');
    // The answer's body as the worker got it (see the shop's worker in browser.mjs).
    const inWorker = await waitFor(async () => (await worker().evaluate(() => self.__reports))
      .find((r) => r.url === delivery.report && JSON.parse(r.sent).type === type), { timeoutMs: 5000, what: `the worker's ${type} answer` });
    assert.deepEqual([inWorker.status, inWorker.answer], [202, { recorded: true }], `the ${type} report was new to the daemon`);
    const again = await api.report(delivery, seen.body, shop.origin);
    assert.deepEqual(again, { status: 202, body: { recorded: false } }, 'a repeat is accepted and not recorded twice');
    const rows = await api.events(delivery.id);
    if (rows) {
      const row = rows.find((e) => e.type === type);
      assert.ok(row, `delivery_events has the ${type} row: ${JSON.stringify(rows)}`);
      assert.equal(row.action ?? undefined, action);
    }
  }

  before(async () => {
    gcm = await startFakeGcm();
    // The shop's port must be known before the daemon's CORS list is written.
    shop = await startShop(() => api.origin);
    api = await startDaemonApi({ corsOrigins: [shop.origin] });
    browser = await launchChromium(gcm);
    context = browser.context;
    await context.grantPermissions(['notifications'], { origin: shop.origin });
    await context.addInitScript(recordPermissionCalls);
    context.on('response', async (res) => {
      if (!res.url().includes('/v1/deliveries/') || res.request().method() !== 'POST') return;
      let body = null;
      try { body = res.request().postDataJSON(); } catch { /* not JSON */ }
      try {
        const [sent, got] = await Promise.all([res.request().allHeaders(), res.allHeaders()]);
        reports.push({ url: res.url(), status: res.status(), body, origin: sent.origin, allowOrigin: got['access-control-allow-origin'] });
      } catch (e) {
        // The assertion that waits for this report then fails, naming the cause.
        reports.push({ url: res.url(), status: res.status(), body, origin: `headers unavailable: ${e.message}` });
      }
    });
    if (process.env.WEBPUSHD_BROWSER_DEBUG) context.on('console', (m) => console.log('[browser]', m.type(), m.text()));
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.setDefaultTimeout(10000);
  });

  after(async () => {
    try {
      if (browser) await closeChromium(browser);
    } finally {
      await Promise.all([shop?.close(), gcm?.close(), api?.close()]);
    }
  });

  test('the daemon serves every route the SDK and the worker call, and the SDK files are web/sdk\'s', async () => {
    assert.deepEqual(await missingRoutes(api.origin), []);
    for (const f of ['webpushd.js', 'sw.js']) {
      const served = await (await fetch(`${api.origin}/sdk/${f}`)).text();
      assert.equal(served, readFileSync(path.join(sourceDir, 'web', 'sdk', f), 'utf8'), `${f} is web/sdk/${f}`);
    }
  });

  const categories = async (query) => (await fetch(`${api.origin}/v1/consent/categories${query}`)).json();

  test('the daemon\'s consent texts: the locale\'s language; without a locale, consent.default_locale', async () => {
    // "locale" names the language actually served: the "pl" texts for pl-PL.
    assert.deepEqual(await categories('?locale=pl-PL'), { text_version: 'v3', locale: 'pl', categories: texts('pl') });
    assert.deepEqual(await categories('?locale=PL-pl'), { text_version: 'v3', locale: 'pl', categories: texts('pl') });
    assert.deepEqual((await categories('?locale=en-GB')).categories, texts('en'));
    assert.deepEqual(await categories(''), { text_version: 'v3', locale: 'pl', categories: texts('pl') });
  });

  // docs/API.md: "texts localised, falling back to the default locale".
  test('a locale without texts falls back to consent.default_locale', async () => {
    assert.deepEqual(await categories('?locale=de-DE'), { text_version: 'v3', locale: 'pl', categories: texts('pl') });
  });

  test('the page loads the SDK from the daemon; nothing is asked at load', async () => {
    // /cart: the page URL (not just the origin) is what the consent ledger must record.
    await page.goto(`${shop.origin}/cart`);
    const state = await page.evaluate(() => window.push.ready);
    assert.deepEqual(state, { supported: true, permission: 'granted', subscribed: false, id: null, categories: [] });
    assert.deepEqual(await page.evaluate(() => window.__calls), []);
    assert.equal(await page.locator('.wpd-prompt').count(), 0);
  });

  test('the pre-prompt lists the daemon\'s categories with its Polish texts, unticked, and is keyboard-usable', async () => {
    await page.evaluate(() => { window.__prompt = window.push.showPrompt(); });
    const dialog = page.getByRole('dialog', { name: 'Włączyć powiadomienia?' });
    await dialog.waitFor();
    // One checkbox per configured category, in the config's order, label and description from the daemon.
    const shown = await dialog.locator('label').evaluateAll((labels) => labels.map((l) => ({
      name: l.querySelector('input').value, checked: l.querySelector('input').checked,
      label: l.querySelector('span').firstChild.textContent, description: l.querySelector('small')?.textContent,
    })));
    assert.deepEqual(shown, texts('pl').map((c) => ({ ...c, checked: false })));
    assert.ok(await dialog.getByRole('checkbox', { name: /Przypomnienia o koszyku/ }).isVisible());
    // Focus starts on the first choice, so the keyboard can start at once.
    assert.equal(await page.evaluate(() => document.activeElement.value), 'cart');
    mkdirSync(screenshotDir, { recursive: true });
    await page.screenshot({ path: path.join(screenshotDir, 'pre-prompt.png'), animations: 'disabled' });
    // "Allow" with nothing chosen explains instead of asking for permission.
    await dialog.getByRole('button', { name: 'Zezwól' }).click();
    assert.match(await dialog.getByRole('alert').textContent(), /co najmniej jeden/);
    assert.deepEqual(await page.evaluate(() => window.__calls), []);
  });

  test('"Allow" asks for permission inside the click, subscribes and registers with the daemon', async () => {
    await page.keyboard.press('Space');  // ticks the focused "cart" box
    await page.getByRole('button', { name: 'Zezwól' }).focus();
    await page.keyboard.press('Enter');
    const state = await page.evaluate(() => window.__prompt);
    assert.equal(state.subscribed, true);
    assert.deepEqual(state.categories, ['cart']);
    assert.equal(await page.locator('.wpd-prompt').count(), 0, 'the prompt closed');

    const calls = await page.evaluate(() => window.__calls);
    assert.deepEqual(calls.map((c) => c.name), ['requestPermission', 'subscribe']);
    assert.equal(calls[0].activation, true, 'requestPermission ran during the user gesture');
    // Chromium's own registration request carries the daemon's VAPID key as sender.
    assert.equal(gcm.registrations.at(-1).sender, api.vapidPublicKey);

    const saved = await stored();
    assert.equal(saved.id, state.id);
    assert.equal(saved.api, api.origin);
    assert.ok(saved.token);
    assert.match(saved.endpoint, /\/fcm\/send\/webpushd-test-token-/);
    const mine = await api.subscription(state.id, saved.token);
    assert.deepEqual(mine, { id: state.id, state: 'active', categories: ['cart'], text_version: 'v3', timezone: BROWSER_TIMEZONE, locale: 'pl-PL' });

    // The shop backend's view: the genuine subscription, the browser's zone
    // and locale, and the consent ledger's grant with the page as its source.
    const { subscription: sub, consent_ledger: ledger } = await api.exported(state.id);
    const browserKeys = await page.evaluate(async () => (await (await navigator.serviceWorker.getRegistration('/')).pushManager.getSubscription()).toJSON().keys);
    assert.equal(sub.state, 'active');
    assert.equal(sub.endpoint, saved.endpoint);
    assert.deepEqual(sub.keys, browserKeys);
    assert.deepEqual(sub.categories, ['cart']);
    assert.equal(sub.consent_text_version, 'v3');
    assert.equal(sub.timezone, BROWSER_TIMEZONE);
    assert.equal(sub.locale, 'pl-PL');
    assert.equal(sub.customer_id, null);
    assert.equal(ledger.length, 1);
    assert.equal(ledger[0].action, 'grant');
    assert.deepEqual([ledger[0].categories_before, ledger[0].categories_after], [[], ['cart']]);
    assert.equal(ledger[0].source, `${shop.origin}/cart`);
    assert.equal(ledger[0].text_version, 'v3');
    assert.notEqual(ledger[0].ip_truncated, '127.0.0.1', 'the address is truncated');
  });

  // Signed by the daemon, shown by the first push and clicked in the next test.
  let cartDelivery;

  test('a push in webpushd\'s form with a daemon-signed delivery shows the notification; "shown" is recorded', async () => {
    await waitForNotificationDisplay(page);
    cartDelivery = await api.delivery();
    assert.equal(cartDelivery.report, `${api.origin}/v1/deliveries/${cartDelivery.id}/events`);
    const payload = {
      title: 'Twój koszyk czeka', body: '2 produkty', tag: 'cart-1', renotify: true, icon: `${shop.origin}/icon.png`,
      url: `${shop.origin}/cart`, actions: [{ action: 'open', title: 'Otwórz koszyk', url: `${shop.origin}/cart?from=action` },
        { action: 'later', title: 'Później' }],
      delivery: cartDelivery,
    };
    await deliverPush(page, shop.origin, JSON.stringify(payload));
    const [n] = await waitFor(async () => { const l = await notifications(page); return l.length ? l : null; }, { what: 'notification' });
    assert.equal(n.title, 'Twój koszyk czeka');
    assert.equal(n.body, '2 produkty');
    assert.equal(n.tag, 'cart-1');
    assert.equal(n.renotify, true);
    assert.deepEqual(n.actions, [{ action: 'open', title: 'Otwórz koszyk' }, { action: 'later', title: 'Później' }]);
    assert.equal(n.data.url, `${shop.origin}/cart`);
    assert.deepEqual(n.data.delivery, cartDelivery);
    await assertRecorded(cartDelivery, 'shown');
  });

  test('clicking an action reports "clicked" with the action, recorded by the daemon, and opens the action\'s URL', async () => {
    const r = await dispatchNotificationEvent(context, shop.origin, { title: 'Twój koszyk czeka', action: 'open' });
    assert.deepEqual(r.opened, [`${shop.origin}/cart?from=action`]);
    const report = await waitForReport(cartDelivery, 'clicked');
    assert.deepEqual(report.body, { type: 'clicked', sig: cartDelivery.sig, action: 'open' });
    await assertRecorded(cartDelivery, 'clicked', 'open');
    assert.deepEqual(await notifications(page), [], 'the click closed the notification');
  });

  test('a report with a signature the daemon did not make is refused', async () => {
    const other = await api.delivery();
    const forged = await api.report(other, { type: 'clicked', sig: cartDelivery.sig }, shop.origin);
    assert.equal(forged.status, 403);
    assert.deepEqual(await api.events(other.id) ?? [], []);
  });

  test('a Declarative Web Push payload is shown the same way; a click opens "navigate" and is recorded', async () => {
    const delivery = await api.delivery();
    const payload = {
      web_push: 8030,
      notification: {
        title: 'Promocja -20%', body: 'Tylko dziś', navigate: `${shop.origin}/cart?from=declarative`, tag: 'promo',
        actions: [{ action: 'see', title: 'Zobacz', navigate: `${shop.origin}/promo` }],
        data: { delivery },
      },
    };
    await deliverPush(page, shop.origin, JSON.stringify(payload));
    const [n] = await waitFor(async () => { const l = await notifications(page); return l.length ? l : null; }, { what: 'notification' });
    assert.equal(n.title, 'Promocja -20%');
    assert.equal(n.body, 'Tylko dziś');
    assert.deepEqual(n.actions, [{ action: 'see', title: 'Zobacz' }]);
    await assertRecorded(delivery, 'shown');
    const r = await dispatchNotificationEvent(context, shop.origin, { title: 'Promocja -20%' });
    assert.deepEqual(r.opened, [`${shop.origin}/cart?from=declarative`]);
    assert.deepEqual((await waitForReport(delivery, 'clicked')).body, { type: 'clicked', sig: delivery.sig });
    await assertRecorded(delivery, 'clicked');
  });

  test('closing a notification reports "closed", recorded by the daemon', async () => {
    const delivery = await api.delivery();
    await deliverPush(page, shop.origin, JSON.stringify({ title: 'Zamknij mnie', body: 'x', delivery }));
    await waitFor(async () => (await notifications(page)).length === 1, { what: 'notification' });
    await dispatchNotificationEvent(context, shop.origin, { type: 'notificationclose', title: 'Zamknij mnie' });
    await assertRecorded(delivery, 'closed');
    await clearNotifications(page);
  });

  test('a malformed or empty payload still shows a notification', async () => {
    for (const [data, title, body] of [
      ['this is not JSON {', 'New notification', 'this is not JSON {'],
      ['[1,2,3]', 'New notification', ''],
      ['{"title":42,"body":{"x":1},"actions":"nope","icon":7}', 'New notification', ''],
      ['{"web_push":8030,"notification":null}', 'New notification', ''],
      ['', 'New notification', ''],
    ]) {
      await deliverPush(page, shop.origin, data);
      const list = await waitFor(async () => { const l = await notifications(page); return l.length ? l : null; }, { what: `notification for ${data}` });
      assert.deepEqual(list.map((n) => [n.title, n.body]), [[title, body]], `payload ${JSON.stringify(data)}`);
      await clearNotifications(page);
    }
  });

  // After an endpoint change the daemon keeps the subscriber (same id,
  // consent, ledger) and holds the browser's new endpoint and keys.
  async function assertMovedTo(before, endpoint) {
    const keys = await page.evaluate(async () => (await (await navigator.serviceWorker.getRegistration('/')).pushManager.getSubscription()).toJSON().keys);
    const { subscription: sub, consent_ledger: ledger } = await api.exported(before.id);
    assert.equal(sub.id, before.id, 'same id');
    assert.equal(sub.state, 'active');
    assert.equal(sub.endpoint, endpoint, 'the daemon holds the new endpoint');
    assert.deepEqual(sub.keys, keys, 'and the new keys');
    assert.deepEqual(sub.categories, ['cart'], 'consent kept');
    assert.equal(ledger.at(-1).action, 'resubscribe');
    assert.equal(ledger.at(-1).source, shop.origin);
    assert.equal((await api.subscription(before.id, before.token)).state, 'active', 'the token still opens it');
  }

  test('pushsubscriptionchange re-subscribes with the same key and moves the daemon\'s subscriber to the new endpoint', async () => {
    const before = await stored();
    const endpoint = await worker().evaluate(async () => {
      // As if the push service had expired the subscription.
      const old = await self.registration.pushManager.getSubscription();
      await old.unsubscribe();
      const pending = [];
      const event = new Event('pushsubscriptionchange');
      Object.defineProperty(event, 'oldSubscription', { value: old });
      Object.defineProperty(event, 'waitUntil', { value: (p) => pending.push(p) });
      self.dispatchEvent(event);
      await Promise.all(pending);
      return (await self.registration.pushManager.getSubscription()).endpoint;
    });
    assert.notEqual(endpoint, before.endpoint);
    assert.equal(gcm.registrations.at(-1).sender, api.vapidPublicKey, 'same applicationServerKey');
    assert.equal((await stored()).endpoint, endpoint);
    await assertMovedTo(before, endpoint);
  });

  test('an endpoint changed without pushsubscriptionchange (Chrome never fires it) is sent at the next page view', async () => {
    const before = await stored();
    const endpoint = await worker().evaluate(async () => {
      const old = await self.registration.pushManager.getSubscription();
      await old.unsubscribe();
      const sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: old.options.applicationServerKey });
      return sub.endpoint;
    });
    assert.notEqual(endpoint, before.endpoint);
    assert.notEqual(await api.endpoint(before.id), endpoint, 'the daemon does not know it yet');
    await page.reload();
    const state = await page.evaluate(() => window.push.ready);
    assert.equal(state.subscribed, true);
    assert.equal(state.id, before.id, 'same identity');
    assert.equal((await stored()).endpoint, endpoint);
    await assertMovedTo(before, endpoint);
  });

  test('setConsent reaches the daemon and its ledger', async () => {
    const state = await page.evaluate(() => window.push.setConsent(['cart', 'promotions']));
    assert.deepEqual(state.categories, ['cart', 'promotions']);
    const saved = await stored();
    assert.deepEqual((await api.subscription(saved.id, saved.token)).categories, ['cart', 'promotions']);
    const { subscription: sub, consent_ledger: ledger } = await api.exported(saved.id);
    assert.deepEqual(sub.categories, ['cart', 'promotions']);
    const entry = ledger.at(-1);
    assert.equal(entry.action, 'change');
    assert.deepEqual([entry.categories_before, entry.categories_after], [['cart'], ['cart', 'promotions']]);
    assert.equal(entry.source, page.url(), 'the page URL the SDK sent');
    assert.equal(entry.text_version, 'v3');
  });

  test('identify with the shop backend\'s signature links the customer; a wrong signature is refused', async () => {
    const saved = await stored();
    const wrong = await page.evaluate(() => window.push.identify('customer-77', '00').then(() => null, (e) => ({ status: e.status, code: e.code })));
    assert.deepEqual(wrong, { status: 403, code: 'forbidden' });
    assert.deepEqual((await api.customer('customer-77')).subscriptions, [], 'nothing linked by a wrong signature');

    const signature = createHmac('sha256', api.identifySecret).update('customer-77').digest('hex');
    const r = await page.evaluate(([c, s]) => window.push.identify(c, s), ['customer-77', signature]);
    assert.deepEqual(r, { id: saved.id, customer_id: 'customer-77' });
    const doc = await api.customer('customer-77');
    assert.equal(doc.customer_id, 'customer-77');
    assert.deepEqual(doc.subscriptions.map((s) => [s.subscription.id, s.subscription.customer_id]), [[saved.id, 'customer-77']]);
  });

  test('unsubscribe tells the daemon (ledger entry) and drops the browser subscription', async () => {
    const saved = await stored();
    await page.evaluate(() => { window.__changes = []; window.push.on('change', (s) => window.__changes.push(s)); });
    const state = await page.evaluate(() => window.push.unsubscribe());
    assert.equal(state.subscribed, false);
    assert.equal(state.id, null);
    assert.equal(await stored(), null);
    assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/')).pushManager.getSubscription()), null);
    assert.equal((await page.evaluate(() => window.__changes)).at(-1).subscribed, false, 'a change event was emitted');

    const { subscription: sub, consent_ledger: ledger } = await api.exported(saved.id);
    assert.deepEqual([sub.state, sub.state_reason], ['gone', 'unsubscribed']);
    assert.notEqual(sub.ended_at, null);
    assert.equal(ledger.at(-1).action, 'unsubscribe');
    assert.equal(ledger.at(-1).source, shop.origin);
    // The whole history of this subscriber, in order.
    assert.deepEqual(ledger.map((e) => e.action), ['grant', 'resubscribe', 'resubscribe', 'change', 'unsubscribe']);
    assert.deepEqual(ledger.map((e) => e.seq), [...ledger.map((e) => e.seq)].sort((a, b) => a - b));
  });

  test('"Not now" is remembered; {force:true} shows the prompt again and Escape dismisses it', async () => {
    await page.evaluate(() => { window.__prompt = window.push.showPrompt(); });
    await page.getByRole('button', { name: 'Nie teraz' }).click();
    await page.evaluate(() => window.__prompt);
    assert.equal(await page.locator('.wpd-prompt').count(), 0);
    await page.reload();
    await page.evaluate(() => window.push.showPrompt());  // resolves at once: dismissed recently
    assert.equal(await page.locator('.wpd-prompt').count(), 0);
    await page.locator('#footer-link').focus();
    await page.evaluate(() => { window.__prompt = window.push.showPrompt({ force: true }); });
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.evaluate(() => window.__prompt);
    assert.equal(await page.locator('.wpd-prompt').count(), 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'footer-link', 'focus returns where it was');
  });

  test('a shop origin missing from the daemon\'s CORS list cannot call the API', async () => {
    // localhost and 127.0.0.1 are different origins; only the latter is listed.
    const foreign = shop.origin.replace('127.0.0.1', 'localhost');
    const other = await context.newPage();
    try {
      await other.goto(`${foreign}/`);
      const r = await other.evaluate(async (base) => ({
        categories: await window.push.categories().then(() => 'ok', (e) => e.name),
        subscribe: await fetch(`${base}/v1/subscriptions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })
          .then((res) => res.status, (e) => e.name),
      }), api.origin);
      assert.deepEqual(r, { categories: 'TypeError', subscribe: 'TypeError' });
    } finally { await other.close(); }
    // What the daemon answers, as the browser got it: no Access-Control-Allow-Origin, preflight refused.
    const get = await fetch(`${api.origin}/v1/consent/categories`, { headers: { origin: foreign } });
    assert.equal(get.headers.get('access-control-allow-origin'), null);
    const preflight = (origin) => fetch(`${api.origin}/v1/subscriptions`, { method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    const refused = await preflight(foreign);
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    const allowed = await preflight(shop.origin);
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get('access-control-allow-origin'), shop.origin);
  });

  test('an unsupported browser gets state {supported:false} and no errors', async () => {
    const other = await context.newPage();
    const errors = [];
    other.on('pageerror', (e) => errors.push(String(e)));
    try {
      await other.addInitScript(() => { delete window.PushManager; });
      await other.goto(`${shop.origin}/`);
      const state = await other.evaluate(() => window.push.ready);
      assert.equal(state.supported, false);
      assert.equal(state.permission, 'unsupported');
      await other.evaluate(() => window.push.showPrompt());
      assert.equal(await other.locator('.wpd-prompt').count(), 0);
      assert.deepEqual(errors, []);
    } finally { await other.close(); }
  });

  test('no uncaught errors in the shop page, no errors in the daemon\'s log', () => {
    assert.deepEqual(pageErrors, []);
    const errors = api.log().split('\n').filter((l) => /"level":"(error|critical)"/.test(l));
    assert.deepEqual(errors, []);
  });
});
