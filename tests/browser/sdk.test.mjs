// The browser SDK (GET /sdk/webpushd.js) and service worker (GET /sdk/sw.js)
// in real headless Chromium: a shop page on origin A loads the SDK from the
// daemon on origin B (so CORS is real), the pre-prompt subscribes with a
// genuine PushSubscription (fake GCM server, see browser.mjs), pushes are
// delivered to the worker through the DevTools protocol, and the worker's
// click/close/shown reports reach the daemon.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { binDir, sourceDir, waitFor } from '../integration/harness.mjs';
import {
  clearNotifications, deliverPush, dispatchNotificationEvent, launchChromium, missingPrerequisite, notifications,
  startFakeGcm, startShop, waitForNotificationDisplay,
} from './browser.mjs';
import { probeDaemon, probeSdkFiles, startDaemonApi } from './daemon-api.mjs';
import { startStandInApi } from './standin-api.mjs';

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

/** The same scenario against any backend that speaks docs/API.md. */
function sdkSuite(name, startApi, skip) {
  describe(name, { skip }, () => {
    let gcm, api, shop, context, page;
    const pageErrors = [];
    // The worker's delivery reports as the browser saw them (Playwright reports
    // service-worker requests too): what was sent and what the daemon answered.
    const reports = [];
    const answered = (delivery, type) => reports.find((r) => r.url === delivery.report && r.body?.type === type);
    const stored = () => page.evaluate(() => new Promise((resolve, reject) => {
      const open = indexedDB.open('webpushd', 1);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const req = open.result.transaction('kv').objectStore('kv').get('subscription');
        req.onsuccess = () => { open.result.close(); resolve(req.result ?? null); };
      };
    }));

    before(async () => {
      gcm = await startFakeGcm();
      // The shop's port must be known before the daemon's CORS list is written.
      shop = await startShop(() => api.origin);
      api = await startApi({ corsOrigins: [shop.origin] });
      context = await launchChromium(gcm);
      await context.grantPermissions(['notifications'], { origin: shop.origin });
      await context.addInitScript(recordPermissionCalls);
      context.on('response', async (res) => {
        if (!res.url().includes('/v1/deliveries/') || res.request().method() !== 'POST') return;
        let body = null;
        try { body = res.request().postDataJSON(); } catch { /* not JSON */ }
        const [sent, got] = await Promise.all([res.request().allHeaders(), res.allHeaders()]);
        reports.push({ url: res.url(), status: res.status(), body, origin: sent.origin, allowOrigin: got['access-control-allow-origin'] });
      });
      if (process.env.WEBPUSHD_BROWSER_DEBUG) context.on('console', (m) => console.log('[browser]', m.type(), m.text()));
      page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(String(e)));
      page.setDefaultTimeout(10000);
    });

    after(async () => {
      await context?.close().catch(() => {});
      await Promise.all([shop?.close(), gcm?.close(), api?.close()]);
    });

    test('the page loads the SDK from the daemon; nothing is asked at load', async () => {
      await page.goto(`${shop.origin}/`);
      const state = await page.evaluate(() => window.push.ready);
      assert.deepEqual(state, { supported: true, permission: 'granted', subscribed: false, id: null, categories: [] });
      assert.deepEqual(await page.evaluate(() => window.__calls), []);
      assert.equal(await page.locator('.wpd-prompt').count(), 0);
    });

    test('the pre-prompt lists the localised categories, unticked, and is keyboard-usable', async () => {
      await page.evaluate(() => { window.__prompt = window.push.showPrompt(); });
      const dialog = page.getByRole('dialog', { name: 'Włączyć powiadomienia?' });
      await dialog.waitFor();
      const boxes = dialog.getByRole('checkbox');
      assert.equal(await boxes.count(), 2);
      assert.equal(await dialog.getByRole('checkbox', { name: /Przypomnienia o koszyku/ }).isChecked(), false);
      assert.ok(await dialog.getByRole('checkbox', { name: /Promocje/ }).isVisible());
      // Focus starts on the first choice, so the keyboard can start at once.
      assert.equal(await page.evaluate(() => document.activeElement.value), 'cart');
      mkdirSync(screenshotDir, { recursive: true });
      await page.screenshot({ path: path.join(screenshotDir, `pre-prompt-${name.split(' ')[0]}.png`), animations: 'disabled' });
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
      // Chromium's own registration request carries our VAPID key as sender.
      assert.equal(gcm.registrations.at(-1).sender, api.vapidPublicKey);

      const saved = await stored();
      assert.equal(saved.id, state.id);
      assert.equal(saved.api, api.origin);
      assert.ok(saved.token);
      assert.match(saved.endpoint, /\/fcm\/send\/webpushd-test-token-/);
      const onServer = await api.subscription(state.id, saved.token);
      assert.equal(onServer.state ?? 'active', 'active');
      assert.deepEqual(onServer.categories, ['cart']);
      assert.equal(onServer.locale, 'pl-PL');
      assert.ok(onServer.timezone, 'timezone sent');
    });

    test('a push in webpushd\'s form shows the notification and reports "shown"', async () => {
      await waitForNotificationDisplay(page);
      const id = (await stored()).id;
      const delivery = await api.delivery(id, 'own');
      const payload = {
        title: 'Twój koszyk czeka', body: '2 produkty', tag: 'cart-1', renotify: true, icon: `${shop.origin}/icon.png`,
        url: `${shop.origin}/cart`, actions: [{ action: 'open', title: 'Otwórz koszyk', url: `${shop.origin}/cart?from=action` },
          { action: 'later', title: 'Później' }],
        delivery,
      };
      await deliverPush(page, shop.origin, JSON.stringify(payload));
      const [n] = await waitFor(async () => { const l = await notifications(page); return l.length ? l : null; }, { what: 'notification' });
      assert.equal(n.title, 'Twój koszyk czeka');
      assert.equal(n.body, '2 produkty');
      assert.equal(n.tag, 'cart-1');
      assert.equal(n.renotify, true);
      assert.deepEqual(n.actions, [{ action: 'open', title: 'Otwórz koszyk' }, { action: 'later', title: 'Później' }]);
      assert.equal(n.data.url, `${shop.origin}/cart`);
      const shown = await waitFor(() => answered(delivery, 'shown'), { timeoutMs: 5000, what: 'shown report' });
      assert.equal(shown.status, 202, 'the daemon accepted the report');
      assert.equal(shown.origin, shop.origin, 'sent from the shop\'s worker');
      assert.equal(shown.allowOrigin, shop.origin, 'and allowed by the daemon\'s CORS');
      if (api.events) assert.ok((await api.events(delivery)).some((e) => e.type === 'shown'));
    });

    test('clicking an action reports "clicked" with the action to the daemon and opens the action\'s URL', async () => {
      const delivery = await api.delivery((await stored()).id, 'own');
      const r = await dispatchNotificationEvent(context, shop.origin, { title: 'Twój koszyk czeka', action: 'open' });
      assert.deepEqual(r.opened, [`${shop.origin}/cart?from=action`]);
      const report = await waitFor(() => answered(delivery, 'clicked'), { timeoutMs: 5000, what: 'clicked report' });
      assert.equal(report.status, 202, 'the daemon accepted the click');
      assert.deepEqual(report.body, { type: 'clicked', sig: delivery.sig, action: 'open' });
      if (api.events) assert.equal((await api.events(delivery)).find((e) => e.type === 'clicked').action, 'open');
      assert.deepEqual(await notifications(page), [], 'the click closed the notification');
    });

    test('a Declarative Web Push payload is shown the same way; a click opens "navigate"', async () => {
      const delivery = await api.delivery((await stored()).id, 'declarative');
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
      const r = await dispatchNotificationEvent(context, shop.origin, { title: 'Promocja -20%' });
      assert.deepEqual(r.opened, [`${shop.origin}/cart?from=declarative`]);
      const report = await waitFor(() => answered(delivery, 'clicked'), { timeoutMs: 5000, what: 'clicked report' });
      assert.equal(report.status, 202);
      assert.deepEqual(report.body, { type: 'clicked', sig: delivery.sig });
    });

    test('closing a notification reports "closed"', async () => {
      const delivery = await api.delivery((await stored()).id, 'close');
      await deliverPush(page, shop.origin, JSON.stringify({ title: 'Zamknij mnie', body: 'x', delivery }));
      await waitFor(async () => (await notifications(page)).length === 1, { what: 'notification' });
      await dispatchNotificationEvent(context, shop.origin, { type: 'notificationclose', title: 'Zamknij mnie' });
      assert.equal((await waitFor(() => answered(delivery, 'closed'), { timeoutMs: 5000, what: 'closed report' })).status, 202);
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

    test('pushsubscriptionchange re-subscribes with the same key and tells the daemon the new endpoint', async () => {
      const before = await stored();
      const worker = context.serviceWorkers().find((w) => w.url().startsWith(`${shop.origin}/webpushd-sw.js`));
      const endpoint = await worker.evaluate(async () => {
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
      assert.equal(await api.endpoint(before.id, before.token), endpoint);
    });

    test('an endpoint changed without pushsubscriptionchange (Chrome never fires it) is sent at the next page view', async () => {
      const before = await stored();
      const worker = context.serviceWorkers().find((w) => w.url().startsWith(`${shop.origin}/webpushd-sw.js`));
      const endpoint = await worker.evaluate(async () => {
        const old = await self.registration.pushManager.getSubscription();
        await old.unsubscribe();
        const sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: old.options.applicationServerKey });
        return sub.endpoint;
      });
      assert.notEqual(endpoint, before.endpoint);
      await page.reload();
      const state = await page.evaluate(() => window.push.ready);
      assert.equal(state.subscribed, true);
      assert.equal(state.id, before.id, 'same identity');
      assert.equal((await stored()).endpoint, endpoint);
      assert.equal(await api.endpoint(before.id, before.token), endpoint);
    });

    test('setConsent and identify use the subscriber token', async () => {
      const state = await page.evaluate(() => window.push.setConsent(['cart', 'promotions']));
      assert.deepEqual(state.categories, ['cart', 'promotions']);
      const saved = await stored();
      assert.deepEqual((await api.subscription(saved.id, saved.token)).categories, ['cart', 'promotions']);
      const signature = createHmac('sha256', api.identifySecret).update('customer-77').digest('hex');
      const r = await page.evaluate(([c, s]) => window.push.identify(c, s), ['customer-77', signature]);
      assert.equal(r.customer_id, 'customer-77');
      const wrong = await page.evaluate(() => window.push.identify('customer-77', '00').then(() => 'ok', (e) => e.status));
      assert.ok(wrong === 401 || wrong === 403 || wrong === 400, `a wrong signature is refused (got ${wrong})`);
    });

    test('unsubscribe tells the daemon and drops the browser subscription', async () => {
      const saved = await stored();
      const events = [];
      await page.evaluate(() => { window.__changes = []; window.push.on('change', (s) => window.__changes.push(s)); });
      const state = await page.evaluate(() => window.push.unsubscribe());
      assert.equal(state.subscribed, false);
      assert.equal(state.id, null);
      assert.equal(await stored(), null);
      assert.equal(await page.evaluate(async () => (await navigator.serviceWorker.getRegistration('/')).pushManager.getSubscription()), null);
      assert.equal(await api.isUnsubscribed(saved.id, saved.token), true);
      events.push(...await page.evaluate(() => window.__changes));
      assert.equal(events.at(-1).subscribed, false, 'a change event was emitted');
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
      const other = await context.newPage();
      try {
        await other.goto(shop.origin.replace('127.0.0.1', 'localhost') + '/');
        const r = await other.evaluate(() => window.push.categories().then(() => 'ok', (e) => e.name));
        assert.equal(r, 'TypeError');
      } finally { await other.close(); }
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

    test('no uncaught errors in the shop page', () => {
      assert.deepEqual(pageErrors, []);
    });
  });
}

const missing = missingPrerequisite();

// What the real daemon already serves: the SDK files and the VAPID key. A
// shop page loads the SDK from it cross-origin, the worker imports sw.js from
// it, and the page reads the key through CORS.
describe('real webpushd: SDK files and VAPID key', { skip: missing ?? (await probeSdkFiles()) ?? false }, () => {
  test('a shop page loads the SDK and registers a worker importing sw.js from the daemon', async () => {
    let api;
    const shop = await startShop(() => api.origin);
    const gcm = await startFakeGcm();
    let context;
    try {
      api = await startDaemonApi({ corsOrigins: [shop.origin], minimal: true });
      for (const f of ['webpushd.js', 'sw.js']) {
        const served = await (await fetch(`${api.origin}/sdk/${f}`)).text();
        assert.equal(served, readFileSync(path.join(sourceDir, 'web', 'sdk', f), 'utf8'), `${f} is web/sdk/${f}`);
      }
      context = await launchChromium(gcm);
      const page = await context.newPage();
      await page.goto(`${shop.origin}/`);
      const state = await page.evaluate(() => window.push.ready);
      assert.equal(state.supported, true);
      assert.equal(state.subscribed, false);
      const r = await page.evaluate(async (base) => {
        const key = await (await fetch(`${base}/v1/vapid-public-key`)).json();  // CORS
        const reg = await navigator.serviceWorker.register(`/webpushd-sw.js?api=${encodeURIComponent(base)}`);
        await navigator.serviceWorker.ready;
        return { key: key.publicKey, active: !!reg.active };
      }, api.origin);
      assert.equal(r.key, api.vapidPublicKey);
      assert.equal(r.active, true, 'the worker (importing the daemon\'s sw.js) installed');
    } finally {
      await context?.close().catch(() => {});
      await Promise.all([shop.close(), gcm.close(), api?.close()]);
    }
  });
});

sdkSuite('real webpushd', startDaemonApi, missing ?? (await probeDaemon()) ?? false);
// TEMPORARY: until the daemon's routes have landed (see standin-api.mjs).
sdkSuite('stand-in API (temporary)', async (o) => {
  const a = await startStandInApi({ ...o, identifySecret: 'standin-secret' });
  return {
    ...a,
    identifySecret: 'standin-secret',
    subscription: async (id) => a.subscription(id),
    endpoint: async (id) => a.subscription(id).subscription.endpoint,
    isUnsubscribed: async (id) => a.subscription(id).state === 'unsubscribed',
    delivery: async (id, label) => a.delivery(`${label}-${id}`),
    events: async (d) => a.events.filter((e) => e.delivery_id === d.id),
  };
}, missing ?? false);
