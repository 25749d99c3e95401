// The daemon's HTTP listener: on a port-0 listener it logs the port it got,
// answers /healthz and /v1/vapid-public-key, serves the SDK files, applies
// CORS for the configured shop origin only, and drains on SIGTERM.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dataAndVapidYaml, makeVapidKey, startDaemon, stopChild, tempDir } from './harness.mjs';

function writeConfig(dir) {
  const file = path.join(dir, 'webpushd.yaml');
  writeFileSync(file, [
    'server:',
    '  listen: 127.0.0.1:0',
    '  read_timeout: 2s',
    '  cors_origins: [https://shop.example]',
    ...dataAndVapidYaml,
    'logging:',
    '  format: json',
    '  level: info',
    '',
  ].join('\n'));
  return file;
}

describe('webpushd HTTP', () => {
  let daemon;
  let vapid;
  before(async () => {
    const dir = tempDir();
    vapid = makeVapidKey(path.join(dir, 'data'));
    daemon = await startDaemon(writeConfig(dir));
  });
  after(async () => { if (daemon) await stopChild(daemon.child); });

  test('GET /healthz', async () => {
    const res = await fetch(`${daemon.base}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('server'), 'webpushd');
    const body = await res.json();
    assert.equal(body.status, 'ok');
    assert.equal(body.storage, 'ok');
  });

  test('GET /v1/vapid-public-key is the key in the data folder, with CORS for the shop only', async () => {
    const res = await fetch(`${daemon.base}/v1/vapid-public-key`, { headers: { origin: 'https://shop.example' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { publicKey: vapid.publicKey });
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://shop.example');
    const other = await fetch(`${daemon.base}/v1/vapid-public-key`, { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
  });

  test('the SDK files are served with ETag, and revalidate to 304', async () => {
    const sw = await fetch(`${daemon.base}/sdk/sw.js`);
    assert.equal(sw.status, 200);
    assert.equal(sw.headers.get('cache-control'), 'no-cache');
    assert.match(sw.headers.get('content-type'), /^text\/javascript/);
    const etag = sw.headers.get('etag');
    assert.ok(etag);
    const again = await fetch(`${daemon.base}/sdk/sw.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(`${daemon.base}/sdk/webpushd.js`)).status, 200);
  });

  test('errors are JSON with code, message and field', async () => {
    const res = await fetch(`${daemon.base}/nope`);
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { code: 'not_found', message: 'no such endpoint', field: '' } });
    const wrong = await fetch(`${daemon.base}/healthz`, { method: 'POST' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET, HEAD');
  });

  test('SIGTERM drains: an idle keep-alive connection is closed and the daemon exits 0', async () => {
    const socket = net.connect(daemon.port, '127.0.0.1');
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.on('error', () => {});
    const { code } = await stopChild(daemon.child, 'SIGTERM');
    assert.equal(code, 0, daemon.child.log());
    await closed;
    assert.match(daemon.child.log(), /webpushd stopped/);
    daemon = null;
  });
});
