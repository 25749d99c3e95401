#!/usr/bin/env node
// Gathers what bench/run measured (JSON files in WORK) into
// RESULTS/latest.json and RESULTS/latest.md: each figure beside its reference
// from the same run, the ratio, the target and whether it was met.
//
//   report.js WORK RESULTS CONTEXT_JSON
'use strict';

const fs = require('fs');
const path = require('path');

const [work, results, contextText] = process.argv.slice(2);
if (!work || !results) {
  console.error('usage: report.js WORK RESULTS [CONTEXT_JSON]');
  process.exit(1);
}
const context = contextText ? JSON.parse(contextText) : {};

function readJson(name) {
  try {
    return JSON.parse(fs.readFileSync(path.join(work, name), 'utf8').trim().split('\n').pop());
  } catch (e) {
    return { error: `${name}: ${e.message}` };
  }
}
function readJsonLines(name) {
  try {
    return fs.readFileSync(path.join(work, name), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch (e) {
    return [{ error: `${name}: ${e.message}` }];
  }
}
// Throughput on a shared machine is only ever pushed down by others' load, so
// the best clean run is the one that describes the code.
function best(runs) {
  const clean = runs.filter((r) => !r.error && r.all_sent);
  if (!clean.length) return runs[runs.length - 1] || { error: 'no run' };
  return clean.reduce((a, b) => (b.messages_per_second > a.messages_per_second ? b : a));
}

const deliverTarget = 20000;
const ratioTarget = 10;
const ceilings = readJson('ceilings.json');
const encrypt = { ours: readJson('encrypt-ours.json'), reference: readJson('encrypt-ref.json') };
const delivery = {};
for (const [name, refName] of [['http', 'http'], ['https', 'https'], ['h2', 'https']]) {
  const runs = readJsonLines(`deliver-${name}.jsonl`);
  delivery[name] = { runs, ours: best(runs), reference: readJson(`ref-${refName}.json`) };
}
const h2Verify = readJson('h2-verify.json');
const campaign = readJson('campaign.json');
const ingest = readJson('ingest.json');
const scheduler = readJson('scheduler.json');
const only = new Set((context.only || 'encrypt,deliver,campaign,ingest,scheduler').split(','));

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const ratio = (a, b) => (num(a) !== null && num(b) ? a / b : null);
const fmt = (v, d = 0) => (num(v) === null ? 'n/a' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

const rows = [];
if (only.has('encrypt')) {
  rows.push({
    figure: 'encrypt + VAPID header, 1 thread (messages/s)',
    ours: num(encrypt.ours.messages_per_second),
    reference: num(encrypt.reference.messages_per_second),
    reference_note: 'Node.js web-push',
    target: null,
  });
}
const labels = { http: 'HTTP/1.1 plain', https: 'HTTPS/1.1 (TLS)', h2: 'HTTP/2 + TLS' };
if (only.has('deliver')) {
  for (const name of ['http', 'https', 'h2']) {
    const d = delivery[name];
    rows.push({
      figure: `delivery ${labels[name]}, all cores (messages/s)`,
      ours: num(d.ours.messages_per_second),
      reference: num(d.reference.messages_per_second),
      reference_note: name === 'h2' ? 'web-push over HTTPS/1.1 (it has no HTTP/2)' : `web-push, concurrency ${d.reference.best_concurrency}`,
      target: { min: deliverTarget, min_ratio: ratioTarget },
    });
  }
}
// Rows of the daemon figures: `check(ours)` says whether the target is met.
const add = (figure, ours, reference, referenceNote, targetText, check, digits = 0) => {
  rows.push({ figure, ours: num(ours), reference: num(reference), reference_note: referenceNote, target_text: targetText,
    met: targetText === '—' ? null : (num(ours) === null ? false : check(ours)), digits });
};
const rawDelivery = num(delivery.http.ours.messages_per_second);
if (only.has('campaign')) {
  const n = campaign.subscribers;
  add(`campaign to ${fmt(n)} subscribers: POST → last 201 at the sink (s)`, campaign.wall_seconds, null, '—',
    n >= 1e6 ? '≤ 60 s' : `≤ ${fmt(60 * n / 1e6, 0)} s (60 s per 1M)`, (v) => v <= 60 * n / 1e6, 1);
  add('campaign throughput (messages/s)', campaign.messages_per_second, rawDelivery ?? ceilings.push_sink_http,
    rawDelivery ? 'raw delivery over HTTP/1.1 (figure 2, same run)' : 'push-sink ceiling (figure 2 not run)', '—', null);
  add('campaign: daemon peak RSS, VmHWM (MiB)', campaign.peak_rss_mib, null, '—', '≤ 300 MiB', (v) => v <= 300);
}
if (only.has('ingest')) {
  const h = ingest.healthz || {};
  add('ingestion, single events, keep-alive (events/s)', ingest.single?.events_per_second, h.requests_per_second,
    'wrk against GET /healthz (HTTP ceiling)', '≥ 30,000/s', (v) => v >= 30000);
  add('ingestion, single events: p99 latency (ms)', ingest.single?.p99_ms, h.p99_ms, `p50 ${fmt(ingest.single?.p50_ms, 1)}; /healthz p99`,
    'p99 ≤ 20 ms', (v) => v <= 20, 1);
  add('ingestion, batches of 100 (events/s)', ingest.batch?.events_per_second, h.requests_per_second,
    'wrk against GET /healthz (requests/s)', '≥ 200,000/s', (v) => v >= 200000);
  add('ingestion, batches of 100: p99 latency (ms)', ingest.batch?.p99_ms, h.p99_ms, `p50 ${fmt(ingest.batch?.p50_ms, 1)}; /healthz p99`,
    'p99 ≤ 20 ms', (v) => v <= 20, 1);
  add('ingestion without scenarios, single / batches (events/s)', ingest.no_scenarios?.single?.events_per_second,
    ingest.no_scenarios?.batch?.events_per_second, 'batches of 100, no scenarios', '—', null);
}
if (only.has('scheduler')) {
  add(`scheduler: RSS with ${fmt(scheduler.journeys_pending)} journeys pending (MiB)`, scheduler.rss_pending_mib, null, '—',
    '≤ 300 MiB', (v) => v <= 300);
  add('scheduler: restart after kill -9, exec → /healthz 200 (s)', scheduler.restart_healthz_seconds, null, '—', '≤ 5 s', (v) => v <= 5, 2);
  add('scheduler: restart, exec → first due reminder in the outbox (s)', scheduler.restart_first_reminder_seconds, null, '—',
    '≤ 5 s', (v) => v <= 5, 2);
  add(`scheduler: reminders due under wrk load run within 1 s (%, ${fmt(scheduler.slice)} due)`,
    num(scheduler.share_within_1s) === null ? null : scheduler.share_within_1s * 100, null,
    `lateness p50 ${fmt(scheduler.lateness_seconds?.p50, 2)} s, p99 ${fmt(scheduler.lateness_seconds?.p99, 2)} s`,
    '≥ 99 %', (v) => v >= 99, 1);
}
for (const row of rows) {
  row.ratio = ratio(row.ours, row.reference);
  if (row.target) row.met = row.ours !== null && row.ratio !== null && row.ours >= row.target.min && row.ratio >= row.target.min_ratio;
}

const out = {
  date: new Date().toISOString(),
  context,
  table: rows,
  encrypt,
  delivery,
  sink_ceilings_requests_per_second: ceilings,
  h2_verification: h2Verify,
  campaign,
  ingest,
  scheduler,
};
fs.mkdirSync(results, { recursive: true });
fs.writeFileSync(path.join(results, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);

const md = [];
md.push(`# Benchmark results (${out.date.slice(0, 19)}Z, commit ${context.commit || '?'}${context.quick ? ', --quick' : ''})`);
md.push('');
md.push(`Machine: ${context.cores || '?'} cores (${context.cpu || '?'}), load average ${context.loadavg_start || '?'} before, ` +
        `${context.loadavg_end || '?'} after. Sinks and senders share these cores.`);
md.push('');
md.push('| figure | ours | reference | ratio | target | met? |');
md.push('|---|---:|---:|---:|---|---|');
for (const r of rows) {
  const target = r.target ? `≥ ${fmt(r.target.min)}/s and ≥ ${r.target.min_ratio}×` : (r.target_text || '—');
  const met = r.met === null || r.met === undefined ? '—' : (r.met ? 'yes' : '**no**');
  const ref = r.reference_note ? `${fmt(r.reference, r.digits ?? 0)} (${r.reference_note})` : fmt(r.reference, r.digits ?? 0);
  md.push(`| ${r.figure} | ${fmt(r.ours, r.digits ?? 0)} | ${r.reference === null && r.reference_note === '—' ? '—' : ref} | ${r.ratio === null ? '—' : `${fmt(r.ratio, 2)}×`} | ${target} | ${met} |`);
}
if (only.has('deliver')) {
  md.push('');
  md.push('| delivery detail | HTTP/1.1 | HTTPS/1.1 | HTTP/2 + TLS |');
  md.push('|---|---:|---:|---:|');
  const col = (f) => ['http', 'https', 'h2'].map((n) => f(delivery[n])).join(' | ');
  md.push(`| ours: latency p50 / p99, claim → recorded (ms) | ${col((d) => `${fmt(d.ours.latency_p50_ms)} / ${fmt(d.ours.latency_p99_ms)}`)} |`);
  md.push(`| reference: latency p50 / p99, request → response (ms) | ${col((d) => `${fmt(d.reference.latency_p50_ms, 1)} / ${fmt(d.reference.latency_p99_ms, 1)}`)} |`);
  md.push(`| ours: all runs (messages/s) | ${col((d) => d.runs.map((r) => fmt(r.messages_per_second)).join(', '))} |`);
  md.push(`| ours: CPU cores busy / peak RSS (MiB) | ${col((d) => `${fmt(d.ours.cpu_cores_busy, 2)} / ${fmt(d.ours.peak_rss_mib)}`)} |`);
  md.push(`| ours: durable enqueue (messages/s, batches of ${delivery.http.ours.enqueue_batch || '?'}) | ${col((d) => fmt(d.ours.enqueue_per_second))} |`);
  md.push(`| ours: final states all \`sent\` | ${col((d) => (d.ours.all_sent ? 'yes' : `NO ${JSON.stringify(d.ours.states || d.ours.error)}`))} |`);
  md.push(`| reference: messages/s by concurrency | ${col((d) => (d.reference.levels || []).map((l) => `${l.level}: ${fmt(l.messages_per_second)}`).join(', ') || 'n/a')} |`);
  md.push(`| sink ceiling, wrk / h2load (requests/s) | ${fmt(ceilings.push_sink_http)} | ${fmt(ceilings.push_sink_https)} | ${fmt(ceilings.nghttpd_h2)} |`);
  md.push('');
  md.push(`HTTP/2 check (verbose nghttpd, 50 messages): ${h2Verify.connections_negotiating_h2} connection(s) negotiated h2 by ALPN, ` +
          `${h2Verify.request_header_frames} requests arrived as HTTP/2 HEADERS frames.`);
  md.push('');
  md.push(`Notes: ours = \`webpushctl bench deliver\`, ${context.deliver_messages} messages of 200 bytes to ${context.subscribers} subscribers ` +
          `through the SQLite outbox, dispatcher, encryption workers and curl sender; best of ${context.repeats} run(s). ` +
          `Its latency runs from the outbox claim to the recorded outcome of a backlog drained at full speed, so it is mostly ` +
          `queueing (in flight ÷ rate). Reference = Node.js web-push ${delivery.http.reference.web_push || ''} (${delivery.http.reference.node || ''}), ` +
          `${context.ref_messages} messages per concurrency level, best level; one process (Node runs JavaScript on one core). ` +
          'Sink ceilings: wrk with 1 thread and 32 connections, h2load with 1 connection and 100 streams, 290-byte bodies.');
}

const ms = (v) => fmt(v, 1);
if (only.has('campaign')) {
  md.push('');
  md.push(campaign.error ? `Campaign: failed — ${campaign.error}` :
    `Campaign: ${fmt(campaign.subscribers)} subscribers seeded by \`webpushctl bench seed\` in ${fmt(campaign.seed_seconds, 1)} s ` +
    `(${fmt(campaign.seed_per_second)}/s); the daemon (Release, one push-sink thread on the same cores) fanned out in ` +
    `${fmt(campaign.fanout_seconds, 1)} s, sent the first message ${fmt(campaign.first_send_after_seconds, 2)} s after the POST and ` +
    `the last 201 was recorded ${fmt(campaign.wall_seconds, 1)} s after it; ${fmt(campaign.sent)} sent (all sent: ${campaign.all_sent ? 'yes' : 'NO'}); ` +
    `daemon CPU ${fmt(campaign.cpu_cores_busy, 2)} cores busy, RSS idle ${fmt(campaign.rss_idle_mib)} MiB, peak ${fmt(campaign.peak_rss_mib)} MiB. ` +
    `Sink ceiling (wrk): ${fmt(ceilings.push_sink_http)} requests/s.`);
}
if (only.has('ingest')) {
  const du = ingest.durability || {};
  md.push('');
  md.push(ingest.error ? `Ingestion: failed — ${ingest.error}` :
    `Ingestion: wrk, 1 thread, ${ingest.connections} keep-alive connections, ${ingest.seconds} s per run; every event a ` +
    '`cart_updated` with a unique id, customer and cart, so each starts an abandoned-cart journey in the same transaction. ' +
    `/healthz: ${fmt(ingest.healthz?.requests_per_second)}/s, p50 ${ms(ingest.healthz?.p50_ms)} ms, p99 ${ms(ingest.healthz?.p99_ms)} ms. ` +
    `Single: p50 ${ms(ingest.single?.p50_ms)} ms, p99 ${ms(ingest.single?.p99_ms)} ms, daemon ${fmt(ingest.single?.cpu_cores_busy, 2)} cores busy. ` +
    `Batches: ${fmt(ingest.batch?.requests_per_second, 1)} requests/s, p50 ${ms(ingest.batch?.p50_ms)} ms, p99 ${ms(ingest.batch?.p99_ms)} ms, ` +
    `${fmt(ingest.batch?.cpu_cores_busy, 2)} cores busy. Without scenarios: single ${fmt(ingest.no_scenarios?.single?.events_per_second)}/s ` +
    `(p99 ${ms(ingest.no_scenarios?.single?.p99_ms)} ms), batches ${fmt(ingest.no_scenarios?.batch?.events_per_second)}/s ` +
    `(p99 ${ms(ingest.no_scenarios?.batch?.p99_ms)} ms). ` +
    `**Durability** (rows in \`events\` against the 202s wrk saw): single ${fmt(du.single?.rows_added)} rows for ${fmt(du.single?.acked_events)} acked ` +
    `(+${fmt(du.single?.in_flight_at_stop)} in flight when wrk stopped), batches ${fmt(du.batch?.rows_added)} rows for ${fmt(du.batch?.acked_events)} acked ` +
    `(+${fmt(du.batch?.in_flight_at_stop)}): ${du.match ? 'every 202 is a stored row' : 'MISMATCH'}; ` +
    `non-2xx answers: ${fmt((ingest.single?.other ?? 0) + (ingest.batch?.other ?? 0))}.`);
}
if (only.has('scheduler')) {
  const l = scheduler.lateness_seconds || {};
  md.push('');
  md.push(scheduler.error ? `Scheduler: failed — ${scheduler.error}` :
    `Scheduler: ${fmt(scheduler.journeys_pending)} active journeys (started by the ingested events, due in an hour); RSS ` +
    `${fmt(scheduler.rss_pending_mib)} MiB with them pending (VmHWM ${fmt(scheduler.hwm_before_restart_mib)} MiB after the ingestion). ` +
    `kill -9, then ${fmt(scheduler.slice)} of them made due one after another over ${scheduler.window_seconds} s (and 100 overdue), ` +
    `belonging to seeded subscribers: restart exec → /healthz ${fmt(scheduler.restart_healthz_seconds, 2)} s, → first overdue reminder ` +
    `in the outbox ${fmt(scheduler.restart_first_reminder_seconds, 2)} s. While wrk posted batches (${fmt(scheduler.load?.events_per_second)} events/s), ` +
    `${fmt(scheduler.fired)} of ${fmt(scheduler.slice)} due steps ran (${JSON.stringify(scheduler.outcomes || {})}); lateness (journey_log.at − due) ` +
    `p50 ${fmt(l.p50, 3)} s, p99 ${fmt(l.p99, 3)} s, max ${fmt(l.max, 3)} s; ${fmt((scheduler.share_within_1s ?? 0) * 100, 1)} % within 1 s. ` +
    `RSS after ${fmt(scheduler.rss_after_mib)} MiB.`);
}
fs.writeFileSync(path.join(results, 'latest.md'), `${md.join('\n')}\n`);
