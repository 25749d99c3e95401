// The v1 HTTP API (docs/API.md) against the running daemon on a port-0
// loopback listener: every route, every validation error with its status,
// code and field — and that a refused request changed nothing — CORS, the
// two credential schemes kept apart, token misuse, GDPR export and erasure,
// the consent ledger's verification and tamper detection, delivery beacons,
// SIGHUP with a broken and a valid config, and data surviving a restart and
// a kill -9 right after an answer. Nothing is sent to a push service: the
// endpoints are on allowed hosts but no message is ever queued.
import assert from 'node:assert/strict';
import { createECDH, createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dataAndVapidYaml, run, startDaemon, stopChild, tempDir, waitFor, webpushctl } from './harness.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const IDENTIFY_SECRET = `identify-secret-${randomBytes(24).toString('hex')}`;
const SHOP = 'https://shop.example';
const TEXT_VERSION = '2026-11';
const BODY_LIMIT = 4096;

function configText({ level = 'info' } = {}) {
  return [
    'server:',
    '  listen: 127.0.0.1:0',
    `  body_limit: ${BODY_LIMIT}`,
    `  cors_origins: [${SHOP}]`,
    '  api_keys:',
    '    - name: shop-backend',
    `      key: ${API_KEY}`,
    `  identify_secret: ${IDENTIFY_SECRET}`,
    'consent:',
    `  text_version: "${TEXT_VERSION}"`,
    '  default_timezone: Europe/Warsaw',
    '  default_locale: pl',
    '  categories:',
    '    - name: cart_reminders',
    '      texts:',
    '        en: {label: Cart reminders, description: A reminder when you leave something in your cart.}',
    '        pl: {label: Przypomnienia o koszyku, description: "Przypomnimy, gdy zostawisz coś w koszyku."}',
    '    - name: recommendations',
    '      texts:',
    '        en: {label: Back in stock, description: News about products you looked at.}',
    '        pl: {label: Dostępność i obniżki cen, description: "Informacje o produktach, które oglądałeś."}',
    '    - name: promotions',
    '      texts:',
    '        en: {label: Sales and promotions, description: Discounts and sales.}',
    '        pl: {label: Promocje i wyprzedaże, description: Rabaty i wyprzedaże.}',
    ...dataAndVapidYaml,
    'logging:',
    '  format: json',
    `  level: ${level}`,
    '',
  ].join('\n');
}

// --- request helpers -------------------------------------------------------

