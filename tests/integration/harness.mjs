// Shared helpers for integration tests: they run the real binaries against
// real peers (the web-push-testing emulator, the project's push-sink) on
// loopback, in temporary folders, with every wait bounded.
import { spawn, spawnSync } from 'node:child_process';
import { createECDH, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.resolve(here, '..', '..');
export const binDir = process.env.WEBPUSHD_BIN_DIR ?? path.join(sourceDir, 'build', 'bin');
export const webpushctl = path.join(binDir, 'webpushctl');
export const webpushd = path.join(binDir, 'webpushd');

const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

/** A fresh temporary folder, removed when the process exits. */
export function tempDir(prefix = 'webpushd-test-') {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a command to completion; returns {status, stdout, stderr}. */
export function run(cmd, args, { input, timeoutMs = 30000, env } = {}) {
  const r = spawnSync(cmd, args, { input, timeout: timeoutMs, encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts a long-running child; resolves with {child, firstLine} after its first stdout line. */
export function startChild(cmd, args, { timeoutMs = 10000, env, cwd } = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  child.stderrText = () => stderr;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} printed nothing in ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
    const lines = readline.createInterface({ input: child.stdout });
    lines.once('line', (line) => { clearTimeout(timer); resolve({ child, firstLine: line }); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited ${code}; stderr:\n${stderr}`)); });
  });
}

/** Stops a child and waits for it and for the end of its output. */
export async function stopChild(child, signal = 'SIGTERM', timeoutMs = 15000) {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  // 'close', not 'exit': at 'exit' the child's stdio may still hold its last
  // lines (the daemon's "webpushd stopped" went missing 1 run in 9).
  const exited = new Promise((resolve) => child.once('close', (code, sig) => resolve({ code, signal: sig })));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

/** Polls `predicate` until it returns a truthy value or the time runs out. */
export async function waitFor(predicate, { timeoutMs = 20000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The independent push-service emulator (npm web-push-testing) on 127.0.0.1. */
export async function startEmulator() {
  const launcher = path.join(sourceDir, 'tests', 'peers', 'push-emulator.js');
  const { child, firstLine } = await startChild(process.execPath, [launcher]);
  const { port } = JSON.parse(firstLine);
  const base = `http://127.0.0.1:${port}`;
  const post = async (route, payload) => {
    const res = await fetch(base + route, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload ?? {}) });
    const text = await res.text();
    let body = text;  // some answers are plain text ("OK")
    try { body = text ? JSON.parse(text) : null; } catch { /* keep the text */ }
    return { status: res.status, body };
  };
  return {
    child,
    base,
    /** Creates a subscription for an applicationServerKey; returns the browser-style PushSubscription JSON. */
    async subscribe(applicationServerKey) {
      const r = await post('/subscribe', { applicationServerKey, userVisibleOnly: 'true' });
      if (r.status !== 200) throw new Error(`subscribe failed: ${JSON.stringify(r.body)}`);
      const { endpoint, keys, clientHash } = r.body.data;
      return { subscription: { endpoint, keys }, clientHash };
    },
    /** Every message the emulator decrypted for this subscription, as UTF-8 strings. */
    async messages(clientHash) {
      const r = await post('/get-notifications', { clientHash });
      return r.status === 200 ? r.body.data.messages : [];
    },
    async expire(clientHash) { return post(`/expire-subscription/${clientHash}`); },
    stop: () => stopChild(child),
  };
}

/**
 * The project's push-sink (tools/push-sink) on 127.0.0.1: it answers as the
 * path says (`/push/ok/…` → 201 with a Location) and records every request.
 * Resolves with {child, base, stats(), stop()}; stats() is its GET /stats.
 */
export async function startSink(args = []) {
  const { child, firstLine } = await startChild(path.join(binDir, 'push-sink'), ['--port', '0', ...args]);
  const base = `http://127.0.0.1:${JSON.parse(firstLine).port}`;
  return {
    child,
    base,
    async stats() { return (await fetch(`${base}/stats`, { signal: AbortSignal.timeout(5000) })).json(); },
    stop: () => stopChild(child),
  };
}

/**
 * A browser-style PushSubscription for `endpoint` with fresh device keys:
 * enough for the daemon to encrypt to, for endpoints on a push-sink (which
 * records and answers, and never decrypts).
 */
export function deviceSubscription(endpoint) {
  const device = createECDH('prime256v1');
  device.generateKeys();
  return { endpoint, keys: { p256dh: device.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
}

/**
 * Starts webpushd with `configFile` (and extra `args`); resolves once it has
 * logged both its bound address (`listening on http://HOST:PORT`, so a
 * `127.0.0.1:0` listener works) and `webpushd started` (its signal handling
 * is in place from then on). Resolves with {child, base, port, log()}; the
 * log is the daemon's stderr so far, and `child.log` is the same function.
 */
export async function startDaemon(configFile, { args = [], timeoutMs = 10000 } = {}) {
  const child = spawn(webpushd, ['--config', configFile, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  child.log = () => log;
  const match = await waitFor(() => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`webpushd exited ${child.exitCode ?? child.signalCode}`);
    return log.includes('webpushd started') && log.match(/listening on http:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:"]+):(\d+)/);
  }, { timeoutMs, intervalMs: 20, what: 'webpushd to start' })
    .catch((e) => { child.kill('SIGKILL'); throw new Error(`${e.message}\n${log}`); });
  const port = Number(match[2]);
  if (!(port > 0)) throw new Error(`webpushd logged port ${match[2]}`);
  return { child, base: `http://${match[1]}:${port}`, port, log: child.log };
}

/** Generates a VAPID key in `dir`; returns {keyFile, publicKey}. */
export function makeVapidKey(dir) {
  const r = run(webpushctl, ['vapid', 'generate', '--out', dir]);
  if (r.status !== 0) throw new Error(`vapid generate failed: ${r.stderr}`);
  return { keyFile: path.join(dir, 'vapid_private.pem'), publicKey: r.stdout.trim().split('\n').pop().trim() };
}

/** The config lines every test daemon shares: a data folder beside the
 * config file and a VAPID subject. Spread into a test's own YAML lines. */
export const dataAndVapidYaml = ['storage:', '  data_dir: data', 'vapid:', '  subject: mailto:ops@shop.example'];
/** `delivery.endpoints` lines (indented for inside `delivery:`) that let the daemon reach peers on plain-http loopback. */
export const loopbackEndpointsYaml = ['  endpoints:', '    allowed_hosts: [127.0.0.1]', '    allow_http: true', '    allow_private_addresses: true'];

/**
 * A test daemon's config: a loopback listener on a free port, the shop
 * backend's API key, the browser origin, consent `categories` (name →
 * English label, in order), data and VAPID, fast outbox polling, loopback
 * push endpoints, then the test's own `extra` lines and JSON logs; `server`
 * lines (indented for inside `server:`) go under the listener.
 */
export function daemonConfigYaml({ apiKey, origin, categories, defaultTimezone, server = [], extra = [] }) {
  return [
    'server:',
    '  listen: 127.0.0.1:0',
    ...server,
    `  cors_origins: [${origin}]`,
    '  api_keys:',
    '    - name: shop-backend',
    `      key: ${apiKey}`,
    'consent:',
    '  text_version: v1',
    ...(defaultTimezone ? [`  default_timezone: ${defaultTimezone}`] : []),
    '  categories:',
    ...Object.entries(categories).flatMap(([name, label]) => [`    - name: ${name}`, '      texts:', `        en: {label: ${label}}`]),
    ...dataAndVapidYaml,
    'delivery:',
    '  poll_interval: 100ms',
    ...loopbackEndpointsYaml,
    ...extra,
    'logging:',
    '  format: json',
    '',
  ].join('\n');
}

/**
 * A scenario file with one abandoned-cart scenario (category
 * cart_reminders): every cart_updated event starts a journey keyed by its
 * cart, and `steps` ([{name, after, title}]) are its reminders, each linking
 * to the shop's cart page.
 */
export function cartScenarioYaml(steps) {
  return [
    'version: 1',
    'scenarios:',
    '  - name: abandoned_cart',
    '    category: cart_reminders',
    '    trigger: {event: cart_updated}',
    '    journey: {key: cart.id}',
    '    steps:',
    ...steps.flatMap(({ name, after, title }) => [
      `      - name: ${name}`,
      `        after: ${after}`,
      `        message: {title: ${JSON.stringify(title)}, url: "https://shop.example/cart"}`,
    ]),
    '',
  ].join('\n');
}

/** Writes a JSON file and returns its path. */
export function writeJson(dir, name, value) {
  const file = path.join(dir, name);
  writeFileSync(file, JSON.stringify(value));
  return file;
}

/**
 * Talking to a running daemon: `call(method, route, json, headers)` answers
 * {status, body (parsed JSON or null), text, headers}; `backend(...)` is the same with
 * the shop backend's API key; `sql(statement)` reads the daemon's database
 * (`<dir>/data/webpushd.db`) with the sqlite3 CLI. The daemon and folder are
 * given as functions because tests start them in `before`.
 */
export function daemonClient(getDaemon, apiKey, getDir) {
  const call = async (method, route, json, headers = {}) => {
    const res = await fetch(getDaemon().base + route, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      body: json === undefined ? undefined : JSON.stringify(json),
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    // JSON answers are parsed; others (/metrics, pages) are only text.
    const isJson = /json/.test(res.headers.get('content-type') ?? '');
    return { status: res.status, body: text && isJson ? JSON.parse(text) : null, text, headers: res.headers };
  };
  const backend = (method, route, json) => call(method, route, json, { authorization: `Bearer ${apiKey}` });
  const sql = (statement) => {
    const r = run('sqlite3', [path.join(getDir(), 'data', 'webpushd.db'), statement]);
    if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  return { call, backend, sql };
}
