/* webpushd browser SDK — served by the daemon at GET /sdk/webpushd.js.
 *
 * A classic script (no modules, no dependencies, no build step) that defines
 * `window.webpushd`. Usage and the shop's one-line service worker are in
 * web/sdk/README.md; the HTTP calls follow docs/API.md.
 *
 * Rules this file keeps:
 * - Nothing throws at page load: unsupported browsers get a working object
 *   whose state() says {supported:false} and whose methods resolve quietly.
 * - The browser permission and pushManager.subscribe() are only asked for
 *   inside the "Allow" click (Safari refuses them without a user gesture,
 *   and asking on page load is what makes people block notifications).
 * - {id, token, api} live in IndexedDB, because the service worker needs
 *   them too and workers have no localStorage.
 */
(function (global) {
  'use strict';

  const DB = 'webpushd', STORE = 'kv', KEY = 'subscription';

  // Opens (creating on first use) the store shared with sw.js and runs one
  // request in a transaction. Resolves with the request's result.
  function idb(mode, op) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const req = op(open.result.transaction(STORE, mode).objectStore(STORE));
        req.onsuccess = () => { open.result.close(); resolve(req.result); };
        req.onerror = () => { open.result.close(); reject(req.error); };
      };
    });
  }

  // Default texts of the pre-prompt; the categories' own labels come from the
  // daemon (config, localised). Shops override any of these with init({prompt}).
  const TEXTS = {
    en: { title: 'Get notified?', intro: 'Choose what you would like to hear about. You can change this at any time.',
      allow: 'Allow', later: 'Not now', none: 'Choose at least one topic.' },
    pl: { title: 'Włączyć powiadomienia?', intro: 'Wybierz, o czym chcesz wiedzieć. Możesz to zmienić w każdej chwili.',
      allow: 'Zezwól', later: 'Nie teraz', none: 'Wybierz co najmniej jeden temat.' },
  };

  // Minimal, scoped CSS; no external assets. Motion only when the user has
  // not asked for less of it.
  const CSS = `.wpd-prompt{position:fixed;z-index:2147483000;right:16px;bottom:16px;box-sizing:border-box;
max-width:min(380px,calc(100vw - 32px));padding:16px 18px;
background:#fff;color:#1a1a1a;border:1px solid #ccc;border-radius:10px;box-shadow:0 6px 24px #0003;font:15px/1.4 system-ui,sans-serif}
.wpd-prompt h2{margin:0 0 6px;font-size:17px}.wpd-prompt p{margin:0 0 8px}.wpd-prompt small{display:block;color:#555}
.wpd-prompt label{display:flex;gap:8px;margin:8px 0}.wpd-prompt input{margin-top:3px;width:18px;height:18px;flex:none}
.wpd-err{color:#b00020}.wpd-btns{display:flex;gap:8px;justify-content:flex-end}
.wpd-prompt button{font:inherit;padding:7px 14px;border-radius:6px;border:1px solid #767676;background:#fff;color:inherit}
.wpd-prompt .wpd-allow{background:#1a56db;border-color:#1a56db;color:#fff}
.wpd-prompt :focus-visible{outline:3px solid #f5a623;outline-offset:2px}
@media (prefers-reduced-motion:no-preference){.wpd-prompt{animation:wpd-in .2s ease-out}}
@keyframes wpd-in{from{opacity:0;transform:translateY(12px)}}`;

  function b64urlToBytes(s) {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function supported() {
    try {
      return !!(global.isSecureContext && 'serviceWorker' in navigator && 'PushManager' in global &&
        'Notification' in global && 'indexedDB' in global);
    } catch (e) { return false; }
  }

  function init(options) {
    const opts = options || {};
    const api = String(opts.api || '').replace(/\/+$/, '');
    const locale = opts.locale || navigator.language || 'en';
    const texts = Object.assign({}, TEXTS.en, TEXTS[locale.slice(0, 2)] || {}, opts.prompt || {});
    const workerUrl = (opts.serviceWorker || '/webpushd-sw.js') + '?api=' + encodeURIComponent(api);
    const dismissMs = (opts.dismissDays == null ? 7 : opts.dismissDays) * 864e5;
    const dismissKey = 'webpushd:dismissed:' + api;
    const ok = supported() && !!api;
    const listeners = [];
    let saved = null;        // {id, token, api, categories, text_version, endpoint} or null
    let subscribed = false;  // a browser subscription exists and the daemon knows it
    let catalog = null;      // promise of GET /v1/consent/categories

    function state() {
      return {
        supported: ok,
        permission: ok ? Notification.permission : 'unsupported',
        subscribed: subscribed,
        id: saved ? saved.id : null,
        categories: saved ? saved.categories.slice() : [],
      };
    }

    function changed() {
      const s = state();
      listeners.slice().forEach((cb) => { try { cb(s); } catch (e) { setTimeout(() => { throw e; }); } });
    }

    // One place for HTTP: JSON in, JSON out, errors as Error with .status and
    // .code from the daemon's {"error":{…}} body.
    async function call(method, path, body, auth) {
      const headers = body ? { 'Content-Type': 'application/json' } : {};
      if (auth) headers.Authorization = 'Subscriber ' + saved.token;
      const res = await fetch(api + path, { method: method, headers: headers, credentials: 'omit',
        body: body ? JSON.stringify(body) : undefined });
      const data = res.status === 204 ? null : await res.json().catch(() => null);
      if (res.ok) return data;
      const e = (data && data.error) || {};
      throw Object.assign(new Error(e.message || method + ' ' + path + ': ' + res.status),
        { status: res.status, code: e.code || 'http_' + res.status });
    }

    // Calls on this browser's own subscription (Subscriber token).
    function mine(method, suffix, body) {
      if (!saved) return Promise.reject(new Error('webpushd: not subscribed'));
      return call(method, '/v1/subscriptions/' + encodeURIComponent(saved.id) + suffix, body, true);
    }

    function categories() {
      catalog = catalog || call('GET', '/v1/consent/categories?locale=' + encodeURIComponent(locale))
        .catch((e) => { catalog = null; throw e; });
      return catalog;
    }

    function save(value) {
      saved = value;
      return idb('readwrite', (s) => (value ? s.put(value, KEY) : s.delete(KEY)));
    }

    // The worker is the shop's same-origin file (it imports our sw.js); the
    // daemon's address rides in its URL so the worker knows where to report.
    async function registration() {
      const reg = await navigator.serviceWorker.register(workerUrl, opts.scope ? { scope: opts.scope } : undefined);
      const w = reg.installing || reg.waiting;
      if (!reg.active && w) {
        await new Promise((resolve) => w.addEventListener('statechange', () => { if (w.state === 'activated' || w.state === 'redundant') resolve(); }));
      }
      return reg;
    }

    async function browserSubscription() {
      const reg = await navigator.serviceWorker.getRegistration(opts.scope || '/');
      return reg ? reg.pushManager.getSubscription() : null;
    }

    // Load what a previous page view stored; a subscription the browser has
    // dropped (permission revoked, data cleared) counts as not subscribed.
    const ready = !ok ? Promise.resolve(state()) : (async () => {
      try {
        const stored = await idb('readonly', (s) => s.get(KEY));
        saved = stored && stored.api === api ? stored : null;
        const sub = saved && Notification.permission === 'granted' ? await browserSubscription() : null;
        subscribed = !!sub;
        if (sub && sub.endpoint !== saved.endpoint) {
          // The browser changed the endpoint without a pushsubscriptionchange
          // (Chrome never fires it): tell the daemon from here; retried next page view.
          const j = sub.toJSON();
          await mine('PUT', '/endpoint', { subscription: { endpoint: j.endpoint, keys: j.keys } })
            .then(() => save(Object.assign({}, saved, { endpoint: j.endpoint })), () => {});
        }
        // Re-registering keeps the worker script up to date (it is served no-cache).
        if (subscribed) registration().catch(() => {});
      } catch (e) { saved = null; subscribed = false; }
      changed();
      return state();
    })();

    // Must be called from a user gesture (the "Allow" click does). The
    // permission request is the first thing that happens, before any await.
    async function subscribe(chosen) {
      if (!ok) return state();
      const permission = await new Promise((resolve) => {
        const p = Notification.requestPermission(resolve);  // old Safari: callback form
        if (p && p.then) p.then(resolve, () => resolve(Notification.permission));
      });
      if (permission !== 'granted') { changed(); return state(); }
      const [reg, cat, key] = await Promise.all([registration(), categories(), call('GET', '/v1/vapid-public-key')]);
      const serverKey = b64urlToBytes(key.publicKey);
      let sub = await reg.pushManager.getSubscription();
      // A subscription made for another key (a previous daemon) cannot be reused.
      const oldKey = sub && sub.options && sub.options.applicationServerKey;
      if (oldKey && String(new Uint8Array(oldKey)) !== String(serverKey)) {
        await sub.unsubscribe();
        sub = null;
      }
      sub = sub || await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: serverKey });
      const json = sub.toJSON();
      const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
      const r = await call('POST', '/v1/subscriptions', {
        subscription: { endpoint: json.endpoint, keys: json.keys },
        consent: { categories: chosen, text_version: cat.text_version },
        timezone: tz, locale: locale, source_url: location.href,
      });
      await save({ id: r.id, token: r.token, api: api, categories: chosen.slice(), text_version: cat.text_version, endpoint: json.endpoint });
      subscribed = true;
      changed();
      return state();
    }

    async function setConsent(chosen) {
      await ready;
      const cat = await categories();
      const r = await mine('PUT', '/consent', { categories: chosen, text_version: cat.text_version, source_url: location.href });
      await save(Object.assign({}, saved, { categories: r.categories || chosen, text_version: cat.text_version }));
      changed();
      return state();
    }

    async function identify(customerId, signature) {
      await ready;
      return mine('POST', '/identify', { customer_id: String(customerId), signature: signature });
    }

    async function unsubscribe() {
      await ready;
      if (!ok) return state();
      // The daemon first: once it has recorded the withdrawal nothing more is
      // sent, even if the browser side fails below. 401/404: already gone.
      if (saved) await mine('DELETE', '').catch((e) => { if (e.status !== 401 && e.status !== 404) throw e; });
      const sub = await browserSubscription();
      if (sub) await sub.unsubscribe();
      await save(null);
      subscribed = false;
      changed();
      return state();
    }

    function dismissedRecently() {
      try { return Date.now() - Number(localStorage.getItem(dismissKey) || 0) < dismissMs; } catch (e) { return false; }
    }

    let open = null;  // the prompt currently shown, so a second call does not stack another

    // Shows the soft pre-prompt unless it makes no sense (unsupported, already
    // subscribed, permission blocked) or the user said "Not now" recently
    // ({force:true} skips that check, e.g. for a "Notifications" link in the
    // footer). Resolves with state() once the prompt is closed.
    async function showPrompt(o) {
      await ready;
      if (!ok || subscribed || Notification.permission === 'denied' || open) return state();
      if (!(o && o.force) && dismissedRecently()) return state();
      const cat = await categories();
      return new Promise((resolve) => { open = render(cat, resolve); });
    }

    function el(tag, attrs, text) {
      const e = document.createElement(tag);
      Object.keys(attrs || {}).forEach((k) => e.setAttribute(k, attrs[k]));
      if (text) e.textContent = text;  // textContent: config texts are never parsed as HTML
      return e;
    }

    function render(cat, resolve) {
      if (!document.getElementById('wpd-style')) {
        const style = el('style', { id: 'wpd-style' });
        style.textContent = CSS;
        document.head.appendChild(style);
      }
      const uid = 'wpd-' + Math.random().toString(36).slice(2, 8);
      const box = el('div', { class: 'wpd-prompt', role: 'dialog', 'aria-modal': 'false',
        'aria-labelledby': uid + '-t', 'aria-describedby': uid + '-d' });
      box.appendChild(el('h2', { id: uid + '-t' }, texts.title));
      box.appendChild(el('p', { id: uid + '-d' }, texts.intro));
      const boxes = (cat.categories || []).map((c) => {
        const label = el('label');
        // Unticked by default: consent must be an active choice (GDPR).
        const input = el('input', { type: 'checkbox', name: 'category', value: c.name });
        const span = el('span', {}, c.label || c.name);
        if (c.description) span.appendChild(el('small', {}, c.description));
        label.append(input, span);
        box.appendChild(label);
        return input;
      });
      const err = el('p', { class: 'wpd-err', role: 'alert' });
      const btns = el('div', { class: 'wpd-btns' });
      const later = el('button', { type: 'button', class: 'wpd-later' }, texts.later);
      const allow = el('button', { type: 'button', class: 'wpd-allow' }, texts.allow);
      btns.append(later, allow);
      box.append(err, btns);
      const before = document.activeElement;

      function close(result) {
        box.remove();
        open = null;
        if (before && before.focus) before.focus();
        resolve(result);
      }
      later.addEventListener('click', () => {
        try { localStorage.setItem(dismissKey, String(Date.now())); } catch (e) { /* private mode: ask again next time */ }
        close(state());
      });
      allow.addEventListener('click', () => {
        const chosen = boxes.filter((b) => b.checked).map((b) => b.value);
        if (!chosen.length && boxes.length) { err.textContent = texts.none; boxes[0].focus(); return; }
        allow.disabled = true;
        // Synchronously inside the click: subscribe() asks for permission first.
        subscribe(chosen).then(close, (e) => {
          allow.disabled = false;
          err.textContent = e.message;
          changed();
        });
      });
      box.addEventListener('keydown', (e) => { if (e.key === 'Escape') later.click(); });
      document.body.appendChild(box);
      (boxes[0] || allow).focus();
      return box;
    }

    return {
      ready: ready,
      state: state,
      showPrompt: showPrompt,
      subscribe: subscribe,
      categories: categories,
      setConsent: setConsent,
      identify: identify,
      unsubscribe: unsubscribe,
      on: function (type, cb) {
        if (type !== 'change' || typeof cb !== 'function') return () => {};
        listeners.push(cb);
        return () => { const i = listeners.indexOf(cb); if (i >= 0) listeners.splice(i, 1); };
      },
    };
  }

  global.webpushd = { version: '1.0.0', init: init };
})(typeof window !== 'undefined' ? window : this);
