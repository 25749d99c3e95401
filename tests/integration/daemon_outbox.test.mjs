// The daemon's durable outbox: messages accepted into the outbox are
// delivered to the independent emulator, survive kill -9 (at-least-once),
// and SIGTERM drains cleanly.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dataAndVapidYaml, loopbackEndpointsYaml, makeVapidKey, run, startDaemon, startEmulator, stopChild, tempDir, waitFor, webpushctl, webpushd, writeJson } from './harness.mjs';

function writeConfig(dir) {
  const file = path.join(dir, 'webpushd.yaml');
  writeFileSync(file, [
    'server:',
    '  listen: 127.0.0.1:0',
    ...dataAndVapidYaml,
    'delivery:',
    '  poll_interval: 50ms',
    '  max_in_flight: 64',
    '  retry:',
    '    base_delay: 100ms',
    ...loopbackEndpointsYaml,  // the emulator speaks plain http on loopback
    'logging:',
    '  format: json',
    '  level: info',
    '',
  ].join('\n'));
  return file;
}

/** Outbox counts by state, from `webpushctl outbox stats`. */
function outboxStats(dataDir) {
  const r = run(webpushctl, ['outbox', 'stats', '--data-dir', dataDir]);
  assert.equal(r.status, 0, r.stderr);
  const counts = {};
  for (const m of r.stdout.matchAll(/([a-z_]+)\s*[:=]?\s+(\d+)/g)) counts[m[1]] = Number(m[2]);
  return counts;
}

function enqueue(dataDir, subscriptionFile, payload, count) {
  const r = run(webpushctl, ['outbox', 'enqueue', '--data-dir', dataDir, '--subscription', subscriptionFile,
    '--payload', payload, '--count', String(count), '--ttl', '3600', '--test-endpoint-host', '127.0.0.1']);
  assert.equal(r.status, 0, r.stderr);
}

describe('webpushd outbox delivery', () => {
  let emulator;
  before(async () => { emulator = await startEmulator(); });
  after(async () => { await emulator?.stop(); });

  async function setup(subscribers, perSubscriber) {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const vapid = makeVapidKey(dataDir);
    const subs = [];
    for (let i = 0; i < subscribers; ++i) {
      const { subscription, clientHash } = await emulator.subscribe(vapid.publicKey);
      const payload = `message for subscriber ${i} — zażółć 🛒`;
      enqueue(dataDir, writeJson(dir, `sub-${i}.json`, subscription), payload, perSubscriber);
      subs.push({ clientHash, payload });
    }
    return { dir, dataDir, config: writeConfig(dir), subs };
  }

  async function received(subs) {
    let total = 0;
    for (const s of subs) total += (await emulator.messages(s.clientHash)).length;
    return total;
  }

  test('kill -9 in the middle of a run loses nothing: after restart every message is delivered', async () => {
    const subscribers = 10;
    const perSubscriber = 150;
    const total = subscribers * perSubscriber;
    const { dataDir, config, subs } = await setup(subscribers, perSubscriber);
    assert.equal(outboxStats(dataDir).queued, total);

    const { child: first } = await startDaemon(config);
    // Let part of the run happen, then pull the plug.
    await waitFor(async () => (await received(subs)) >= total / 5, { what: 'first deliveries' });
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const mid = outboxStats(dataDir);
    const deliveredBeforeCrash = await received(subs);
    assert.ok(deliveredBeforeCrash < total, 'the crash happened before the run finished');

    const { child: second } = await startDaemon(config);
    await waitFor(() => outboxStats(dataDir).sent === total, { timeoutMs: 60000, what: 'all messages sent' });
    assert.equal((await stopChild(second)).code, 0, second.log());

    const end = outboxStats(dataDir);
    assert.equal(end.queued ?? 0, 0);
    assert.equal(end.sending ?? 0, 0);
    // At-least-once: each subscriber got all of its messages, each intact;
    // duplicates are at most what was in flight when the process died.
    let duplicates = 0;
    for (const s of subs) {
      const messages = await emulator.messages(s.clientHash);
      assert.ok(messages.length >= perSubscriber, `${messages.length} < ${perSubscriber}`);
      assert.ok(messages.every((m) => m === s.payload));
      duplicates += messages.length - perSubscriber;
    }
    assert.ok(duplicates <= (mid.sending ?? 0) + 64, `duplicates ${duplicates} exceed what was in flight`);
  });

  test('SIGTERM drains: exit 0, nothing left half-sent', async () => {
    const { dataDir, config, subs } = await setup(2, 200);
    const { child: daemon } = await startDaemon(config);
    await waitFor(async () => (await received(subs)) >= 20, { what: 'first deliveries' });
    const { code } = await stopChild(daemon, 'SIGTERM');
    assert.equal(code, 0, daemon.log());
    const stats = outboxStats(dataDir);
    assert.equal(stats.sending ?? 0, 0, 'no message is left claimed after a clean stop');
    assert.equal((stats.sent ?? 0) + (stats.queued ?? 0), 400);
  });

  test('a gone subscription (410) is marked gone, its queue cancelled, and never sent to again', async () => {
    const { dataDir, config, subs } = await setup(1, 3);
    await emulator.expire(subs[0].clientHash);
    const { child: daemon } = await startDaemon(config);
    // The first 410 marks the subscription gone; the two messages behind it
    // are finished as gone without another request.
    await waitFor(() => outboxStats(dataDir).gone === 3, { what: 'messages marked gone' });
    await stopChild(daemon);
    const stats = outboxStats(dataDir);
    assert.equal(stats.sent ?? 0, 0);
    assert.match(daemon.log(), /subscription gone/);
  });

  test('an invalid config stops the start with the file and line', () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, 'vapid:\n  subject: mailto:ops@shop.example\ndelivery:\n  retry:\n    max_attempts: 0\n');
    const r = run(webpushd, ['--config', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /bad\.yaml:5:19: delivery\.retry\.max_attempts/);
  });
});
