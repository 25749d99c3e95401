#!/usr/bin/env node
// Reference figure for `webpushctl bench deliver`: the Node.js `web-push`
// library sending 200-byte aes128gcm messages with VAPID to the same local
// sink, at several concurrency levels; the best level is the reference.
//
//   deliver.js --endpoint URL [--messages N] [--subscribers K]
//              [--concurrency 16,64,256] [--ca-file F] [--payload-bytes 200]
//
// Prints one JSON line per level ({"level":…}) and a last line with the best.
// Each level sends N messages over fresh keep-alive connections (N in flight
// at most `concurrency`), so connection set-up is counted as it is for
// webpushd. Subscriber i gets URL/i, as in the webpushd bench.
//
// Two things web-push cannot do on its own, bridged here without touching
// what it does per message (encrypt, sign a fresh JWT, POST):
// - it always calls https.request, so for a plain-http sink it gets an
//   https.Agent whose connections are plain TCP sockets;
// - it has no CA option, so for a self-signed sink the agent carries the
//   sink's certificate as its only trusted CA (verification stays on).
// It speaks HTTP/1.1 only (Node's https), so it has no HTTP/2 figure.
'use strict';

const fs = require('fs');
const net = require('net');
const https = require('https');
const path = require('path');
const crypto = require('crypto');
const webpush = require(path.join(__dirname, '..', '..', 'tests', 'peers', 'node_modules', 'web-push'));

function usage(why) {
  console.error(`deliver.js: ${why}\nusage: deliver.js --endpoint URL [--messages N] [--subscribers K] ` +
                '[--concurrency 16,64,256] [--ca-file F] [--payload-bytes 200] [--timeout S]');
  process.exit(1);
}

function parseArgs(argv) {
  const o = { endpoint: '', messages: 5000, subscribers: 100, concurrency: [16, 64, 256], caFile: '', payloadBytes: 200,
              timeout: 120 };
  for (let i = 0; i < argv.length; i += 1) {
    const value = () => {
      if (i + 1 >= argv.length) usage(`missing value for ${argv[i]}`);
      i += 1;
      return argv[i];
    };
    switch (argv[i]) {
      case '--endpoint': o.endpoint = value(); break;
      case '--messages': o.messages = Number(value()); break;
      case '--subscribers': o.subscribers = Number(value()); break;
      case '--concurrency': o.concurrency = value().split(',').map(Number); break;
      case '--ca-file': o.caFile = value(); break;
      case '--payload-bytes': o.payloadBytes = Number(value()); break;
      case '--timeout': o.timeout = Number(value()); break;
      default: usage(`unknown option ${argv[i]}`);
    }
  }
  if (!o.endpoint) usage('--endpoint is required');
  const url = new URL(o.endpoint);
  // A load generator only ever aims at this machine.
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) usage('--endpoint must be a loopback URL');
  if (!(o.messages > 0) || !(o.subscribers > 0) || o.concurrency.some((c) => !(c > 0))) usage('bad number');
  return o;
}

// An https.Agent (web-push accepts nothing else) that opens plain TCP
// connections, for http:// sinks. Pooling and keep-alive are the agent's own.
class PlainAgent extends https.Agent {
  createConnection(options, callback) {
    const socket = net.createConnection({ host: options.host, port: options.port });
    socket.setNoDelay(true);
    if (callback) socket.once('connect', () => callback(null, socket));
    return socket;
  }
}

function makeAgent(o, concurrency) {
  const common = { keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency };
  if (new URL(o.endpoint).protocol === 'http:') return new PlainAgent(common);
  return new https.Agent({ ...common, ca: o.caFile ? fs.readFileSync(o.caFile) : undefined });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.round(p * (sorted.length - 1)))];
}

async function runLevel(o, subscriptions, options, payload, concurrency) {
  const agent = makeAgent(o, concurrency);
  const latencies = [];
  let next = 0;
  let sent = 0;
  let failed = 0;
  let firstError = '';
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(o.timeout * 1e9));
  async function lane() {
    while (next < o.messages && process.hrtime.bigint() < deadline) {
      const i = next;
      next += 1;
      const t0 = process.hrtime.bigint();
      try {
        await webpush.sendNotification(subscriptions[i % subscriptions.length], payload, { ...options, agent });
        sent += 1;
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (e) {
        failed += 1;
        if (!firstError) firstError = e.statusCode ? `HTTP ${e.statusCode}` : String(e.message || e);
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    level: concurrency,
    messages: o.messages,
    sent,
    failed,
    first_error: firstError || undefined,
    seconds: Math.round(seconds * 1000) / 1000,
    messages_per_second: Math.round((sent / seconds) * 10) / 10,
    latency_p50_ms: Math.round(percentile(latencies, 0.5) * 100) / 100,
    latency_p99_ms: Math.round(percentile(latencies, 0.99) * 100) / 100,
  };
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const base = o.endpoint.endsWith('/') ? o.endpoint : `${o.endpoint}/`;
  // Subscribers as browsers make them: P-256 key pairs and 16-byte auth secrets.
  const subscriptions = Array.from({ length: o.subscribers }, (_, i) => {
    const ua = crypto.createECDH('prime256v1');
    ua.generateKeys();
    return { endpoint: `${base}${i}`,
             keys: { p256dh: ua.getPublicKey('base64url'), auth: crypto.randomBytes(16).toString('base64url') } };
  });
  const vapid = webpush.generateVAPIDKeys();
  const options = {
    vapidDetails: { subject: 'mailto:bench@webpushd.invalid', publicKey: vapid.publicKey, privateKey: vapid.privateKey },
    TTL: 3600,
  };
  const payload = crypto.randomBytes(o.payloadBytes);

  // Warm-up (JIT, first handshake), not timed.
  await runLevel({ ...o, messages: Math.min(200, o.messages) }, subscriptions, options, payload, 8);

  const results = [];
  for (const c of o.concurrency) {
    const r = await runLevel(o, subscriptions, options, payload, c);
    console.log(JSON.stringify(r));
    results.push(r);
  }
  const clean = results.filter((r) => r.failed === 0);
  const best = (clean.length ? clean : results).reduce((a, b) => (b.messages_per_second > a.messages_per_second ? b : a));
  console.log(JSON.stringify({
    impl: 'web-push (Node.js)',
    web_push: require(path.join(__dirname, '..', '..', 'tests', 'peers', 'node_modules', 'web-push', 'package.json')).version,
    node: process.version,
    endpoint: o.endpoint,
    protocol: new URL(o.endpoint).protocol === 'http:' ? 'http/1.1' : 'https/1.1',
    payload_bytes: o.payloadBytes,
    best_concurrency: best.level,
    messages_per_second: best.messages_per_second,
    latency_p50_ms: best.latency_p50_ms,
    latency_p99_ms: best.latency_p99_ms,
    all_sent: best.failed === 0,
    levels: results,
  }));
}

main().catch((e) => {
  console.error(`deliver.js: ${e.stack || e}`);
  process.exit(1);
});