/** One request; the answer with its JSON body parsed (null when none or not JSON). */
async function call(base, method, route, { json, body, contentType, token, key, authorization, origin, headers = {} } = {}) {
  const h = { ...headers };
  if (json !== undefined) {
    body = JSON.stringify(json);
    contentType ??= 'application/json';
  }
  if (contentType) h['content-type'] = contentType;
  if (token !== undefined) h.authorization = `Subscriber ${token}`;
  if (key !== undefined) h.authorization = `Bearer ${key}`;
  if (authorization !== undefined) h.authorization = authorization;
  if (origin) h.origin = origin;
  const res = await fetch(base + route, { method, headers: h, body, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** The error shape of docs/API.md, with its status, code and field. */
function assertError(r, status, code, field = '') {
  assert.equal(r.status, status, `expected ${status} ${code}, got ${r.status}: ${r.text}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.deepEqual(Object.keys(r.body).sort(), ['error']);
  assert.deepEqual(Object.keys(r.body.error).sort(), ['code', 'field', 'message']);
  if (Array.isArray(code)) assert.ok(code.includes(r.body.error.code), `code ${r.body.error.code} not one of ${code}`);
  else assert.equal(r.body.error.code, code, r.text);
  assert.equal(r.body.error.field, field, r.text);
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
}

/** A browser's push subscription keys: a real P-256 point and a 16-byte auth secret. */
function pushKeys() {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') };
}
const fcmEndpoint = () => `https://fcm.googleapis.com/fcm/send/${randomBytes(12).toString('base64url')}`;

function subscribeBody({ endpoint = fcmEndpoint(), keys = pushKeys(), categories = ['cart_reminders', 'promotions'], ...rest } = {}) {
  return {
    subscription: { endpoint, keys },
    consent: { categories, text_version: TEXT_VERSION },
    timezone: 'Europe/Warsaw',
    locale: 'pl-PL',
    source_url: `${SHOP}/koszyk?session=secret#top`,
    ...rest,
  };
}

const sign = (customerId, secret = IDENTIFY_SECRET) => createHmac('sha256', secret).update(customerId).digest('hex');

/** Every key anywhere in a JSON value. */
function allKeys(value, out = new Set()) {
  if (Array.isArray(value)) value.forEach((v) => allKeys(v, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) { out.add(k); allKeys(v, out); }
  return out;
}

// --- the data folder, read with the operator's tools -----------------------

/** `webpushctl consent verify`: {status, entries, output}. */
function verifyLedger(dataDir) {
  const r = run(webpushctl, ['consent', 'verify', '--data-dir', dataDir]);
  const m = r.stdout.match(/ok: (\d+) entries, chain intact/);
  return { status: r.status, entries: m ? Number(m[1]) : null, output: r.stdout + r.stderr };
}
function ledgerEntries(dataDir) {
  const v = verifyLedger(dataDir);
  assert.equal(v.status, 0, v.output);
  return v.entries;
}
function sql(dataDir, statement) {
  const r = run('sqlite3', [path.join(dataDir, 'webpushd.db'), statement]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

describe('webpushd v1 API', () => {
  let dir;
  let dataDir;
  let configFile;
  let daemon;
  let api; // (method, route, options) against the current daemon
  let main; // {id, token, endpoint, keys}: a subscriber most tests look at

  const subscribe = async (body = subscribeBody(), origin = SHOP) => {
    const r = await api('POST', '/v1/subscriptions', { json: body, origin });
    assert.ok(r.status === 201 || r.status === 200, r.text);
    return { ...r.body, status: r.status, endpoint: body.subscription.endpoint, keys: body.subscription.keys };
  };
  const backendExport = async (id) => {
    const r = await api('GET', `/v1/subscriptions/${id}/export`, { key: API_KEY });
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  /** What a refused request must not change: the ledger, the stored rows and the main subscriber's export. */
  const snapshot = async () => ({
    ledger: ledgerEntries(dataDir),
    subscriptions: sql(dataDir, 'SELECT count(*) FROM subscriptions'),
    categories: sql(dataDir, 'SELECT count(*) FROM subscription_categories'),
    events: sql(dataDir, 'SELECT count(*) FROM delivery_events'),
    main: JSON.stringify(await backendExport(main.id)),
  });

  before(async () => {
    dir = tempDir('webpushd-api-');
    dataDir = path.join(dir, 'data');
    configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText());
    daemon = await startDaemon(configFile);
    api = (method, route, options) => call(daemon.base, method, route, options);
    main = await subscribe();
    assert.equal(main.status, 201);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('operator and public routes: /healthz, the VAPID key, consent texts in Polish with fallbacks', async () => {
    const health = await api('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.storage, 'ok');
    assert.equal((await api('HEAD', '/healthz')).status, 200);

    const vapid = await api('GET', '/v1/vapid-public-key');
    assert.equal(vapid.status, 200);
    assert.equal(Buffer.from(vapid.body.publicKey, 'base64url').length, 65);
    assert.match(daemon.log(), new RegExp(`applicationServerKey\\): ${vapid.body.publicKey}`));

    const pl = await api('GET', '/v1/consent/categories?locale=pl-PL');
    assert.equal(pl.status, 200);
    assert.deepEqual(pl.body, {
      text_version: TEXT_VERSION,
      locale: 'pl',
      categories: [
        { name: 'cart_reminders', label: 'Przypomnienia o koszyku', description: 'Przypomnimy, gdy zostawisz coś w koszyku.' },
        { name: 'recommendations', label: 'Dostępność i obniżki cen', description: 'Informacje o produktach, które oglądałeś.' },
        { name: 'promotions', label: 'Promocje i wyprzedaże', description: 'Rabaty i wyprzedaże.' },
      ],
    });
    const en = await api('GET', '/v1/consent/categories?locale=EN-gb');
    assert.equal(en.body.locale, 'en');
    assert.equal(en.body.categories[2].label, 'Sales and promotions');
    // An unknown language, and none at all: consent.default_locale (pl).
    assert.equal((await api('GET', '/v1/consent/categories?locale=de-DE')).body.locale, 'pl');
    assert.equal((await api('GET', '/v1/consent/categories')).body.categories[0].label, 'Przypomnienia o koszyku');
  });

  test('unknown route: 404 JSON; known route, other method: 405 with Allow', async () => {
    assertError(await api('GET', '/v1/nope'), 404, 'not_found');
    assertError(await api('GET', '/v1/subscriptions/sub_x/nope'), 404, 'not_found');
    const r = await api('DELETE', '/v1/consent/categories');
    assertError(r, 405, 'method_not_allowed');
    assert.equal(r.headers.get('allow'), 'GET, HEAD');
    const sub = await api('POST', `/v1/subscriptions/${main.id}`);
    assertError(sub, 405, 'method_not_allowed');
    assert.deepEqual(sub.headers.get('allow').split(', ').sort(), ['DELETE', 'GET', 'HEAD']);
    const events = await api('GET', '/v1/deliveries/d_x/events');
    assertError(events, 405, 'method_not_allowed');
    assert.equal(events.headers.get('allow'), 'POST');
  });

  test('subscribe: 201 with id and token; the subscriber reads its own state', async () => {
    assert.match(main.id, /^sub_[A-Za-z0-9_-]{22}$/);
    assert.ok(main.token.length >= 32);
    const r = await api('GET', `/v1/subscriptions/${main.id}`, { token: main.token });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      id: main.id, state: 'active', categories: ['cart_reminders', 'promotions'],
      text_version: TEXT_VERSION, timezone: 'Europe/Warsaw', locale: 'pl-PL',
    });
    const exported = await backendExport(main.id);
    assert.equal(exported.subscription.endpoint, main.endpoint);
    assert.deepEqual(exported.subscription.keys, main.keys);
    assert.equal(exported.consent_ledger.length, 1);
    const grant = exported.consent_ledger[0];
    assert.equal(grant.action, 'grant');
    assert.deepEqual(grant.categories_after, ['cart_reminders', 'promotions']);
    assert.equal(grant.source, `${SHOP}/koszyk`, 'the page, without query or fragment');
    assert.equal(grant.ip_truncated, '127.0.0.0/24');
    assert.equal(grant.text_version, TEXT_VERSION);
  });

  test('the same endpoint again: 200, the same id, a new token; the old token is refused', async () => {
    const body = subscribeBody({ categories: ['cart_reminders'] });
    const first = await subscribe(body);
    assert.equal(first.status, 201);
    const ledgerBefore = ledgerEntries(dataDir);
    const again = await subscribe({ ...body, consent: { categories: ['recommendations'], text_version: TEXT_VERSION } });
    assert.equal(again.status, 200);
    assert.equal(again.id, first.id);
    assert.notEqual(again.token, first.token);
    assertError(await api('GET', `/v1/subscriptions/${first.id}`, { token: first.token }), 404, 'not_found', 'id');
    assertError(await api('PUT', `/v1/subscriptions/${first.id}/consent`,
      { token: first.token, json: { categories: [], text_version: TEXT_VERSION } }), 404, 'not_found', 'id');
    const state = await api('GET', `/v1/subscriptions/${first.id}`, { token: again.token });
    assert.equal(state.status, 200);
    assert.deepEqual(state.body.categories, ['recommendations']);
    assert.equal(ledgerEntries(dataDir), ledgerBefore + 1, 'the changed consent is one ledger entry');
  });

  test('POST /v1/subscriptions: every validation error has its status, code and field, and changes nothing', async (t) => {
    const before = await snapshot();
    const endpoint = fcmEndpoint(); // every refused request below uses it; it must stay unknown
    const valid = () => subscribeBody({ endpoint });
    const edit = (fn) => { const b = valid(); fn(b); return b; };
    const cases = [
      ['missing subscription', edit((b) => delete b.subscription), 422, 'missing_field', 'subscription'],
      ['subscription not an object', edit((b) => { b.subscription = 'x'; }), 422, 'invalid_type', 'subscription'],
      ['missing endpoint', edit((b) => delete b.subscription.endpoint), 422, 'missing_field', 'subscription.endpoint'],
      ['endpoint not a string', edit((b) => { b.subscription.endpoint = 42; }), 422, 'invalid_type', 'subscription.endpoint'],
      ['missing keys', edit((b) => delete b.subscription.keys), 422, 'missing_field', 'subscription.keys'],
      ['missing p256dh', edit((b) => delete b.subscription.keys.p256dh), 422, 'missing_field', 'subscription.keys.p256dh'],
      ['missing auth', edit((b) => delete b.subscription.keys.auth), 422, 'missing_field', 'subscription.keys.auth'],
      ['p256dh not base64url', edit((b) => { b.subscription.keys.p256dh = 'not base64url!'; }), 422, 'invalid_p256dh', 'subscription.keys.p256dh'],
      ['p256dh too short', edit((b) => { b.subscription.keys.p256dh = randomBytes(32).toString('base64url'); }), 422, 'invalid_p256dh', 'subscription.keys.p256dh'],
      ['p256dh compressed', edit((b) => {
        const e = createECDH('prime256v1'); e.generateKeys();
        b.subscription.keys.p256dh = e.getPublicKey(null, 'compressed').toString('base64url');
      }), 422, 'invalid_p256dh', 'subscription.keys.p256dh'],
      ['p256dh not on the curve', edit((b) => { b.subscription.keys.p256dh = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]).toString('base64url'); }), 422, 'invalid_p256dh', 'subscription.keys.p256dh'],
      ['auth 15 bytes', edit((b) => { b.subscription.keys.auth = randomBytes(15).toString('base64url'); }), 422, 'invalid_auth', 'subscription.keys.auth'],
      ['auth not base64url', edit((b) => { b.subscription.keys.auth = '***'; }), 422, 'invalid_auth', 'subscription.keys.auth'],
      ['missing consent', edit((b) => delete b.consent), 422, 'missing_field', 'consent'],
      ['missing categories', edit((b) => delete b.consent.categories), 422, 'missing_field', 'consent.categories'],
      ['categories not an array', edit((b) => { b.consent.categories = 'promotions'; }), 422, 'invalid_type', 'consent.categories'],
      ['category not a string', edit((b) => { b.consent.categories = ['promotions', 7]; }), 422, 'invalid_type', 'consent.categories[1]'],
      ['empty categories', edit((b) => { b.consent.categories = []; }), 422, 'invalid_categories', 'consent.categories'],
      ['unknown category', edit((b) => { b.consent.categories = ['promotions', 'newsletter']; }), 422, 'unknown_category', 'consent.categories[1]'],
      ['duplicate category', edit((b) => { b.consent.categories = ['promotions', 'promotions']; }), 422, 'duplicate_category', 'consent.categories[1]'],
      ['missing text_version', edit((b) => delete b.consent.text_version), 422, 'missing_field', 'consent.text_version'],
      ['empty text_version', edit((b) => { b.consent.text_version = ''; }), 422, 'invalid_text_version', 'consent.text_version'],
      ['unknown time zone', edit((b) => { b.timezone = 'Mars/Olympus_Mons'; }), 422, 'invalid_timezone', 'timezone'],
      ['time zone path', edit((b) => { b.timezone = '../../etc/passwd'; }), 422, 'invalid_timezone', 'timezone'],
      ['time zone not a string', edit((b) => { b.timezone = 1; }), 422, 'invalid_type', 'timezone'],
      ['bad locale', edit((b) => { b.locale = 'polish!'; }), 422, 'invalid_locale', 'locale'],
      ['bad source_url', edit((b) => { b.source_url = 'javascript:alert(1)'; }), 422, 'invalid_source', 'source_url'],
      // Where the daemon would send: only the configured push services, over https, never an internal address.
      ['endpoint on an unknown host', edit((b) => { b.subscription.endpoint = 'https://push.evil.example/send/1'; }), 422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint'],
      ['endpoint on a look-alike host', edit((b) => { b.subscription.endpoint = 'https://fcm.googleapis.com.evil.example/fcm/send/1'; }), 422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint'],
      ['http endpoint', edit((b) => { b.subscription.endpoint = 'http://fcm.googleapis.com/fcm/send/1'; }), 422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint'],
      ['not a URL', edit((b) => { b.subscription.endpoint = 'fcm.googleapis.com/fcm/send/1'; }), 422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint'],
    ];
    for (const internal of ['https://127.0.0.1/', 'https://127.0.0.1:8080/push', 'https://169.254.169.254/latest/meta-data/',
      'https://[::1]/', 'https://[::ffff:127.0.0.1]/', 'https://localhost/', 'https://10.0.0.1/', 'https://192.168.1.1/',
      'https://2130706433/', 'https://0x7f000001/', 'https://fcm.googleapis.com@127.0.0.1/',
      'https://metadata.google.internal/computeMetadata/v1/', 'file:///etc/passwd']) {
      cases.push([`internal endpoint ${internal}`, edit((b) => { b.subscription.endpoint = internal; }), 422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint']);
    }
    for (const [what, body, status, code, field] of cases) {
      await t.test(what, async () => {
        const r = await api('POST', '/v1/subscriptions', { json: body, origin: SHOP });
        assertError(r, status, code, field);
        assert.equal(r.headers.get('access-control-allow-origin'), SHOP, 'a page can read why it failed');
      });
    }
    // The body itself: not JSON, not an object, not declared as JSON, too large.
    assertError(await api('POST', '/v1/subscriptions', { body: '{"subscription":', contentType: 'application/json' }), 400, 'invalid_json');
    assertError(await api('POST', '/v1/subscriptions', { body: '', contentType: 'application/json' }), 400, 'invalid_json');
    assertError(await api('POST', '/v1/subscriptions', { json: [valid()] }), 400, 'invalid_json');
    assertError(await api('POST', '/v1/subscriptions', { json: 'x' }), 400, 'invalid_json');
    assertError(await api('POST', '/v1/subscriptions', { body: JSON.stringify(valid()), contentType: 'text/plain' }), 415, 'unsupported_media_type');
    assertError(await api('POST', '/v1/subscriptions', { body: JSON.stringify(valid()), contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    const big = valid();
    big.padding = 'x'.repeat(BODY_LIMIT);
    assertError(await api('POST', '/v1/subscriptions', { json: big }), 413, 'payload_too_large');

    assert.deepEqual(await snapshot(), before, 'no refused request changed anything');
    // Nothing was half-written for the endpoint either: it is new now.
    const created = await api('POST', '/v1/subscriptions', { json: valid() });
    assert.equal(created.status, 201, created.text);
    assert.equal(ledgerEntries(dataDir), before.ledger + 1);
  });

  test('charset and case in Content-Type are accepted', async () => {
    const r = await api('POST', '/v1/subscriptions', { body: JSON.stringify(subscribeBody()), contentType: 'Application/JSON; charset=utf-8' });
    assert.equal(r.status, 201, r.text);
  });

  test('PUT /v1/subscriptions/{id}/consent: change, no-op, withdraw all; errors change nothing', async () => {
    const sub = await subscribe();
    const route = `/v1/subscriptions/${sub.id}/consent`;
    const n = ledgerEntries(dataDir);
    let r = await api('PUT', route, { token: sub.token, json: { categories: ['recommendations', 'cart_reminders'], text_version: TEXT_VERSION, source_url: `${SHOP}/konto?x=1` } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { id: sub.id, categories: ['cart_reminders', 'recommendations'] });
    assert.equal(ledgerEntries(dataDir), n + 1);
    r = await api('PUT', route, { token: sub.token, json: { categories: ['cart_reminders', 'recommendations'], text_version: TEXT_VERSION } });
    assert.equal(r.status, 200);
    assert.equal(ledgerEntries(dataDir), n + 1, 'nothing changed: no ledger entry');

    const mainBefore = main;
    main = sub; // snapshot() looks at this subscriber now
    const before = await snapshot();
    const cases = [
      [{ categories: ['newsletter'], text_version: TEXT_VERSION }, 422, 'unknown_category', 'categories[0]'],
      [{ categories: ['promotions', 'promotions'], text_version: TEXT_VERSION }, 422, 'duplicate_category', 'categories[1]'],
      [{ text_version: TEXT_VERSION }, 422, 'missing_field', 'categories'],
      [{ categories: 'promotions', text_version: TEXT_VERSION }, 422, 'invalid_type', 'categories'],
      [{ categories: ['promotions'] }, 422, 'missing_field', 'text_version'],
      [{ categories: ['promotions'], text_version: 'with space' }, 422, 'invalid_text_version', 'text_version'],
      [{ categories: ['promotions'], text_version: TEXT_VERSION, source_url: 'ftp://shop.example/' }, 422, 'invalid_source', 'source_url'],
    ];
    for (const [body, status, code, field] of cases) assertError(await api('PUT', route, { token: sub.token, json: body }), status, code, field);
    assertError(await api('PUT', route, { token: sub.token, body: '{', contentType: 'application/json' }), 400, 'invalid_json');
    assertError(await api('PUT', route, { token: sub.token, body: '{}', contentType: 'text/plain' }), 415, 'unsupported_media_type');
    assert.deepEqual(await snapshot(), before);

    r = await api('PUT', route, { token: sub.token, json: { categories: [], text_version: TEXT_VERSION } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.categories, []);
    const ledger = (await backendExport(sub.id)).consent_ledger;
    assert.deepEqual(ledger.map((e) => e.action), ['grant', 'change', 'withdraw']);
    assert.equal(ledger[1].source, `${SHOP}/konto`);
    assert.deepEqual((await api('GET', `/v1/subscriptions/${sub.id}`, { token: sub.token })).body.categories, []);
    main = mainBefore;
  });

  test('PUT /v1/subscriptions/{id}/endpoint: same identity and consent on the new endpoint; internal endpoints refused', async () => {
    const sub = await subscribe();
    const route = `/v1/subscriptions/${sub.id}/endpoint`;
    const before = await backendExport(sub.id);
    const n = ledgerEntries(dataDir);
    for (const endpoint of ['https://127.0.0.1/', 'https://169.254.169.254/', 'https://[::1]/', 'http://fcm.googleapis.com/x', 'https://evil.example/x']) {
      assertError(await api('PUT', route, { token: sub.token, json: { subscription: { endpoint, keys: pushKeys() } } }),
        422, ['endpoint_not_allowed', 'invalid_endpoint'], 'subscription.endpoint');
    }
    assertError(await api('PUT', route, { token: sub.token, json: { subscription: { endpoint: fcmEndpoint(), keys: { ...pushKeys(), p256dh: 'AAAA' } } } }),
      422, 'invalid_p256dh', 'subscription.keys.p256dh');
    assertError(await api('PUT', route, { token: sub.token, json: {} }), 422, 'missing_field', 'subscription');
    assertError(await api('PUT', route, { token: 'wrong', json: { subscription: { endpoint: fcmEndpoint(), keys: pushKeys() } } }), 404, 'not_found', 'id');
    assert.deepEqual(await backendExport(sub.id), before);
    assert.equal(ledgerEntries(dataDir), n);

    const next = { endpoint: fcmEndpoint(), keys: pushKeys() };
    const r = await api('PUT', route, { token: sub.token, json: { subscription: next } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { id: sub.id });
    const after = await backendExport(sub.id);
    assert.equal(after.subscription.endpoint, next.endpoint);
    assert.deepEqual(after.subscription.keys, next.keys);
    assert.deepEqual(after.subscription.categories, before.subscription.categories);
    assert.equal(after.consent_ledger.at(-1).action, 'resubscribe');
    assert.equal((await api('GET', `/v1/subscriptions/${sub.id}`, { token: sub.token })).status, 200, 'the token still works');
  });

  test('auth: Bearer and Subscriber never stand in for each other; 401 carries WWW-Authenticate', async () => {
    const backend = `/v1/subscriptions/${main.id}/export`;
    for (const authorization of [undefined, 'Bearer wrong-key', `Bearer ${main.token}`, `Subscriber ${API_KEY}`, `Subscriber ${main.token}`, `bearer  `, API_KEY]) {
      const r = await api('GET', backend, { authorization });
      assertError(r, 401, 'unauthorized');
      assert.match(r.headers.get('www-authenticate'), /^Bearer /, `for ${authorization}`);
      assert.doesNotMatch(r.text, new RegExp(main.token));
    }
    for (const route of ['/v1/customers/c-1', `/v1/subscriptions/${main.id}/customer`]) {
      const post = route.endsWith('customer');
      const r = await api(post ? 'POST' : 'GET', route, { authorization: `Bearer ${main.token}`, json: post ? { customer_id: 'c-1' } : undefined });
      assertError(r, 401, 'unauthorized');
    }
    const subscriberRoute = `/v1/subscriptions/${main.id}`;
    for (const authorization of [undefined, `Bearer ${API_KEY}`, `Bearer ${main.token}`, 'Subscriber']) {
      const r = await api('GET', subscriberRoute, { authorization });
      assertError(r, 401, 'unauthorized');
      assert.match(r.headers.get('www-authenticate'), /^Subscriber /, `for ${authorization}`);
    }
    // The API key as a subscriber token is just a wrong token.
    assertError(await api('GET', subscriberRoute, { token: API_KEY }), 404, 'not_found', 'id');
    assert.equal((await api('GET', subscriberRoute, { authorization: `subscriber ${main.token}` })).status, 200, 'the scheme is case-insensitive');
  });

  test('a wrong token and an unknown id are indistinguishable on every subscriber route', async () => {
    const unknownId = `sub_${randomBytes(16).toString('base64url').slice(0, 22)}`;
    const wrongToken = randomBytes(32).toString('base64url');
    const routes = [
      ['GET', `/v1/subscriptions/{id}`, undefined],
      ['PUT', `/v1/subscriptions/{id}/consent`, { categories: ['promotions'], text_version: TEXT_VERSION }],
      ['PUT', `/v1/subscriptions/{id}/endpoint`, { subscription: { endpoint: fcmEndpoint(), keys: pushKeys() } }],
      ['POST', `/v1/subscriptions/{id}/identify`, { customer_id: 'c-9', signature: sign('c-9') }],
      ['DELETE', `/v1/subscriptions/{id}`, undefined],
    ];
    const before = await snapshot();
    for (const [method, pattern, json] of routes) {
      const wrong = await api(method, pattern.replace('{id}', main.id), { token: wrongToken, json });
      const unknown = await api(method, pattern.replace('{id}', unknownId), { token: main.token, json });
      const garbage = await api(method, pattern.replace('{id}', 'not-an-id'), { token: main.token, json });
      for (const r of [wrong, unknown, garbage]) assertError(r, 404, 'not_found', 'id');
      assert.equal(wrong.text, unknown.text, `${method} ${pattern}`);
      assert.equal(wrong.text, garbage.text, `${method} ${pattern}`);
    }
    assert.deepEqual(await snapshot(), before);
  });

  test('identify: a correct HMAC links the customer; a wrong one is 403 and links nothing', async () => {
    const sub = await subscribe();
    const route = `/v1/subscriptions/${sub.id}/identify`;
    const n = ledgerEntries(dataDir);
    assertError(await api('POST', route, { token: sub.token, json: { customer_id: 'cust-42', signature: sign('cust-43') } }), 403, 'forbidden', 'signature');
    assertError(await api('POST', route, { token: sub.token, json: { customer_id: 'cust-42', signature: sign('cust-42', 'another-secret-of-the-same-length!!') } }), 403, 'forbidden', 'signature');
    assertError(await api('POST', route, { token: sub.token, json: { customer_id: 'cust-42', signature: 'zz' } }), 403, 'forbidden', 'signature');
    assertError(await api('POST', route, { token: sub.token, json: { customer_id: 'cust-42' } }), 422, 'missing_field', 'signature');
    assertError(await api('POST', route, { token: sub.token, json: { signature: sign('cust-42') } }), 422, 'missing_field', 'customer_id');
    assertError(await api('POST', route, { token: sub.token, json: { customer_id: '', signature: sign('') } }), 422, 'invalid_customer_id', 'customer_id');
    assertError(await api('POST', route, { token: sub.token, body: 'customer_id=cust-42', contentType: 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
    assert.equal((await backendExport(sub.id)).subscription.customer_id, null);
    assert.deepEqual((await api('GET', '/v1/customers/cust-42', { key: API_KEY })).body, { customer_id: 'cust-42', subscriptions: [], events: [], journeys: [], product_interest: [] });

    const r = await api('POST', route, { token: sub.token, json: { customer_id: 'cust-42', signature: sign('cust-42').toUpperCase() } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { id: sub.id, customer_id: 'cust-42' });
    assert.equal((await backendExport(sub.id)).subscription.customer_id, 'cust-42');
    assert.equal(ledgerEntries(dataDir), n, 'linking a customer is not a consent change');
  });

  test('CORS: the shop origin only, on browser routes only; preflights answered for browser routes, 403 for backend routes', async () => {
    const ok = await api('GET', '/v1/vapid-public-key', { origin: SHOP });
    assert.equal(ok.headers.get('access-control-allow-origin'), SHOP);
    assert.match(ok.headers.get('vary'), /Origin/);
    for (const origin of ['https://evil.example', 'https://shop.example.evil.example', 'http://shop.example', 'null']) {
      const r = await api('GET', '/v1/vapid-public-key', { origin });
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('access-control-allow-origin'), null, origin);
    }
    const err = await api('GET', `/v1/subscriptions/${main.id}`, { origin: SHOP });
    assert.equal(err.status, 401);
    assert.equal(err.headers.get('access-control-allow-origin'), SHOP, 'errors of browser routes are readable by the shop');

    const preflight = (route, method, origin = SHOP) => api('OPTIONS', route, {
      origin, headers: { 'access-control-request-method': method, 'access-control-request-headers': 'authorization, content-type' },
    });
    for (const [route, method, methods] of [
      ['/v1/subscriptions', 'POST', ['POST']],
      [`/v1/subscriptions/${main.id}`, 'DELETE', ['DELETE', 'GET']],
      [`/v1/subscriptions/${main.id}/consent`, 'PUT', ['PUT']],
      [`/v1/subscriptions/${main.id}/endpoint`, 'PUT', ['PUT']],
      [`/v1/subscriptions/${main.id}/identify`, 'POST', ['POST']],
      ['/v1/deliveries/d_x/events', 'POST', ['POST']],
      ['/v1/consent/categories', 'GET', ['GET']],
      ['/v1/vapid-public-key', 'GET', ['GET']],
    ]) {
      const r = await preflight(route, method);
      assert.equal(r.status, 204, `${method} ${route}: ${r.text}`);
      assert.equal(r.headers.get('access-control-allow-origin'), SHOP);
      assert.deepEqual(r.headers.get('access-control-allow-methods').split(', ').sort(), methods);
      assert.match(r.headers.get('access-control-allow-headers'), /Authorization/);
      assert.match(r.headers.get('access-control-allow-headers'), /Content-Type/);
      const evil = await preflight(route, method, 'https://evil.example');
      assertError(evil, 403, 'forbidden');
      assert.equal(evil.headers.get('access-control-allow-origin'), null);
    }
    for (const [route, method] of [['/v1/customers/c-1', 'GET'], ['/v1/customers/c-1', 'DELETE'],
      [`/v1/subscriptions/${main.id}/export`, 'GET'], [`/v1/subscriptions/${main.id}/export`, 'DELETE'],
      [`/v1/subscriptions/${main.id}/customer`, 'POST'], ['/healthz', 'GET']]) {
      const r = await preflight(route, method);
      assertError(r, 403, 'forbidden');
      assert.equal(r.headers.get('access-control-allow-origin'), null, `${method} ${route}`);
    }
    // A backend answer never carries CORS, even for the shop's origin with a valid key.
    const backend = await api('GET', `/v1/subscriptions/${main.id}/export`, { key: API_KEY, origin: SHOP });
    assert.equal(backend.status, 200);
    assert.equal(backend.headers.get('access-control-allow-origin'), null);
    // OPTIONS without a preflight lists the methods.
    const plain = await api('OPTIONS', `/v1/subscriptions/${main.id}/export`);
    assert.equal(plain.status, 204);
    assert.deepEqual(plain.headers.get('allow').split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS']);
  });

  test('GDPR: export by customer and by subscription hold the ledger and never the token', async () => {
    const customer = `cust-${randomBytes(4).toString('hex')}`;
    const a = await subscribe();
    const b = await subscribe(subscribeBody({ categories: ['recommendations'] }));
    for (const s of [a, b]) {
      const r = await api('POST', `/v1/subscriptions/${s.id}/customer`, { key: API_KEY, json: { customer_id: customer } });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body, { id: s.id, customer_id: customer });
    }
    const n = ledgerEntries(dataDir);
    assertError(await api('POST', `/v1/subscriptions/${a.id}/customer`, { key: API_KEY, json: {} }), 422, 'missing_field', 'customer_id');
    assertError(await api('POST', `/v1/subscriptions/${a.id}/customer`, { key: API_KEY, json: { customer_id: 'x'.repeat(129) } }), 422, 'invalid_customer_id', 'customer_id');
    assertError(await api('POST', `/v1/subscriptions/${a.id}/customer`, { key: API_KEY, body: '[', contentType: 'application/json' }), 400, 'invalid_json');
    assertError(await api('POST', '/v1/subscriptions/sub_AAAAAAAAAAAAAAAAAAAAAA/customer', { key: API_KEY, json: { customer_id: customer } }), 404, 'not_found', 'id');

    const byCustomer = await api('GET', `/v1/customers/${customer}`, { key: API_KEY });
    assert.equal(byCustomer.status, 200);
    assert.equal(byCustomer.body.customer_id, customer);
    assert.deepEqual(byCustomer.body.subscriptions.map((s) => s.subscription.id).sort(), [a.id, b.id].sort());
    for (const s of byCustomer.body.subscriptions) {
      assert.ok(s.consent_ledger.length >= 1);
      assert.equal(s.consent_ledger[0].action, 'grant');
      assert.ok(Array.isArray(s.messages));
      assert.equal(s.subscription.customer_id, customer);
    }
    const bySubscription = await api('GET', `/v1/subscriptions/${a.id}/export`, { key: API_KEY });
    assert.equal(bySubscription.status, 200);
    assert.deepEqual(bySubscription.body, byCustomer.body.subscriptions.find((s) => s.subscription.id === a.id));
    for (const doc of [byCustomer, bySubscription]) {
      assert.ok(!doc.text.includes(a.token) && !doc.text.includes(b.token), 'no subscriber token in an export');
      assert.ok(![...allKeys(doc.body)].some((k) => /token/i.test(k)), 'no token field in an export');
    }
    assertError(await api('GET', '/v1/subscriptions/sub_AAAAAAAAAAAAAAAAAAAAAA/export', { key: API_KEY }), 404, 'not_found', 'id');
    assert.deepEqual((await api('GET', '/v1/customers/nobody-here', { key: API_KEY })).body, { customer_id: 'nobody-here', subscriptions: [], events: [], journeys: [], product_interest: [] });
    assert.equal(ledgerEntries(dataDir), n);

    // Erase one subscription: nothing personal is left, the ledger proves the erasure.
    let r = await api('DELETE', `/v1/subscriptions/${a.id}/export`, { key: API_KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.erased, 1);
    const erased = await backendExport(a.id);
    assert.equal(erased.subscription.state, 'erased');
    for (const field of ['endpoint', 'keys', 'customer_id', 'timezone', 'locale']) assert.equal(erased.subscription[field], null, field);
    assert.ok(!JSON.stringify(erased).includes(a.endpoint));
    assert.ok(!JSON.stringify(erased).includes(a.keys.p256dh));
    assert.equal(erased.consent_ledger.at(-1).action, 'erase');
    assert.equal(erased.consent_ledger.at(-1).source, 'backend:shop-backend');
    assertError(await api('GET', `/v1/subscriptions/${a.id}`, { token: a.token }), 404, 'not_found', 'id');
    assert.equal(ledgerEntries(dataDir), n + 1, 'consent verify is ok and counts the erase entry');
    r = await api('DELETE', `/v1/subscriptions/${a.id}/export`, { key: API_KEY });
    assert.equal(r.status, 200);
    assert.equal(r.body.erased, 0, 'erasing again erases nothing');
    assertError(await api('DELETE', '/v1/subscriptions/sub_AAAAAAAAAAAAAAAAAAAAAA/export', { key: API_KEY }), 404, 'not_found', 'id');

    // Erase the customer: the remaining device goes too.
    const beforeCustomerErase = ledgerEntries(dataDir);
    r = await api('DELETE', `/v1/customers/${customer}`, { key: API_KEY });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.erased, 1);
    const afterErase = await api('GET', `/v1/customers/${customer}`, { key: API_KEY });
    assert.deepEqual(afterErase.body, { customer_id: customer, subscriptions: [], events: [], journeys: [], product_interest: [] });
    assert.equal((await backendExport(b.id)).subscription.endpoint, null);
    assert.equal(ledgerEntries(dataDir), beforeCustomerErase + 1);
    assert.equal((await api('DELETE', '/v1/customers/nobody-here', { key: API_KEY })).body.erased, 0);

    // The same browser subscribing again starts afresh.
    const again = await subscribe(subscribeBody({ endpoint: a.endpoint, keys: a.keys }));
    assert.equal(again.status, 201);
    assert.notEqual(again.id, a.id);
  });

  test('DELETE /v1/subscriptions/{id}: 204, recorded, idempotent; consent changes are refused afterwards', async () => {
    const sub = await subscribe();
    const n = ledgerEntries(dataDir);
    const r = await api('DELETE', `/v1/subscriptions/${sub.id}`, { token: sub.token, origin: SHOP });
    assert.equal(r.status, 204);
    assert.equal(r.text, '');
    assert.equal(r.headers.get('access-control-allow-origin'), SHOP);
    assert.equal((await api('GET', `/v1/subscriptions/${sub.id}`, { token: sub.token })).body.state, 'unsubscribed');
    assert.equal(ledgerEntries(dataDir), n + 1);
    assert.equal((await api('DELETE', `/v1/subscriptions/${sub.id}`, { token: sub.token })).status, 204);
    assertError(await api('PUT', `/v1/subscriptions/${sub.id}/consent`, { token: sub.token, json: { categories: ['promotions'], text_version: TEXT_VERSION } }),
      409, 'subscription_inactive', 'id');
    assert.deepEqual((await backendExport(sub.id)).consent_ledger.map((e) => e.action), ['grant', 'unsubscribe']);
  });

  test('Origin: null (a sandboxed frame) neither blocks a subscription nor an unsubscription', async () => {
    const body = subscribeBody();
    delete body.source_url;
    const created = await api('POST', '/v1/subscriptions', { json: body, origin: 'null' });
    assert.equal(created.status, 201, created.text);
    const r = await api('DELETE', `/v1/subscriptions/${created.body.id}`, { token: created.body.token, origin: 'null' });
    assert.equal(r.status, 204, r.text);
    const ledger = (await backendExport(created.body.id)).consent_ledger;
    assert.deepEqual(ledger.map((e) => e.action), ['grant', 'unsubscribe']);
    assert.ok(ledger.every((e) => e.source !== 'null'));
    // Without source_url the Origin header is the source.
    const fromOrigin = subscribeBody();
    delete fromOrigin.source_url;
    const sub = await subscribe(fromOrigin, SHOP);
    assert.equal((await backendExport(sub.id)).consent_ledger[0].source, SHOP);
  });

  test('delivery beacons: signed ids are recorded once, forged ones refused', async () => {
    const signed = run(webpushctl, ['delivery', 'sign', '--data-dir', dataDir]);
    assert.equal(signed.status, 0, signed.stderr);
    const { id, sig } = JSON.parse(signed.stdout);
    const route = `/v1/deliveries/${id}/events`;
    const before = sql(dataDir, 'SELECT count(*) FROM delivery_events');
    let r = await api('POST', route, { json: { type: 'shown', sig }, origin: SHOP });
    assert.equal(r.status, 202, r.text);
    assert.deepEqual(r.body, { recorded: true });
    assert.equal(r.headers.get('access-control-allow-origin'), SHOP);
    r = await api('POST', route, { json: { type: 'shown', sig } });
    assert.equal(r.status, 202);
    assert.deepEqual(r.body, { recorded: false });
    r = await api('POST', route, { json: { type: 'clicked', action: 'open', sig } });
    assert.deepEqual(r.body, { recorded: true });
    assert.equal(Number(sql(dataDir, 'SELECT count(*) FROM delivery_events')), Number(before) + 2);

    const other = JSON.parse(run(webpushctl, ['delivery', 'sign', '--data-dir', dataDir]).stdout);
    const n = sql(dataDir, 'SELECT count(*) FROM delivery_events');
    assertError(await api('POST', route, { json: { type: 'closed', sig: other.sig } }), 403, 'forbidden', 'sig');
    // A changed first character changes the MAC's first byte (the last two carry only its last
    // byte, which is 0 once in 256 signatures: then `…AA` was the signature itself).
    assertError(await api('POST', route, { json: { type: 'closed', sig: `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}` } }), 403, 'forbidden', 'sig');
    assertError(await api('POST', `/v1/deliveries/${other.id}/events`, { json: { type: 'closed', sig } }), 403, 'forbidden', 'sig');
    assertError(await api('POST', route, { json: { type: 'zoomed', sig } }), 422, 'invalid_type', 'type');
    assertError(await api('POST', route, { json: { type: 7, sig } }), 422, 'invalid_type', 'type');
    assertError(await api('POST', route, { json: { sig } }), 422, 'missing_field', 'type');
    assertError(await api('POST', route, { json: { type: 'closed' } }), 422, 'missing_field', 'sig');
    assertError(await api('POST', route, { body: 'type=shown', contentType: 'text/plain' }), 415, 'unsupported_media_type');
    assertError(await api('POST', route, { body: '{"type":', contentType: 'application/json' }), 400, 'invalid_json');
    assert.equal(sql(dataDir, 'SELECT count(*) FROM delivery_events'), n, 'refused beacons record nothing');
  });

  test('SIGHUP: a broken config is refused with the reason and the old one kept; a valid one is logged', async () => {
    const categoriesBefore = (await api('GET', '/v1/consent/categories')).body;
    writeFileSync(configFile, `${configText()}delivery:\n  retry:\n    max_attempts: 0\n`);
    let from = daemon.log().length;
    daemon.child.kill('SIGHUP');
    await waitFor(() => /reload refused/.test(daemon.log().slice(from)), { timeoutMs: 5000, what: 'reload refused' });
    assert.match(daemon.log().slice(from), /max_attempts/, 'the log says why');
    assert.equal(daemon.child.exitCode, null, 'still running');
    assert.equal((await api('GET', '/healthz')).status, 200);
    assert.deepEqual((await api('GET', '/v1/consent/categories')).body, categoriesBefore);
    assert.equal((await api('GET', `/v1/subscriptions/${main.id}/export`, { key: API_KEY })).status, 200, 'the API keys still apply');

    writeFileSync(configFile, 'server: [this is: not yaml\n');
    from = daemon.log().length;
    daemon.child.kill('SIGHUP');
    await waitFor(() => /reload refused/.test(daemon.log().slice(from)), { timeoutMs: 5000, what: 'reload refused' });
    assert.equal((await api('GET', '/healthz')).status, 200);

    writeFileSync(configFile, configText({ level: 'debug' }));
    from = daemon.log().length;
    daemon.child.kill('SIGHUP');
    await waitFor(() => /reload: configuration .* is valid/.test(daemon.log().slice(from)), { timeoutMs: 5000, what: 'reload logged' });
    assert.match(daemon.log().slice(from), /reload: logging is now format=json level=debug/);
    assert.equal((await api('GET', '/healthz')).status, 200);
    writeFileSync(configFile, configText());
  });

  test('restart: SIGTERM exits 0, and subscriptions, consent and the ledger are all there afterwards', async () => {
    const exportBefore = await backendExport(main.id);
    const ledgerBefore = ledgerEntries(dataDir);
    const rowsBefore = sql(dataDir, 'SELECT count(*) FROM subscriptions');
    const { code } = await stopChild(daemon.child, 'SIGTERM');
    assert.equal(code, 0, daemon.log());
    assert.match(daemon.log(), /webpushd stopped/);
    assert.equal(ledgerEntries(dataDir), ledgerBefore);

    daemon = await startDaemon(configFile);
    assert.deepEqual(await backendExport(main.id), exportBefore);
    const state = await api('GET', `/v1/subscriptions/${main.id}`, { token: main.token });
    assert.equal(state.status, 200, 'the subscriber token still works');
    assert.equal(state.body.state, 'active');
    assert.equal(sql(dataDir, 'SELECT count(*) FROM subscriptions'), rowsBefore);
    assert.equal(ledgerEntries(dataDir), ledgerBefore);
  });

  test('kill -9 right after a 201: the subscription exists after restart (ack after commit)', async () => {
    const body = subscribeBody({ categories: ['promotions'] });
    const r = await api('POST', '/v1/subscriptions', { json: body });
    assert.equal(r.status, 201);
    daemon.child.kill('SIGKILL');
    await new Promise((resolve) => { if (daemon.child.exitCode !== null || daemon.child.signalCode !== null) resolve(); else daemon.child.once('exit', resolve); });

    daemon = await startDaemon(configFile);
    const state = await api('GET', `/v1/subscriptions/${r.body.id}`, { token: r.body.token });
    assert.equal(state.status, 200, state.text);
    assert.deepEqual(state.body.categories, ['promotions']);
    const again = await api('POST', '/v1/subscriptions', { json: body });
    assert.equal(again.status, 200, 'the endpoint is known');
    assert.equal(again.body.id, r.body.id);
    assert.equal((await backendExport(r.body.id)).consent_ledger[0].action, 'grant');
  });

  test('tamper: a changed ledger row is found by consent verify, which names its seq', async () => {
    const { code } = await stopChild(daemon.child, 'SIGTERM');
    assert.equal(code, 0, daemon.log());
    daemon = null;
    const intact = verifyLedger(dataDir);
    assert.equal(intact.status, 0, intact.output);
    assert.ok(intact.entries >= 5);
    // The append-only trigger is the first line of defence; an attacker with
    // the file drops it. The hash chain still tells.
    const seq = 3;
    const blocked = run('sqlite3', [path.join(dataDir, 'webpushd.db'), `UPDATE consent_ledger SET source = 'https://evil.example/' WHERE seq = ${seq}`]);
    assert.notEqual(blocked.status, 0);
    assert.match(blocked.stderr, /append-only/);
    sql(dataDir, `DROP TRIGGER consent_ledger_no_update; UPDATE consent_ledger SET source = 'https://evil.example/' WHERE seq = ${seq}`);
    const broken = verifyLedger(dataDir);
    assert.equal(broken.status, 2, broken.output);
    assert.match(broken.output, new RegExp(`\\bseq ${seq}\\b`));
    assert.match(broken.output, new RegExp(`${seq - 1} entries before it check out`));
  });
});
