#!/usr/bin/env node
// Reference figure for `webpushctl bench encrypt`: the Node.js `web-push`
// library preparing one aes128gcm message with VAPID authorization per loop
// iteration, on one thread, for N seconds (argv[2], default 5).
//
// web-push has no token cache, so each call also signs a fresh JWT; webpushd
// signs once per audience per half-lifetime. The comparison is of what each
// implementation does per delivered message.
'use strict';

const path = require('path');
const crypto = require('crypto');
const webpush = require(path.join(__dirname, '..', '..', 'tests', 'peers', 'node_modules', 'web-push'));

const seconds = Number(process.argv[2] || 5);
const payloadBytes = Number(process.argv[3] || 200);
if (!(seconds > 0) || !(payloadBytes >= 0)) {
  console.error('usage: encrypt.js [seconds=5] [payload-bytes=200]');
  process.exit(1);
}

// A subscriber as a browser makes one: a P-256 key pair and a 16-byte auth secret.
const ua = crypto.createECDH('prime256v1');
ua.generateKeys();
const subscription = {
  endpoint: 'https://fcm.googleapis.com/fcm/send/bench-subscription',
  keys: { p256dh: ua.getPublicKey('base64url'), auth: crypto.randomBytes(16).toString('base64url') },
};
const vapid = webpush.generateVAPIDKeys();
const options = {
  vapidDetails: { subject: 'mailto:bench@webpushd.invalid', publicKey: vapid.publicKey, privateKey: vapid.privateKey },
};
const payload = Buffer.alloc(payloadBytes, 'x');

// Warm-up, so JIT compilation is not timed.
const warmUntil = process.hrtime.bigint() + 200_000_000n;
while (process.hrtime.bigint() < warmUntil) webpush.generateRequestDetails(subscription, payload, options);

const budget = BigInt(Math.round(seconds * 1e9));
const start = process.hrtime.bigint();
let messages = 0;
let bodyBytes = 0;
let elapsed = 0n;
do {
  const details = webpush.generateRequestDetails(subscription, payload, options);
  bodyBytes += details.body.length;
  messages += 1;
  elapsed = process.hrtime.bigint() - start;
} while (elapsed < budget);

const perSecond = messages / (Number(elapsed) / 1e9);
console.log(JSON.stringify({
  impl: 'web-push (Node.js)',
  messages_per_second: Math.round(perSecond * 10) / 10,
  payload_bytes: payloadBytes,
  seconds,
  node: process.version,
  body_bytes: bodyBytes / messages,
}));
