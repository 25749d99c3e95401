// Pacing in the running daemon, delivered to the independent push-service
// emulator: a cap suppresses the second campaign a shopper would get in a
// day; an SDK unsubscribe and a 410 from the push service are each
// attributed to the push that came before them; after a reload (SIGHUP)
// quiet hours around the current time defer one campaign to their end and
// drop another. Quiet hours are set around "now" in UTC, so the test holds
// at any time of day.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { daemonClient, daemonConfigYaml, startDaemon, startEmulator, stopChild, tempDir, waitFor } from './harness.mjs';

const API_KEY = `backend-key-${randomBytes(24).toString('base64url')}`;
const SHOP = 'https://shop.example';

const hhmm = (minutes) => {
  const m = ((minutes % 1440) + 1440) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
};

function configText(pacing) {
  return daemonConfigYaml({ apiKey: API_KEY, origin: SHOP, categories: { promotions: 'Sales' }, defaultTimezone: 'UTC', extra: pacing });
}

describe('pacing in the daemon', () => {
  let emulator;
  let daemon;
  let dir;
  let configFile;

  const { call, backend, sql } = daemonClient(() => daemon, API_KEY, () => dir);

  async function shopper() {
    const key = (await call('GET', '/v1/vapid-public-key')).body.publicKey;
    const { subscription, clientHash } = await emulator.subscribe(key);
    const r = await call('POST', '/v1/subscriptions', {
      subscription, consent: { categories: ['promotions'], text_version: 'v1' }, timezone: 'UTC', locale: 'en',
    }, { origin: SHOP });
    assert.equal(r.status, 201, r.text);
    return { clientHash, id: r.body.id, token: r.body.token };
  }

  /** A campaign to every promotions subscriber; resolves once its fan-out is done. */
  async function campaign(name, extra = {}) {
    const created = await backend('POST', '/v1/campaigns', {
      name, category: 'promotions', message: { title: name, body: 'Everything -20%', url: 'https://shop.example/sale' }, ...extra,
    });
    assert.equal(created.status, 202, created.text);
    await waitFor(async () => (await backend('GET', `/v1/campaigns/${created.body.id}`)).body.state === 'completed',
      { timeoutMs: 15000, what: `campaign ${name} to fan out` });
    return created.body.id;
  }

  const stateOf = (campaignId, subscriptionPublicId) => sql(
    `SELECT o.state || '|' || coalesce(o.last_reason, '') FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
     WHERE o.source = 'campaign:${campaignId}' AND s.public_id = '${subscriptionPublicId}'`);

  async function reload(pacing) {
    writeFileSync(configFile, configText(pacing));
    const before = daemon.log().length;
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.log().slice(before).includes('is valid'), { what: 'the reload' });
  }

  before(async () => {
    emulator = await startEmulator();
    dir = tempDir('webpushd-pacing-');
    configFile = path.join(dir, 'webpushd.yaml');
    writeFileSync(configFile, configText(['pacing:', '  caps: ["1 per 1d"]', '  unsubscribe_window: 1h']));
    daemon = await startDaemon(configFile);
  });
  after(async () => {
    if (daemon) await stopChild(daemon.child);
    await emulator?.stop();
  });

  test('the daily cap lets one campaign through and suppresses the next; an unsubscribe counts against the first', async () => {
    assert.match(daemon.log(), /pacing: every device at most 1 per 1d/);
    const ann = await shopper();
    const first = await campaign('Winter sale');
    await waitFor(async () => (await emulator.messages(ann.clientHash)).length === 1, { what: 'the first campaign' });
    const second = await campaign('Flash sale');
    await waitFor(() => stateOf(second, ann.id).startsWith('suppressed'), { what: 'the second to be held back' });
    // A campaign may wait 12 h by default; the next free slot is a day away.
    assert.match(stateOf(second, ann.id), /^suppressed\|global_cap: 1 per 1d; the next allowed moment, .*, is past its useful life$/);
    assert.equal((await emulator.messages(ann.clientHash)).length, 1, 'one push a day, whatever the campaigns');
    const view = await backend('GET', `/v1/campaigns/${second}`);
    assert.equal(view.body.messages.suppressed, 1, view.text);

    const gone = await call('DELETE', `/v1/subscriptions/${ann.id}`, undefined, { authorization: `Subscriber ${ann.token}`, origin: SHOP });
    assert.equal(gone.status, 204, gone.text);
    assert.equal(sql('SELECT kind || ' + "' '" + ' || source FROM unsubscribe_attributions'), `unsubscribe campaign:${first}`);
    assert.equal(sql(`SELECT sum(n) FROM pacing_counters WHERE source = 'campaign:${first}' AND metric = 'unsubscribed:unsubscribe'`), '1');
  });

  test('a 410 reveals an unsubscribe, attributed to the last push received', async () => {
    const ben = await shopper();
    const received = await campaign('Weekend sale');
    await waitFor(async () => (await emulator.messages(ben.clientHash)).length === 1, { what: 'Ben\'s first push' });
    await emulator.expire(ben.clientHash);
    await reload(['pacing:', '  caps: ["5 per 1d"]', '  unsubscribe_window: 1h']);  // room for a second attempt
    await campaign('Last chance');
    await waitFor(() => sql(`SELECT state FROM subscriptions WHERE public_id = '${ben.id}'`) === 'gone', { what: 'the 410' });
    assert.equal(sql(`SELECT a.kind || ' ' || a.source FROM unsubscribe_attributions a JOIN subscriptions s ON s.id = a.subscription_id WHERE s.public_id = '${ben.id}'`),
      `gone campaign:${received}`);
  });

  test('after a reload, quiet hours around now defer a campaign to their end, or drop it', async () => {
    const now = new Date();
    const minute = now.getUTCHours() * 60 + now.getUTCMinutes();
    await reload(['pacing:', '  caps: ["5 per 1d"]', '  quiet_hours:', `    from: "${hhmm(minute - 60)}"`, `    to: "${hhmm(minute + 120)}"`]);
    const cleo = await shopper();
    const patient = await campaign('Morning offer', { defer_max: '6h' });
    const impatient = await campaign('Now or never', { on_cap: 'drop' });
    await waitFor(() => stateOf(impatient, cleo.id).startsWith('suppressed'), { what: 'the dropped one' });
    assert.match(stateOf(impatient, cleo.id), /^suppressed\|quiet_hours: \d\d:\d\d–\d\d:\d\d UTC$/);
    await waitFor(() => stateOf(patient, cleo.id).includes('deferred to'), { what: 'the deferred one' });
    const [state, reason] = stateOf(patient, cleo.id).split('|');
    assert.equal(state, 'queued');
    const due = Number(sql(`SELECT o.next_attempt_at FROM outbox o JOIN subscriptions s ON s.id = o.subscription_id
                             WHERE o.source = 'campaign:${patient}' AND s.public_id = '${cleo.id}'`));
    assert.ok(due > Date.now() + 100 * 60 * 1000 && due <= Date.now() + 121 * 60 * 1000, `${reason}: ${due} vs ${Date.now()}`);
    assert.equal((await emulator.messages(cleo.clientHash)).length, 0, 'nothing in quiet hours');
  });
});
