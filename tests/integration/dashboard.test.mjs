// The dashboard's login and the `reader` access kind against the real
// daemon: webpushctl dashboard hash-password, login success and failure (the
// form's HTML and the scripts' JSON), the cookie's flags, logout, the failed-
// login limit, reader routes refusing without credentials and accepting the
// cookie (never CORS, nothing else opened by it), the API key still working,
// the page's CSP; the initial admin password a fresh install generates; and
// the vendored chart library being the npm package's files, byte for byte.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dataAndVapidYaml, run, sourceDir, startDaemon, stopChild, tempDir, webpushctl } from './harness.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const PASSWORD = `pw-${randomBytes(12).toString('base64url')}`;
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
  + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const READER_ROUTES = ['/v1/scenarios', '/v1/scenarios/abandoned_cart/stats', '/v1/campaigns', '/v1/campaigns/cmp_missing', '/v1/campaigns/cmp_missing/stats', '/dashboard/session'];

function hashPassword(password) {
  const r = run(webpushctl, ['dashboard', 'hash-password'], { input: `${password}\n` });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function writeConfig(dir, extra) {
  const file = path.join(dir, 'webpushd.yaml');
  writeFileSync(file, [
    'server:',
    '  listen: 127.0.0.1:0',
    '  cors_origins: [https://shop.example]',
    '  api_keys:',
    '    - name: shop-backend',
    `      key: ${API_KEY}`,
    ...(extra.server ?? []),
    ...dataAndVapidYaml,
    ...(extra.dashboard ?? []),
    'logging:',
    '  format: json',
    '',
  ].join('\n'));
  return file;
}

/** fetch with a bound, returning {status, headers, text, json}. */
async function request(base, route, { method = 'GET', headers = {}, body } = {}) {
  const res = await fetch(base + route, { method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(10000) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* HTML or empty */ }
  return { status: res.status, headers: res.headers, text, json };
}

const form = (fields) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('webpushctl dashboard hash-password', () => {
  test('--help says where the password comes from; short or missing passwords are refused', () => {
    const help = run(webpushctl, ['dashboard', 'hash-password', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /standard\s+input/);
    assert.match(help.stdout, /dashboard\.users/);
    assert.equal(run(webpushctl, ['dashboard', 'hash-password'], { input: 'short\n' }).status, 1);
    assert.equal(run(webpushctl, ['dashboard', 'hash-password'], { input: '' }).status, 1);
    const hash = hashPassword('a long enough password');
    assert.match(hash, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    assert.notEqual(hashPassword('a long enough password'), hash, 'a fresh salt each time');
  });
});

describe('dashboard login and reader access', () => {
  let daemon;
  let dir;
  before(async () => {
    dir = tempDir('webpushd-dashboard-');
    const config = writeConfig(dir, {
      dashboard: ['dashboard:', '  session_lifetime: 2h', '  users:', '    - name: marketing', `      password_hash: '${hashPassword(PASSWORD)}'`],
    });
    daemon = await startDaemon(config);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  const login = (fields, headers = {}) => request(daemon.base, '/dashboard/login', { method: 'POST', headers: { ...FORM, ...headers }, body: form(fields) });
  const cookieOf = (res) => res.headers.get('set-cookie').split(';')[0];

  test('GET /dashboard without a session is the login form, with the strict CSP', async () => {
    const res = await request(daemon.base, '/dashboard');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.match(res.text, /<form method="post" action="\/dashboard\/login"/);
    assert.doesNotMatch(res.text, /<script/, 'the login page runs no script');
    assert.equal(res.headers.get('content-security-policy'), CSP);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(daemon.log().includes('dashboard_password'), false, 'users are configured: no initial password');
  });

  test('reader routes refuse requests without credentials, and never answer CORS', async () => {
    for (const route of READER_ROUTES) {
      const res = await request(daemon.base, route, { headers: { origin: 'https://shop.example' } });
      assert.equal(res.status, 401, route);
      assert.equal(res.json.error.code, 'unauthorized');
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="webpushd"');
      assert.equal(res.headers.get('access-control-allow-origin'), null, route);
    }
  });

  test('the API key still opens the reader routes', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    assert.equal((await request(daemon.base, '/v1/scenarios', { headers: auth })).status, 200);
    assert.equal((await request(daemon.base, '/v1/campaigns', { headers: auth })).status, 200);
    assert.deepEqual((await request(daemon.base, '/dashboard/session', { headers: auth })).json, { api_key: 'shop-backend' });
  });

  test('a wrong password: 401 JSON for scripts, the form again for browsers; no cookie', async () => {
    let res = await login({ name: 'marketing', password: 'not-the-password' });
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'unauthorized');
    assert.equal(res.headers.get('set-cookie'), null);
    res = await login({ name: 'nobody', password: PASSWORD }, { accept: 'text/html' });
    assert.equal(res.status, 401);
    assert.match(res.text, /Wrong name or password\./);
    assert.equal(res.headers.get('content-security-policy'), CSP);
    assert.equal(res.headers.get('set-cookie'), null);
    res = await request(daemon.base, '/dashboard/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 415);
    res = await login({ name: 'marketing', password: PASSWORD }, { origin: 'https://evil.example' });
    assert.equal(res.status, 403, 'a login posted from another site');
    assert.equal(res.headers.get('set-cookie'), null);
    assert.match(daemon.log(), /dashboard: failed login from 127\.0\.0\.1/);
    assert.ok(!daemon.log().includes('not-the-password'), 'passwords are never logged');
  });

  test('login: an HttpOnly, SameSite=Strict cookie for the session lifetime that opens the page and the reader routes only', async () => {
    const res = await login({ name: 'marketing', password: PASSWORD }, { accept: 'text/html', origin: daemon.base });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/dashboard');
    const setCookie = res.headers.get('set-cookie');
    assert.match(setCookie, /^webpushd_session=v1\.[A-Za-z0-9_-]+\.\d+\.[A-Za-z0-9_-]{43}; Max-Age=7200; Path=\/; HttpOnly; SameSite=Strict$/);
    const cookie = cookieOf(res);
    const page = await request(daemon.base, '/dashboard', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.text, /<script defer src="\/dashboard\/app\.js"><\/script>/);
    assert.doesNotMatch(page.text, /<script>|<script [^>]*>[^<]/, 'no inline script');
    assert.equal(page.headers.get('content-security-policy'), CSP);
    for (const route of READER_ROUTES) {
      const r = await request(daemon.base, route, { headers: { cookie, origin: 'https://shop.example' } });
      // An unknown scenario or campaign is a 404 *after* access was granted.
      assert.ok([200, 404].includes(r.status) && r.json?.error?.code !== 'unauthorized', `${route}: ${r.status} ${r.text}`);
      assert.equal(r.headers.get('access-control-allow-origin'), null, route);
    }
    const who = (await request(daemon.base, '/dashboard/session', { headers: { cookie } })).json;
    assert.equal(who.user, 'marketing');
    const left = Date.parse(who.expires_at) - Date.now();
    assert.ok(left > 7100e3 && left <= 7200e3, `expires in about 2 h: ${who.expires_at}`);
    // Nothing beyond the reader routes.
    assert.equal((await request(daemon.base, '/v1/events', { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{}' })).status, 401);
    assert.equal((await request(daemon.base, '/v1/campaigns/cmp_x', { method: 'DELETE', headers: { cookie } })).status, 401);
    assert.equal((await request(daemon.base, '/v1/customers/c1', { headers: { cookie } })).status, 401);
    // A cookie with a changed expiry is not a session.
    const [name, value] = cookie.split('=');
    const parts = value.split('.');
    parts[2] = String(Number(parts[2]) + 86400);
    assert.equal((await request(daemon.base, '/v1/scenarios', { headers: { cookie: `${name}=${parts.join('.')}` } })).status, 401);
    // The JSON form of a login.
    const scripted = await login({ name: 'marketing', password: PASSWORD });
    assert.equal(scripted.status, 200);
    assert.equal(scripted.json.user, 'marketing');
    assert.match(daemon.log(), /dashboard: marketing logged in from 127\.0\.0\.1/);
  });

  test('logout clears the cookie', async () => {
    let res = await request(daemon.base, '/dashboard/logout', { method: 'POST', headers: { accept: 'text/html' } });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('set-cookie'), 'webpushd_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict');
    res = await request(daemon.base, '/dashboard/logout', { method: 'POST' });
    assert.equal(res.status, 204);
  });

  test('the page\'s files are served, and the vendored uPlot is npm\'s uplot at the pinned version, byte for byte', async () => {
    const peers = path.join(sourceDir, 'tests', 'peers');
    const pinned = JSON.parse(readFileSync(path.join(peers, 'package.json'), 'utf8')).dependencies.uplot;
    const pkgDir = path.dirname(createRequire(path.join(peers, 'package.json')).resolve('uplot/package.json'));
    assert.equal(JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version, pinned, 'tests/peers/node_modules has the pinned uplot (npm ci)');
    const vendor = path.join(sourceDir, 'web', 'dashboard', 'vendor');
    for (const [mine, theirs] of [['uPlot.iife.min.js', 'dist/uPlot.iife.min.js'], ['uPlot.min.css', 'dist/uPlot.min.css'], ['LICENSE', 'LICENSE']]) {
      assert.ok(readFileSync(path.join(vendor, mine)).equals(readFileSync(path.join(pkgDir, theirs))), `web/dashboard/vendor/${mine} is uplot@${pinned}'s ${theirs}`);
    }
    assert.match(readFileSync(path.join(vendor, 'uPlot.iife.min.js'), 'utf8'), new RegExp(`\\(v${pinned.replace(/\./g, '\\.')}\\)`));
    assert.match(readFileSync(path.join(sourceDir, 'web', 'dashboard', 'README.md'), 'utf8'), new RegExp(`\\*\\*${pinned.replace(/\./g, '\\.')}\\*\\*`));
    for (const [route, file] of [['/dashboard/vendor/uPlot.iife.min.js', 'vendor/uPlot.iife.min.js'], ['/dashboard/app.js', 'app.js'], ['/dashboard/app.css', 'app.css']]) {
      const res = await fetch(daemon.base + route);
      assert.equal(res.status, 200, route);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(readFileSync(path.join(sourceDir, 'web', 'dashboard', file))), route);
    }
    // The pages themselves only through /dashboard (with the CSP).
    assert.equal((await fetch(`${daemon.base}/dashboard/index.html`)).status, 404);
    assert.equal((await fetch(`${daemon.base}/dashboard/login.html`)).status, 404);
  });

  // Last: it locks 127.0.0.1 out for 15 minutes.
  test('after 5 failed logins the address is refused, even with the right password', async () => {
    for (let i = 0; i < 5; i += 1) {
      const res = await login({ name: 'marketing', password: `wrong-${i}` });
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    let res = await login({ name: 'marketing', password: PASSWORD });
    assert.equal(res.status, 429);
    assert.equal(res.json.error.code, 'rate_limited');
    const retry = Number(res.headers.get('retry-after'));
    assert.ok(retry > 800 && retry <= 900, `Retry-After ${retry}`);
    res = await login({ name: 'marketing', password: PASSWORD }, { accept: 'text/html' });
    assert.equal(res.status, 429);
    assert.match(res.text, /Too many failed attempts from your address\. Try again in 15 minutes\./);
  });
});

describe('a fresh install without dashboard.users', () => {
  let daemon;
  let dir;
  let config;
  before(async () => {
    dir = tempDir('webpushd-dashboard-initial-');
    config = writeConfig(dir, { server: ['  public_url: https://push.shop.example'] });
    daemon = await startDaemon(config);
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('generates an admin password into data_dir (0600), logs where it is but never what; a restart keeps it', async () => {
    const file = path.join(dir, 'data', 'dashboard_password');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    assert.match(password, /^[A-Za-z0-9_-]{20}$/);
    assert.ok(daemon.log().includes(`log in at /dashboard as 'admin' with the password in ${file} (generated now, mode 0600)`), daemon.log());
    assert.ok(!daemon.log().includes(password), 'the password is not logged');
    assert.equal(statSync(path.join(dir, 'data', 'dashboard.key')).mode & 0o777, 0o600);

    const res = await request(daemon.base, '/dashboard/login', { method: 'POST', headers: FORM, body: form({ name: 'admin', password }) });
    assert.equal(res.status, 200, res.text);
    // server.public_url is https: the cookie is Secure.
    assert.match(res.headers.get('set-cookie'), /; Max-Age=43200; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
    const cookie = res.headers.get('set-cookie').split(';')[0];

    await stopChild(daemon.child);
    daemon = await startDaemon(config);
    assert.equal(readFileSync(file, 'utf8').trim(), password, 'the same password after a restart');
    assert.ok(!daemon.log().includes('generated now'));
    // The session key is kept too: the cookie survives the restart.
    assert.equal((await request(daemon.base, '/v1/scenarios', { headers: { cookie } })).status, 200);
  });
});
