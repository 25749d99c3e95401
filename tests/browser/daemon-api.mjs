// The real daemon (build/bin/webpushd) as the browser tests' API: started
// the way tests/integration/daemon_outbox.test.mjs does, with a config that
// lists the shop's origin in server.cors_origins and allows the fake GCM
// endpoints Chromium produces (https://*.google.com/fcm/send/…).
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { stopChild, tempDir, waitFor, webpushd } from '../integration/harness.mjs';

const IDENTIFY_SECRET = 'browser-test-identify-secret-0123456789';

// What the SDK and the service worker call (docs/API.md); each is probed with
// a request that a present route answers with something other than 404/405.
const ROUTES = [
  ['GET', '/sdk/webpushd.js'],
  ['GET', '/sdk/sw.js'],
  ['GET', '/v1/vapid-public-key'],
  ['GET', '/v1/consent/categories?locale=pl-PL'],
  ['POST', '/v1/subscriptions'],
  ['PUT', '/v1/subscriptions/probe/consent'],
  ['PUT', '/v1/subscriptions/probe/endpoint'],
  ['POST', '/v1/subscriptions/probe/identify'],
  ['DELETE', '/v1/subscriptions/probe'],
  ['GET', '/v1/subscriptions/probe'],
  ['POST', '/v1/deliveries/probe/events'],
];

function writeConfig(dir, corsOrigins, minimal) {
  const file = path.join(dir, 'webpushd.yaml');
  const common = `
server:
  listen: 127.0.0.1:0
  cors_origins: [${corsOrigins.map((o) => JSON.stringify(o)).join(', ')}]
storage: { data_dir: data }
vapid: { subject: "mailto:ops@shop.example" }
logging: { format: json, level: info }
`;
  // What the browser tests need beyond that: the identify secret, consent
  // categories with Polish texts, and the fake GCM endpoints.
  writeFileSync(file, minimal ? common : `${common}
api:
  identify_secret: ${IDENTIFY_SECRET}
consent:
  text_version: v3
  categories:
    - name: cart
      texts:
        en: { label: Cart reminders, description: When you leave something in your cart. }
        pl: { label: Przypomnienia o koszyku, description: Gdy zostawisz coś w koszyku. }
    - name: promotions
      texts:
        en: { label: Promotions, description: Discounts and sales at most once a week. }
        pl: { label: Promocje, description: "Rabaty i wyprzedaże, najwyżej raz w tygodniu." }
delivery:
  endpoints:
    # Chromium with the fake GCM server subscribes at https://jmt17.google.com/fcm/send/<token>.
    allowed_hosts: ["*.google.com"]
`);
  return file;
}

/** Starts webpushd for the shop origins; resolves with the API object the suite uses. */
export async function startDaemonApi({ corsOrigins, minimal = false }) {
  if (!existsSync(webpushd)) throw new Error(`${webpushd} is not built`);
  const dir = tempDir('webpushd-browser-');
  const config = writeConfig(dir, corsOrigins, minimal);
  const child = spawn(webpushd, ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  // server.listen is 127.0.0.1:0: the daemon logs the port it got.
  const match = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`webpushd exited ${child.exitCode}`);
    return log.match(/listening on (http:\/\/[0-9.]+:\d+)/);
  }, { timeoutMs: 10000, what: 'webpushd listening line' }).catch((e) => {
    child.kill('SIGKILL');
    if (log.includes('webpushd started')) throw new Error('webpushd started without an HTTP listener (no "listening on" line)');
    throw new Error(`${e.message}\n${log}`);
  });
  const origin = match[1];
  const vapidPublicKey = await fetch(`${origin}/v1/vapid-public-key`).then((r) => r.json()).then((b) => b.publicKey, () => null);
  const asSubscriber = (token) => ({ Authorization: `Subscriber ${token}` });
  return {
    origin,
    vapidPublicKey,
    identifySecret: IDENTIFY_SECRET,
    log: () => log,
    close: () => stopChild(child),
    async subscription(id, token) {
      const r = await fetch(`${origin}/v1/subscriptions/${id}`, { headers: asSubscriber(token) });
      if (!r.ok) throw new Error(`GET /v1/subscriptions/${id}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    async isUnsubscribed(id, token) {
      const r = await fetch(`${origin}/v1/subscriptions/${id}`, { headers: asSubscriber(token) });
      // After DELETE the token may no longer open the record at all.
      return r.status === 401 || r.status === 404 || (r.ok && (await r.json()).state !== 'active');
    },
    // Not yet settled with the daemon's engineers (see report): how a test
    // obtains a delivery the daemon signed, the new endpoint after
    // PUT …/endpoint, and the delivery events it recorded.
    async endpoint() { throw new Error('real daemon: no route shows a subscription\'s endpoint to its subscriber'); },
    async delivery() { throw new Error('real daemon: no way yet for a test to obtain a signed delivery'); },
    // No events(): the suite sees the daemon answer 202 to each report in the
    // browser; reading the recorded event back waits for a stats route.
  };
}

/** Null when the daemon serves the SDK files and the VAPID key (with the minimal config), else why not. */
export async function probeSdkFiles() {
  if (!existsSync(webpushd)) return `${webpushd} is not built`;
  let api;
  try { api = await startDaemonApi({ corsOrigins: ['http://127.0.0.1:1'], minimal: true }); } catch (e) { return e.message.split('\n')[0]; }
  try {
    for (const route of ['/sdk/webpushd.js', '/sdk/sw.js', '/v1/vapid-public-key']) {
      const r = await fetch(api.origin + route).catch(() => null);
      if (!r?.ok) return `GET ${route} answers ${r?.status}`;
    }
    return null;
  } finally { await api.close(); }
}

/**
 * Starts the daemon once with a throw-away config and asks for every route
 * the browser needs. Resolves with null when all are there, else with a
 * sentence naming what is missing (used as the suite's skip reason).
 */
export async function probeDaemon() {
  if (!existsSync(webpushd)) return `${webpushd} is not built`;
  const problems = [];
  const first = (e) => e.message.split('\n').find((l) => /unknown key|: /.test(l) && l.includes('.yaml')) ?? e.message.split('\n')[0];
  let api;
  try {
    api = await startDaemonApi({ corsOrigins: ['http://127.0.0.1:1'] });
    await api.close();
  } catch (e) {
    problems.push(`the browser-test config is refused (${first(e)})`);
  }
  try {
    api = await startDaemonApi({ corsOrigins: ['http://127.0.0.1:1'], minimal: true });
  } catch (e) {
    return [...problems, `webpushd does not start: ${first(e)}`].join('; ');
  }
  try {
    const missing = [];
    for (const [method, route] of ROUTES) {
      const r = await fetch(api.origin + route, { method, headers: { 'content-type': 'application/json' }, body: method === 'GET' || method === 'DELETE' ? undefined : '{}' })
        .catch(() => null);
      if (!r || r.status === 404 || r.status === 405) {
        const body = r ? await r.text() : '';
        // A 404 from a present route (unknown id) names the thing, not the route.
        if (!r || r.status === 405 || /no such (route|file|path)|not_found"/.test(body) && !/subscription|delivery/.test(body)) missing.push(`${method} ${route.split('?')[0]}`);
      }
    }
    if (missing.length) problems.push(`the daemon does not serve yet: ${missing.join(', ')}`);
    return problems.length ? problems.join('; ') : null;
  } finally {
    await api.close();
  }
}
