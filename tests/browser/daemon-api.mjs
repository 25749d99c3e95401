// The real daemon (build/bin/webpushd) as the browser tests' API, and what a
// test needs around it: the shop backend's view (GDPR exports with an API
// key), deliveries signed with the daemon's tracking.key (webpushctl delivery
// sign), and the delivery events it recorded (sqlite3, when installed).
import { execFile, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

import { stopChild, tempDir, waitFor, webpushctl, webpushd } from '../integration/harness.mjs';

const run = promisify(execFile);
const SETPRIV = '/usr/bin/setpriv';  // util-linux

export const IDENTIFY_SECRET = 'browser-test-identify-secret-0123456789';
const API_KEY = 'browser-test-backend-key-0123456789abcdef';

// The consent section of the test config, also what the suite expects the
// pre-prompt to show. default_locale is Polish so that a fallback to it is
// distinguishable from the fallback to "en"; default_timezone differs from
// the zone Chromium is started in (browser.mjs) for the same reason.
export const CONSENT = {
  text_version: 'v3',
  default_timezone: 'America/New_York',
  default_locale: 'pl',
  categories: [
    { name: 'cart', texts: {
      en: { label: 'Cart reminders', description: 'When you leave something in your cart.' },
      pl: { label: 'Przypomnienia o koszyku', description: 'Gdy zostawisz coś w koszyku.' } } },
    { name: 'promotions', texts: {
      en: { label: 'Promotions', description: 'Discounts and sales at most once a week.' },
      pl: { label: 'Promocje', description: 'Rabaty i wyprzedaże, najwyżej raz w tygodniu.' } } },
  ],
};

// Every route the SDK and the service worker call (docs/API.md).
export const BROWSER_ROUTES = [
  ['GET', '/sdk/webpushd.js'],
  ['GET', '/sdk/sw.js'],
  ['GET', '/v1/vapid-public-key'],
  ['GET', '/v1/consent/categories?locale=pl-PL'],
  ['POST', '/v1/subscriptions'],
  ['GET', '/v1/subscriptions/probe'],
  ['PUT', '/v1/subscriptions/probe/consent'],
  ['PUT', '/v1/subscriptions/probe/endpoint'],
  ['POST', '/v1/subscriptions/probe/identify'],
  ['DELETE', '/v1/subscriptions/probe'],
  ['POST', '/v1/deliveries/probe/events'],
];

// Daemons still running when the test process ends (a failed before(), a
// crash) are killed; close() is the normal way.
const running = new Set();
process.on('exit', () => { for (const c of running) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

function writeConfig(dir, corsOrigins) {
  // JSON is YAML: the config is written as JSON, so nothing needs quoting.
  const config = {
    server: {
      listen: '127.0.0.1:0',
      cors_origins: corsOrigins,
      api_keys: [{ name: 'browser-tests', key: API_KEY }],
      identify_secret: IDENTIFY_SECRET,
    },
    consent: CONSENT,
    storage: { data_dir: 'data' },
    vapid: { subject: 'mailto:ops@shop.example' },
    // Chromium with the fake GCM server subscribes at https://…google.com/fcm/send/<token>.
    delivery: { endpoints: { allowed_hosts: ['*.google.com', 'fcm.googleapis.com'] } },
    logging: { format: 'json', level: 'info' },
  };
  const file = path.join(dir, 'webpushd.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/** Why the daemon cannot be used here, or null. */
export function missingDaemon() {
  for (const bin of [webpushd, webpushctl]) if (!existsSync(bin)) return `${bin} is not built`;
  return null;
}

let sqlite3 = null;
/** Debian's sqlite3 CLI, if installed (resolved once). */
async function sqlite3Path() {
  if (sqlite3 === null) {
    sqlite3 = ['/usr/bin/sqlite3', '/usr/local/bin/sqlite3'].find((p) => existsSync(p)) ?? false;
  }
  return sqlite3;
}

/** Starts webpushd for the shop origins; resolves with the API object the suite uses. */
export async function startDaemonApi({ corsOrigins }) {
  const dir = tempDir('webpushd-browser-');
  const dataDir = path.join(dir, 'data');
  const config = writeConfig(dir, corsOrigins);
  // Under setpriv --pdeathsig the daemon is killed even if this process is
  // (a CTest timeout, SIGKILL), when no exit handler runs.
  const [cmd, args] = existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'KILL', webpushd]] : [webpushd, []];
  const child = spawn(cmd, [...args, '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  // server.listen is 127.0.0.1:0: the daemon logs the port it got.
  const match = await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`webpushd exited ${child.exitCode}`);
    return log.match(/listening on (http:\/\/[0-9.]+:\d+)/);
  }, { timeoutMs: 10000, what: 'webpushd listening line' }).catch(async (e) => {
    await stopChild(child, 'SIGKILL');
    throw new Error(`${e.message}\n${log}`);
  });
  const origin = match[1];
  const vapidPublicKey = (await (await fetch(`${origin}/v1/vapid-public-key`)).json()).publicKey;

  const getJson = async (route, headers) => {
    const r = await fetch(origin + route, { headers });
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new Error(`GET ${route}: ${r.status} ${JSON.stringify(body)}`);
    return body;
  };
  const backend = { Authorization: `Bearer ${API_KEY}` };

  return {
    origin,
    dataDir,
    vapidPublicKey,
    identifySecret: IDENTIFY_SECRET,
    log: () => log,
    close: () => stopChild(child),
    /** GET /v1/subscriptions/{id} as the subscriber's browser would. */
    subscription: (id, token) => getJson(`/v1/subscriptions/${encodeURIComponent(id)}`, { Authorization: `Subscriber ${token}` }),
    /** The shop backend's GDPR export of one subscription: {subscription, consent_ledger, messages}. */
    exported: (id) => getJson(`/v1/subscriptions/${encodeURIComponent(id)}/export`, backend),
    /** The shop backend's export of everything linked to a customer id. */
    customer: (customerId) => getJson(`/v1/customers/${encodeURIComponent(customerId)}`, backend),
    /** The endpoint the daemon holds for a subscription (from the export). */
    async endpoint(id) { return (await this.exported(id)).subscription.endpoint; },
    /** A new delivery {id, sig, report} signed with this daemon's tracking.key, as push payloads carry it. */
    async delivery() {
      const { stdout } = await run(webpushctl, ['delivery', 'sign', '--data-dir', dataDir, '--api', origin], { timeout: 10000 });
      return JSON.parse(stdout);
    },
    /** Posts a delivery report as the service worker does (from `from`, an Origin); {status, body}. */
    async report(delivery, body, from) {
      const r = await fetch(delivery.report, { method: 'POST', headers: { 'content-type': 'application/json', origin: from }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    /**
     * The delivery events the daemon stored for a delivery id, read with the
     * sqlite3 CLI from its database; null when sqlite3 is not installed.
     */
    async events(deliveryId) {
      const bin = await sqlite3Path();
      if (!bin) return null;
      if (!/^[A-Za-z0-9_-]+$/.test(deliveryId)) throw new Error(`unexpected delivery id ${deliveryId}`);
      const { stdout } = await run(bin, ['-readonly', '-json', path.join(dataDir, 'webpushd.db'),
        `SELECT type, action, at FROM delivery_events WHERE delivery_id = '${deliveryId}' ORDER BY at, type`], { timeout: 10000 });
      return stdout.trim() ? JSON.parse(stdout) : [];
    },
  };
}

/** The routes of BROWSER_ROUTES the daemon does not serve (404 "no such endpoint" or 405). */
export async function missingRoutes(origin) {
  const missing = [];
  for (const [method, route] of BROWSER_ROUTES) {
    const r = await fetch(origin + route, { method, headers: { 'content-type': 'application/json' },
      body: method === 'GET' || method === 'DELETE' ? undefined : '{}' });
    const body = await r.json().catch(() => null);
    // A present route answers 401 (no token), 404 for the unknown id "probe", 4xx for the empty body…
    if (r.status === 405 || (r.status === 404 && body?.error?.message === 'no such endpoint')) missing.push(`${method} ${route.split('?')[0]}`);
  }
  return missing;
}
