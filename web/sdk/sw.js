/* webpushd service worker — served by the daemon at GET /sdk/sw.js.
 *
 * A service worker must be same-origin with the shop's pages, so the shop
 * hosts a one-line worker that imports this file:
 *     importScripts('https://push.shop.example/sdk/sw.js');
 * The SDK registers that worker as /webpushd-sw.js?api=<daemon origin>; the
 * `api` parameter tells us where to report. A shop with its own worker adds
 * the same importScripts line to it (handlers here only touch push events).
 *
 * Rules this file keeps:
 * - Every push shows a notification, even a malformed one: browsers revoke
 *   the subscription of sites that push silently.
 * - Every network call runs inside event.waitUntil, or the browser may stop
 *   the worker half-way.
 * - Both payload forms of docs/API.md: webpushd's own and Declarative Web
 *   Push ({"web_push":8030,…}), which Safari 18.4+ shows without us.
 */
(function () {
  'use strict';

  const DB = 'webpushd', STORE = 'kv', KEY = 'subscription';
  const FALLBACK = { title: 'New notification', body: '' };
  const API = new URL(self.location.href).searchParams.get('api');

  // Reads what the page SDK stored ({id, token, api, …}); null if nothing or
  // if IndexedDB is unavailable — reporting and re-subscribing then degrade,
  // showing notifications never does.
  function stored() {
    return new Promise((resolve) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => resolve(null);
      open.onsuccess = () => {
        const req = open.result.transaction(STORE, 'readonly').objectStore(STORE).get(KEY);
        req.onsuccess = () => { open.result.close(); resolve(req.result || null); };
        req.onerror = () => { open.result.close(); resolve(null); };
      };
    }).catch(() => null);
  }

  function putStored(value) {
    return new Promise((resolve) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => resolve();
      open.onsuccess = () => {
        const tx = open.result.transaction(STORE, 'readwrite');
        tx.objectStore(STORE).put(value, KEY);
        tx.oncomplete = tx.onerror = () => { open.result.close(); resolve(); };
      };
    }).catch(() => {});
  }

  async function apiBase() {
    if (API) return API.replace(/\/+$/, '');
    const s = await stored();
    return s && s.api ? s.api : null;
  }

  // Only web links are opened; a relative one is taken relative to the shop.
  function webUrl(u) {
    if (typeof u !== 'string' || !u) return null;
    try {
      const url = new URL(u, self.registration.scope);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) { return null; }
  }

  function str(v) { return typeof v === 'string' ? v : undefined; }

  // Payload → {title, options} for showNotification. Never throws: whatever
  // arrives, something sensible is shown.
  function parse(data) {
    let p = null;
    try { p = data ? data.json() : null; } catch (e) {
      // Plain text (e.g. sent with `webpushctl send --payload 'Hi'`): show it as the body.
      try { p = { body: data.text() }; } catch (e2) { p = null; }
    }
    if (!p || typeof p !== 'object' || Array.isArray(p)) p = {};
    // Declarative Web Push keeps everything under "notification", uses
    // "navigate" for URLs and carries our delivery under "data".
    const decl = p.web_push === 8030 && p.notification && typeof p.notification === 'object';
    const n = decl ? p.notification : p;
    const delivery = decl ? (n.data && n.data.delivery) : p.delivery;
    const actionUrls = {};
    const actions = (Array.isArray(n.actions) ? n.actions : [])
      .filter((a) => a && typeof a.action === 'string' && typeof a.title === 'string')
      .map((a) => {
        const u = webUrl(decl ? a.navigate : a.url);
        if (u) actionUrls[a.action] = u;
        return { action: a.action, title: a.title, icon: str(a.icon) };
      });
    const options = {
      body: str(n.body) !== undefined ? n.body : FALLBACK.body,
      icon: str(n.icon), image: str(n.image), badge: str(n.badge),
      tag: str(n.tag), lang: str(n.lang), dir: str(n.dir),
      actions: actions,
      data: { url: webUrl(decl ? n.navigate : n.url), actions: actionUrls,
        delivery: delivery && typeof delivery === 'object' ? delivery : null },
    };
    // renotify without a tag is a TypeError in showNotification.
    if (options.tag && n.renotify === true) options.renotify = true;
    if (n.require_interaction === true || n.requireInteraction === true) options.requireInteraction = true;
    if (n.silent === true) options.silent = true;
    Object.keys(options).forEach((k) => { if (options[k] === undefined) delete options[k]; });
    const title = str(n.title) && n.title.trim() ? n.title : FALLBACK.title;
    return { title: title, options: options };
  }

  // POST /v1/deliveries/{id}/events. keepalive lets the request outlive the
  // worker; failures are swallowed: tracking must never break the user's click.
  function report(delivery, type, action) {
    if (!delivery || typeof delivery.report !== 'string' || !webUrl(delivery.report)) return Promise.resolve();
    const body = { type: type, sig: delivery.sig };
    if (action) body.action = action;
    return fetch(delivery.report, { method: 'POST', keepalive: true, mode: 'cors', credentials: 'omit',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
      .then(() => {}, () => {});
  }

  self.addEventListener('push', (event) => {
    const n = parse(event.data);
    event.waitUntil(
      self.registration.showNotification(n.title, n.options)
        // An option the browser rejects (bad icon URL, too many actions…)
        // must not cost the notification: show the bare text instead.
        .catch(() => self.registration.showNotification(n.title, { body: n.options.body, data: n.options.data }))
        .catch(() => self.registration.showNotification(FALLBACK.title, { body: FALLBACK.body }))
        .then(() => report(n.options.data && n.options.data.delivery, 'shown')));
  });

  // Focus a window already showing the URL, else open one. openWindow is
  // started at once: browsers allow it only shortly after the click.
  async function openOrFocus(url) {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const same = wins.find((c) => c.url === url && 'focus' in c);
    if (same) return same.focus();
    return self.clients.openWindow ? self.clients.openWindow(url) : null;
  }

  self.addEventListener('notificationclick', (event) => {
    const data = event.notification.data || {};
    event.notification.close();
    // An action button may carry its own URL; otherwise (or for a click on
    // the body) the notification's URL opens.
    const url = (event.action && data.actions && data.actions[event.action]) || data.url;
    event.waitUntil(Promise.all([
      report(data.delivery, 'clicked', event.action),
      url ? openOrFocus(url).catch(() => {}) : Promise.resolve(),
    ]));
  });

  self.addEventListener('notificationclose', (event) => {
    const data = event.notification.data || {};
    event.waitUntil(report(data.delivery, 'closed'));
  });

  // The push service replaced or expired our subscription: subscribe again
  // with the same key and tell the daemon the new endpoint (same id, consent
  // and history). Without a stored id/token there is nobody to tell.
  async function resubscribe(event) {
    const api = await apiBase();
    const saved = await stored();
    let sub = event.newSubscription || null;
    if (!sub) {
      let key = event.oldSubscription && event.oldSubscription.options && event.oldSubscription.options.applicationServerKey;
      if (!key && api) {
        const res = await fetch(api + '/v1/vapid-public-key', { credentials: 'omit' });
        key = (await res.json()).publicKey;
      }
      if (!key) return;
      sub = await self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
    }
    if (!api || !saved || !saved.id || !saved.token) return;
    const json = sub.toJSON();
    const res = await fetch(api + '/v1/subscriptions/' + encodeURIComponent(saved.id) + '/endpoint', {
      method: 'PUT', mode: 'cors', credentials: 'omit',
      headers: { 'Content-Type': 'application/json', Authorization: 'Subscriber ' + saved.token },
      body: JSON.stringify({ subscription: { endpoint: json.endpoint, keys: json.keys } }),
    });
    if (res.ok) await putStored(Object.assign({}, saved, { endpoint: json.endpoint }));
  }

  self.addEventListener('pushsubscriptionchange', (event) => {
    event.waitUntil(resubscribe(event).catch(() => {}));
  });

  // Exposed for tests and for shops that extend the worker; not an API promise.
  self.webpushd = { parse: parse, report: report, resubscribe: resubscribe };
})();
