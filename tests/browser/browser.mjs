// Helpers for the browser tests: Debian's Chromium driven by playwright-core,
// a fake GCM server so that pushManager.subscribe() works offline, a static
// "shop" server (origin A) and CDP push delivery. Loopback only, every wait
// bounded, every process closed by the caller (and killed at exit regardless).
import { createServer } from 'node:http';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { sourceDir, tempDir, waitFor } from '../integration/harness.mjs';

const require = createRequire(path.join(sourceDir, 'tests', 'peers', 'package.json'));

export const chromiumPath = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => existsSync(p));

/** Why the browser tests cannot run here, or null. */
export function missingPrerequisite() {
  if (!chromiumPath) return 'Debian chromium is not installed (tools/bootstrap deps --test installs it)';
  try { require.resolve('playwright-core'); } catch { return 'playwright-core is missing (tools/bootstrap deps --test)'; }
  return null;
}

/** Starts an http server on 127.0.0.1:0; resolves with {server, origin, close}. */
export async function listen(handler) {
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { server, origin, close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

/**
 * A stand-in for Google's GCM check-in and registration servers. Chromium's
 * (undocumented) --gcm-checkin-url / --gcm-registration-url switches point at
 * it, and the real pushManager.subscribe() then resolves with a genuine
 * PushSubscription (endpoint https://…google.com/fcm/send/<our token>, keys
 * made by Chromium) instead of waiting forever for Google offline.
 */
export async function startFakeGcm() {
  const registrations = [];
  let n = 0;
  const gcm = await listen((req, res) => {
    let body = '';
    req.setEncoding('latin1');
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url.startsWith('/checkin')) {
        // AndroidCheckinResponse: stats_ok=true (field 1), android_id
        // (field 7, fixed64) and security_token (field 8, fixed64).
        const answer = Buffer.alloc(20);
        answer.set([0x08, 0x01, 0x39], 0);
        answer.writeBigUInt64LE(4242424242424242n, 3);
        answer[11] = 0x41;
        answer.writeBigUInt64LE(1234567890n, 12);
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(answer);
        return;
      }
      const form = new URLSearchParams(body);
      registrations.push(Object.fromEntries(form));
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`token=webpushd-test-token-${++n}`);
    });
  });
  return { ...gcm, registrations };
}

// The zone Chromium runs in (the SDK sends it at subscribe); not the daemon's
// consent.default_timezone, so the test can tell which one was stored.
export const BROWSER_TIMEZONE = 'Europe/Warsaw';

/** Pids of processes whose command line mentions `text` (e.g. a Chromium profile folder). */
export function processesMentioning(text) {
  const pids = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(text)) pids.push(Number(pid));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/**
 * Launches headless Chromium with a fresh profile. Returns the persistent
 * context (close() closes the browser) and the profile folder, by which the
 * caller can check that no Chromium process is left.
 */
export async function launchChromium(gcm) {
  const { chromium } = require('playwright-core');
  const profile = tempDir('webpushd-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    timeout: 30000,
    timezoneId: BROWSER_TIMEZONE,
    viewport: { width: 900, height: 600 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      `--gcm-checkin-url=${gcm.origin}/checkin`, `--gcm-registration-url=${gcm.origin}/register`,
    ],
  });
  return { context, profile };
}

/** Closes the browser and waits (bounded) until none of its processes is left; kills stragglers. */
export async function closeChromium({ context, profile }) {
  await context.close().catch(() => {});
  try {
    await waitFor(() => processesMentioning(profile).length === 0, { timeoutMs: 5000, what: 'Chromium processes to exit' });
  } catch (e) {
    for (const pid of processesMentioning(profile)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    throw e;
  }
}

/**
 * The shop (origin A): a test page that loads the SDK from the daemon
 * (origin B) and the one-line worker that imports the daemon's sw.js.
 * `apiOrigin()` is asked per request: the daemon's CORS list needs the shop's
 * port, so the shop starts first.
 */
export async function startShop(apiOrigin) {
  const pageFor = (base) => `<!doctype html>
<html lang="pl"><head><meta charset="utf-8"><title>Test shop</title>
<meta name="viewport" content="width=device-width">
<style>body{font:16px system-ui,sans-serif;margin:40px;color:#222}</style></head>
<body><h1>Sklep testowy</h1><p>Koszyk: 2 produkty.</p><button id="footer-link">Powiadomienia</button>
<script src="${base}/sdk/webpushd.js"></script>
<script>window.push = webpushd.init({ api: ${JSON.stringify(base)}, serviceWorker: '/webpushd-sw.js', locale: 'pl-PL' });</script>
</body></html>`;
  // The shop's one-line worker, plus a test fixture in front of it: the
  // daemon's answers to the worker's delivery reports are kept in
  // self.__reports (a worker's fetch bodies are not visible to Playwright).
  const workerFor = (base) => `self.__reports = [];
const pageFetch = self.fetch.bind(self);
self.fetch = async (input, init) => {
  const res = await pageFetch(input, init);
  if (String(input).includes('/v1/deliveries/')) {
    self.__reports.push({ url: String(input), sent: init?.body ?? null, status: res.status, answer: await res.clone().json().catch(() => null) });
  }
  return res;
};
importScripts(${JSON.stringify(`${base}/sdk/sw.js`)});
`;
  return listen((req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/webpushd-sw.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-cache' }).end(workerFor(apiOrigin()));
    } else if (url.pathname === '/' || url.pathname === '/cart') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(pageFor(apiOrigin()));
    } else {
      res.writeHead(404).end();
    }
  });
}

