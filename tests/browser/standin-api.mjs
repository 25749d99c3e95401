// TEMPORARY STAND-IN for webpushd's browser-facing HTTP routes.
//
// The daemon's HTTP handlers (subscriptions, consent, delivery events) are
// being written; until build/bin/webpushd serves them, the browser tests can
// run against this small server instead, which implements just the routes of
// docs/API.md the SDK and the service worker call, with CORS restricted to
// the shop's origin as the daemon does. Delete this file once the real routes
// have landed and sdk.test.mjs runs against the daemon only.
import { readFileSync } from 'node:fs';
import { createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';

import { sourceDir } from '../integration/harness.mjs';
import { listen } from './browser.mjs';

const CATEGORIES = {
  'pl-PL': [
    { name: 'cart', label: 'Przypomnienia o koszyku', description: 'Gdy zostawisz coś w koszyku.' },
    { name: 'promotions', label: 'Promocje', description: 'Rabaty i wyprzedaże, najwyżej raz w tygodniu.' },
  ],
  en: [
    { name: 'cart', label: 'Cart reminders', description: 'When you leave something in your cart.' },
    { name: 'promotions', label: 'Promotions', description: 'Discounts and sales, at most once a week.' },
  ],
};

export async function startStandInApi({ corsOrigins, identifySecret }) {
  // A real P-256 public key, or Chromium refuses to subscribe with it.
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const vapidPublicKey = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]).toString('base64url');
  const log = [];          // every request, for assertions: {method, path, body, origin}
  const subs = new Map();  // id → {token, subscription, categories, …}
  const events = [];       // delivery events: {delivery_id, type, action, sig}
  const json = (res, status, body, headers = {}) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body === undefined ? '' : JSON.stringify(body));
  const fail = (res, status, code, message, headers) => json(res, status, { error: { code, message, field: '' } }, headers);

  const api = await listen((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d) => { raw += d; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const origin = req.headers.origin;
      res.setHeader('Vary', 'Origin');
      if (origin && corsOrigins.includes(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
      if (req.method === 'OPTIONS') {
        if (!corsOrigins.includes(origin)) return fail(res, 403, 'forbidden', 'origin not allowed');
        return res.writeHead(204, {
          'Access-Control-Allow-Methods': 'GET, POST, PUT, DELETE',
          'Access-Control-Allow-Headers': 'Content-Type, Authorization',
        }).end();
      }
      let body = null;
      try { body = raw ? JSON.parse(raw) : null; } catch { return fail(res, 400, 'invalid_json', 'body is not JSON'); }
      log.push({ method: req.method, path: url.pathname + url.search, body, origin });

      const sdk = url.pathname.match(/^\/sdk\/(webpushd|sw)\.js$/);
      if (req.method === 'GET' && sdk) {
        const file = readFileSync(path.join(sourceDir, 'web', 'sdk', `${sdk[1]}.js`));
        return res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' }).end(file);
      }
      if (req.method === 'GET' && url.pathname === '/v1/vapid-public-key') return json(res, 200, { publicKey: vapidPublicKey });
      if (req.method === 'GET' && url.pathname === '/v1/consent/categories') {
        const locale = CATEGORIES[url.searchParams.get('locale')] ? url.searchParams.get('locale') : 'en';
        return json(res, 200, { text_version: 'v3', locale, categories: CATEGORIES[locale] });
      }
      if (req.method === 'POST' && url.pathname === '/v1/subscriptions') {
        const existing = [...subs.entries()].find(([, s]) => s.subscription.endpoint === body.subscription.endpoint);
        const id = existing ? existing[0] : randomBytes(8).toString('hex');
        const token = randomBytes(16).toString('base64url');
        subs.set(id, { ...body, token, categories: body.consent.categories, state: 'active' });
        return json(res, existing ? 200 : 201, { id, token });
      }
      const delivery = url.pathname.match(/^\/v1\/deliveries\/([^/]+)\/events$/);
      if (req.method === 'POST' && delivery) {
        events.push({ delivery_id: delivery[1], ...body });
        return json(res, 202, {});
      }
      const m = url.pathname.match(/^\/v1\/subscriptions\/([^/]+)(\/consent|\/endpoint|\/identify)?$/);
      if (m) {
        const s = subs.get(m[1]);
        if (!s || req.headers.authorization !== `Subscriber ${s.token}`) {
          return fail(res, 401, 'unauthorized', 'subscriber token required', { 'WWW-Authenticate': 'Subscriber' });
        }
        if (req.method === 'PUT' && m[2] === '/consent') { s.categories = body.categories; return json(res, 200, { id: m[1], categories: s.categories }); }
        if (req.method === 'PUT' && m[2] === '/endpoint') { s.subscription = body.subscription; return json(res, 200, { id: m[1] }); }
        if (req.method === 'POST' && m[2] === '/identify') {
          const expected = createHmac('sha256', identifySecret).update(String(body.customer_id)).digest();
          const given = Buffer.from(String(body.signature), 'hex');
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) return fail(res, 403, 'forbidden', 'bad signature');
          s.customer_id = body.customer_id; return json(res, 200, { id: m[1], customer_id: body.customer_id }); }
        if (req.method === 'DELETE' && !m[2]) { s.state = 'unsubscribed'; return res.writeHead(204).end(); }
        if (req.method === 'GET' && !m[2]) return json(res, 200, { id: m[1], state: s.state, categories: s.categories, timezone: s.timezone, locale: s.locale });
      }
      return fail(res, 404, 'not_found', 'no such route');
    });
  });
  return {
    ...api,
    vapidPublicKey,
    log,
    events,
    subscription: (id) => subs.get(id),
    // The daemon signs delivery ids; the stand-in takes any sig and records it.
    delivery: (id) => ({ id, sig: `sig-${id}`, report: `${api.origin}/v1/deliveries/${id}/events` }),
  };
}
