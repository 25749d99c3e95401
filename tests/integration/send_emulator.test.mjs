// webpushctl send against the independent push-service emulator
// (web-push-testing): it verifies the VAPID JWT and decrypts the aes128gcm
// body with its own implementation, so a pass means real interoperability.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { makeVapidKey, run, startEmulator, tempDir, webpushctl, writeJson } from './harness.mjs';

describe('webpushctl send → web-push-testing emulator', () => {
  let emulator;
  let dir;
  let vapid;

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir();
    vapid = makeVapidKey(dir);
  });
  after(async () => { await emulator?.stop(); });

  const send = (subscriptionFile, payload, extra = []) =>
    run(webpushctl, ['send', '--key', vapid.keyFile, '--subject', 'mailto:ops@shop.example',
      '--subscription', subscriptionFile, '--payload', payload, '--allow-host', '127.0.0.1', '--insecure', ...extra]);

  test('payloads in any script arrive intact, byte for byte', async () => {
    const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
    const file = writeJson(dir, 'sub-text.json', subscription);
    const payloads = [
      'Your cart misses you',
      'Zażółć gęślą jaźń — koszyk czeka',
      'Привіт! Ваш кошик чекає на вас',
      'Back in stock 🎉🛒 ✨',
      JSON.stringify({ title: 'Price drop', body: 'Now 19,99 zł', data: { url: 'https://shop.example/p/1' } }),
    ];
    for (const p of payloads) {
      const r = send(file, p, ['--ttl', '3600', '--urgency', 'normal', '--topic', 'cart-42']);
      assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
      assert.match(r.stdout, /201/);
    }
    assert.deepEqual(await emulator.messages(clientHash), payloads);
  });

  test('the largest payload that fits one 4096-byte record is delivered; one byte more is refused locally', async () => {
    const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
    const file = writeJson(dir, 'sub-large.json', subscription);
    const largest = 'x'.repeat(3993);
    assert.equal(send(file, largest).status, 0);
    assert.deepEqual(await emulator.messages(clientHash), [largest]);
    const tooLarge = send(file, largest + 'x');
    assert.equal(tooLarge.status, 1, 'payload_too_large is an input error');
    assert.match(tooLarge.stderr, /too large|payload/i);
  });

  test('a subscription the service expired answers 410 and exits 3 (gone)', async () => {
    const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
    const file = writeJson(dir, 'sub-expired.json', subscription);
    await emulator.expire(clientHash);
    const r = send(file, 'hello');
    assert.equal(r.status, 3, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /410/);
  });

  test('a message signed with a key other than the subscription\'s is rejected permanently (exit 2)', async () => {
    const { subscription } = await emulator.subscribe(vapid.publicKey);
    const file = writeJson(dir, 'sub-wrong-key.json', subscription);
    const other = makeVapidKey(tempDir());
    const r = run(webpushctl, ['send', '--key', other.keyFile, '--subject', 'mailto:ops@shop.example',
      '--subscription', file, '--payload', 'hi', '--allow-host', '127.0.0.1', '--insecure']);
    assert.equal(r.status, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /400/);
  });

  test('malformed subscriptions are input errors (exit 1) and nothing is sent', async () => {
    const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
    const bad = [
      { ...subscription, keys: { ...subscription.keys, p256dh: 'AAAA' } },
      { ...subscription, keys: { ...subscription.keys, auth: 'c2hvcnQ' } },
      { endpoint: subscription.endpoint },
      { ...subscription, endpoint: 'ftp://127.0.0.1/x' },
    ];
    for (const [i, s] of bad.entries()) {
      const r = send(writeJson(dir, `bad-${i}.json`, s), 'hi');
      assert.equal(r.status, 1, `case ${i}: ${r.stdout}${r.stderr}`);
    }
    assert.deepEqual(await emulator.messages(clientHash), []);
  });

  test('without --insecure a loopback http endpoint is refused before any request, even for an allowed host', async () => {
    const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
    const file = writeJson(dir, 'sub-secure.json', subscription);
    const r = run(webpushctl, ['send', '--key', vapid.keyFile, '--subject', 'mailto:ops@shop.example',
      '--subscription', file, '--payload', 'hi', '--allow-host', '127.0.0.1']);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.deepEqual(await emulator.messages(clientHash), []);
  });
});