/**
 * Delivers a push message to the shop's service worker through the DevTools
 * protocol (this bypasses the push service and its encryption, which the
 * delivery tests cover). `data` is the payload text.
 */
export async function deliverPush(page, origin, data) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const registrations = [];
    cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
    await cdp.send('ServiceWorker.enable');
    const reg = await waitFor(() => registrations.find((r) => r.scopeURL === `${origin}/` && !r.isDeleted),
      { timeoutMs: 10000, what: 'service worker registration' });
    await cdp.send('ServiceWorker.deliverPushMessage', { origin: `${origin}/`, registrationId: reg.registrationId, data });
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/** Notifications the worker's registration shows, as plain objects. */
export function notifications(page) {
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.getRegistration('/');
    const list = reg ? await reg.getNotifications() : [];
    return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, icon: n.icon, image: n.image, badge: n.badge,
      renotify: n.renotify, requireInteraction: n.requireInteraction, actions: n.actions.map((a) => ({ action: a.action, title: a.title })),
      data: n.data }));
  });
}

/**
 * Waits until Chromium really keeps the notifications it is asked to show.
 * Observed here: for a second or so after the first subscription, a
 * notification can be shown (showNotification resolves, no close event) and
 * yet never appear in getNotifications(); a few seconds later the same push
 * always works. So, before the first push, the page shows probe
 * notifications until one sticks, then closes it.
 */
export async function waitForNotificationDisplay(page) {
  await waitFor(() => page.evaluate(async () => {
    const reg = await navigator.serviceWorker.getRegistration('/');
    await reg.showNotification('webpushd-test-probe', { tag: 'webpushd-test-probe' });
    await new Promise((r) => setTimeout(r, 300));
    const probes = await reg.getNotifications({ tag: 'webpushd-test-probe' });
    probes.forEach((n) => n.close());
    return probes.length > 0;
  }), { timeoutMs: 15000, intervalMs: 200, what: 'notifications to be displayed' });
}

/** Closes every notification the worker shows (between tests). */
export function clearNotifications(page) {
  return page.evaluate(async () => {
    const reg = await navigator.serviceWorker.getRegistration('/');
    for (const n of reg ? await reg.getNotifications() : []) n.close();
  });
}

/**
 * Dispatches a script-made notificationclick (or notificationclose) inside
 * the worker for the notification with `title`. Script-made events refuse
 * event.waitUntil and clients.openWindow, so both are substituted for the
 * dispatch: the handler's promises are awaited here and the opened URL is
 * returned. (A genuine click would need a fake org.freedesktop.Notifications
 * service on a private D-Bus; the handler code path is the same.)
 */
export async function dispatchNotificationEvent(context, origin, { type = 'notificationclick', title, action = '' }) {
  const worker = await waitFor(() => context.serviceWorkers().find((w) => w.url().startsWith(`${origin}/webpushd-sw.js`)),
    { timeoutMs: 10000, what: 'service worker in the context' });
  return worker.evaluate(async ({ type, title, action }) => {
    const [notification] = (await self.registration.getNotifications()).filter((n) => n.title === title);
    if (!notification) throw new Error(`no notification titled ${title}`);
    const opened = [];
    const pending = [];
    self.clients.openWindow = async (url) => { opened.push(url); return null; };
    try {
      const event = new NotificationEvent(type, { notification, action });
      Object.defineProperty(event, 'waitUntil', { value: (p) => pending.push(p) });
      self.dispatchEvent(event);
      await Promise.all(pending);
    } finally {
      delete self.clients.openWindow;  // back to Clients.prototype.openWindow
    }
    return { opened, waited: pending.length };
  }, { type, title, action });
}
