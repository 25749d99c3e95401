#!/usr/bin/env node
// The benchmarks that need the real daemon (bench/run starts this):
//
//   campaign   N seeded subscribers (`webpushctl bench seed`), POST /v1/campaigns,
//              wall time to the last 201 recorded, the daemon's peak RSS (VmHWM)
//   ingest     wrk with keep-alive against POST /v1/events (single events,
//              batches of 100, unique ids, the example scenarios loaded) and
//              GET /healthz (the HTTP layer's ceiling); the events table
//              counted against the 202s wrk saw
//   scheduler  J pending journeys (started by ingested cart events), RSS with
//              them pending, restart after kill -9 (exec → /healthz 200 → first
//              due reminder enqueued), lateness of reminders due while wrk loads
//              the daemon with events
//
//   daemon.mjs --work DIR --only campaign,ingest,scheduler --subscribers N --journeys J
//              --ingest-seconds S --slice K --window W
//
// Each figure is written to DIR/<figure>.json. Every child is bounded in time
// and killed when this process exits (the harness's children set).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  daemonConfigYaml, run, startDaemon, startSink, stopChild, waitFor, webpushctl, webpushd,
} from '../tests/integration/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const work = args.work;
if (!work) { console.error('usage: daemon.mjs --work DIR [--only …]'); process.exit(1); }
const only = new Set((args.only ?? 'campaign,ingest,scheduler').split(','));
const subscribers = Number(args.subscribers ?? 100000);
const journeys = Number(args.journeys ?? 100000);
const ingestSeconds = Number(args['ingest-seconds'] ?? 5);
const slice = Number(args.slice ?? 5000);
const windowSeconds = Number(args.window ?? 20);
const connections = Number(args.connections ?? 32);

const apiKey = 'bench-api-key-0123456789abcdefghijklmnop';
const categories = { cart_reminders: 'Carts', recommendations: 'Picks', product_alerts: 'Alerts', news: 'News', promotions: 'Sales' };
const log = (m) => process.stderr.write(`\x1b[1mbench:\x1b[0m ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** A daemon folder: config with the example scenarios and a fixed port (a restart keeps it). */
async function daemonFolder(name, { scenarios }) {
  const dir = path.join(work, name);
  mkdirSync(dir, { recursive: true });
  const extra = [];
  if (scenarios) {
    mkdirSync(path.join(dir, 'scenarios'), { recursive: true });
    const files = readdirSync(path.join(root, 'examples', 'scenarios')).filter((f) => f.endsWith('.yaml'));
    for (const f of files) copyFileSync(path.join(root, 'examples', 'scenarios', f), path.join(dir, 'scenarios', f));
    extra.push('automation:', '  scenario_files:', ...files.map((f) => `    - scenarios/${f}`),
      '  shop:', '    name: Bench Shop', '    url: https://shop.example');
  }
  // No shop-wide pacing: quiet hours and daily caps would hold the campaign
  // back, and that would measure the calendar, not the daemon.
  const port = await freePort();
  const yaml = daemonConfigYaml({ apiKey, origin: 'https://shop.example', categories, defaultTimezone: 'UTC', extra })
    .replace('listen: 127.0.0.1:0', `listen: 127.0.0.1:${port}`)
    .replace('format: json', 'format: json\n  level: warn');
  const config = path.join(dir, 'webpushd.yaml');
  writeFileSync(config, yaml);
  return { dir, config, port, db: path.join(dir, 'data', 'webpushd.db') };
}

/** The daemon logs "webpushd started" at info; warn keeps its stderr quiet under load,
 * so the bench waits for /healthz instead of the harness's log lines. */
async function startQuiet(folder, timeoutMs = 120000) {
  const t0 = Date.now();
  const child = spawn(webpushd, ['--config', folder.config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err = (err + d).slice(-20000); });
  child.stderrText = () => err;
  process.on('exit', () => { try { child.kill('SIGKILL'); } catch { /* gone */ } });
  const base = `http://127.0.0.1:${folder.port}`;
  await waitFor(async () => {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`webpushd exited ${child.exitCode ?? child.signalCode}: ${err}`);
    try { return (await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) })).status === 200; } catch { return false; }
  }, { timeoutMs, intervalMs: 10, what: 'webpushd /healthz' });
  return { child, base, pid: child.pid, execMs: t0, healthzMs: Date.now() };
}

function procStatus(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1] ?? NaN);
    return { rss_mib: kib('VmRSS') / 1024, hwm_mib: kib('VmHWM') / 1024, threads: Number((s.match(/^Threads:\s+(\d+)/m) || [])[1]) };
  } catch { return {}; }
}
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;  // utime + stime in clock ticks (100/s on Linux)
  } catch { return NaN; }
}

function sql(db, statement, timeoutMs = 120000) {
  const r = run('sqlite3', ['-cmd', '.timeout 10000', db, statement], { timeoutMs });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr}`);
  return r.stdout.trim();
}

async function backend(base, method, route, body) {
  const res = await fetch(base + route, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30000),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

function seed(folder, sink, n) {
  log(`seeding ${n.toLocaleString('en-US')} subscribers (webpushctl bench seed)`);
  const r = run(webpushctl, ['bench', 'seed', '--data-dir', path.join(folder.dir, 'data'), '--endpoint', `${sink.base}/push/ok`,
    '--subscribers', String(n), '--categories', Object.keys(categories).join(','), '--timezone', 'UTC', '--json', '--quiet'],
  { timeoutMs: 1800000 });
  if (r.status !== 0) throw new Error(`bench seed failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

function wrk(base, mode, seconds, runId, { conns = connections } = {}) {
  const r = run('wrk', ['-t1', `-c${conns}`, `-d${seconds}s`, '--latency', '-s', path.join(here, 'events.lua'), base], {
    timeoutMs: (seconds + 60) * 1000,
    env: { BENCH_MODE: mode, BENCH_BATCH: '100', BENCH_RUN: runId, BENCH_API_KEY: apiKey },
  });
  const line = (r.stdout.match(/^BENCHJSON (.*)$/m) || [])[1];
  if (!line) throw new Error(`wrk printed no result (${r.status}): ${r.stdout}\n${r.stderr}`);
  const j = JSON.parse(line);
  const secs = j.duration_us / 1e6;
  j.requests_per_second = j.requests / secs;
  j.ok_per_second = j.ok / secs;
  j.events_per_second = mode === 'healthz' ? null : (j.ok * j.batch) / secs;
  j.p50_ms = j.latency_us.p50 / 1000;
  j.p99_ms = j.latency_us.p99 / 1000;
  j.connections = conns;
  return j;
}

/** Like wrk() but in the background: resolves when wrk ends. */
function wrkBackground(base, mode, seconds, runId) {
  return new Promise((resolve) => {
    const child = spawn('timeout', [String(seconds + 60), 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency',
      '-s', path.join(here, 'events.lua'), base], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, BENCH_MODE: mode, BENCH_BATCH: '100', BENCH_RUN: runId, BENCH_API_KEY: apiKey },
    });
    process.on('exit', () => { try { child.kill('SIGKILL'); } catch { /* gone */ } });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('close', () => {
      const line = (out.match(/^BENCHJSON (.*)$/m) || [])[1];
      resolve(line ? JSON.parse(line) : { error: out });
    });
  });
}

function percentiles(values) {
  const v = [...values].sort((a, b) => a - b);
  const at = (p) => (v.length ? v[Math.min(v.length - 1, Math.round(p * (v.length - 1)))] : null);
  return { n: v.length, p50: at(0.5), p99: at(0.99), max: v.length ? v[v.length - 1] : null };
}

// --- 3. campaign ----------------------------------------------------------------
async function campaign() {
  const sink = await startSink(['--threads', '1', '--max-records', '0']);
  const folder = await daemonFolder('campaign', { scenarios: false });
  const seeded = seed(folder, sink, subscribers);
  log(`seeded in ${seeded.seconds.toFixed(1)} s (${Math.round(seeded.per_second).toLocaleString('en-US')}/s); starting the daemon`);
  const d = await startQuiet(folder);
  const cpu0 = cpuSeconds(d.pid);
  const idle = procStatus(d.pid);
  log(`campaign to ${subscribers.toLocaleString('en-US')} subscribers`);
  const t0 = Date.now();
  const post = await backend(d.base, 'POST', '/v1/campaigns', {
    name: 'Bench sale', category: 'promotions', ttl: '1h',
    message: { title: 'Sale at {{shop.name}}', body: 'Everything -20% today', url: 'https://shop.example/sale' },
  });
  if (post.status !== 202) throw new Error(`POST /v1/campaigns answered ${post.status} ${JSON.stringify(post.body)}`);
  const id = post.body.id;
  let last = null;
  let peakRss = 0;
  const deadline = t0 + Math.max(600, subscribers / 500) * 1000;
  let lastLog = 0;
  for (;;) {
    await sleep(250);
    peakRss = Math.max(peakRss, procStatus(d.pid).rss_mib || 0);
    const g = await backend(d.base, 'GET', `/v1/campaigns/${id}`);
    last = g.body;
    const m = last?.messages ?? {};
    const finished = (m.sent ?? 0) + (m.gone ?? 0) + (m.failed ?? 0) + (m.dead ?? 0) + (m.expired ?? 0) + (m.suppressed ?? 0);
    if (last?.state === 'completed' && finished >= (last.enqueued ?? Infinity)) break;
    if (Date.now() - lastLog > 5000) {
      log(`  ${last?.state}: ${last?.enqueued ?? 0} enqueued, ${m.sent ?? 0} sent, ${m.queued ?? 0} queued (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      lastLog = Date.now();
    }
    if (Date.now() > deadline) { log('  campaign did not finish in time'); break; }
  }
  const status = procStatus(d.pid);
  const cpu = cpuSeconds(d.pid) - cpu0;
  // The end is the last 201 as the outbox recorded it (finished_at, ms), not the poll.
  const [lastFinished, sent, firstClaim] = sql(folder.db,
    "SELECT max(finished_at), count(*), min(claimed_at) FROM outbox WHERE state = 'sent'").split('|').map(Number);
  await stopChild(d.child);
  await sink.stop();
  const wall = (lastFinished - t0) / 1000;
  return {
    subscribers,
    seed_seconds: seeded.seconds,
    seed_per_second: seeded.per_second,
    campaign: id,
    state: last?.state,
    enqueued: last?.enqueued,
    messages: last?.messages,
    sent,
    all_sent: sent === subscribers,
    wall_seconds: wall,
    first_send_after_seconds: (firstClaim - t0) / 1000,
    fanout_seconds: last?.finished_at && last?.started_at ? (Date.parse(last.finished_at) - Date.parse(last.started_at)) / 1000 : null,
    messages_per_second: sent / wall,
    peak_rss_mib: status.hwm_mib,
    rss_idle_mib: idle.rss_mib,
    rss_polled_peak_mib: peakRss,
    cpu_seconds: cpu,
    cpu_cores_busy: cpu / wall,
    threads: status.threads,
  };
}

// --- 4. ingestion -----------------------------------------------------------------
async function ingest(d, folder) {
  const out = { seconds: ingestSeconds, connections, scenarios_loaded: true };
  log(`ingestion: wrk ${ingestSeconds} s each against GET /healthz, single events, batches of 100 (${connections} connections)`);
  // Counted after wrk exits and the requests it left in flight (one per
  // connection at most) have been answered into the void: those are stored
  // too, so rows = 202s seen + what was in flight when wrk stopped.
  const count = async () => { await sleep(1000); return Number(sql(folder.db, 'SELECT count(*) FROM events')); };
  out.healthz = wrk(d.base, 'healthz', ingestSeconds, 'h');
  const before = await count();
  const c0 = cpuSeconds(d.pid);
  out.single = wrk(d.base, 'single', ingestSeconds, `s${Date.now()}`);
  out.single.cpu_cores_busy = (cpuSeconds(d.pid) - c0) / (out.single.duration_us / 1e6);
  const afterSingle = await count();
  const c1 = cpuSeconds(d.pid);
  out.batch = wrk(d.base, 'batch', ingestSeconds, `b${Date.now()}`);
  out.batch.cpu_cores_busy = (cpuSeconds(d.pid) - c1) / (out.batch.duration_us / 1e6);
  const afterBatch = await count();
  // Durability: the daemon answers 202 only after the commit, so every
  // accepted event must be a row by now (wrk has its answers).
  const check = (acked, rows, perRequest) => ({
    acked_events: acked, rows_added: rows, in_flight_at_stop: rows - acked,
    // Every 202 is a row; the only extra rows are requests wrk had sent when it stopped.
    ok: rows >= acked && rows - acked <= connections * perRequest && (rows - acked) % perRequest === 0,
  });
  out.durability = {
    single: check(out.single.ok, afterSingle - before, 1),
    batch: check(out.batch.ok * 100, afterBatch - afterSingle, 100),
  };
  out.durability.match = out.durability.single.ok && out.durability.batch.ok;
  // The same without scenarios: what the automation engine's share is.
  const plain = await daemonFolder('events-plain', { scenarios: false });
  const dp = await startQuiet(plain);
  out.no_scenarios = {
    single: wrk(dp.base, 'single', ingestSeconds, `ps${Date.now()}`),
    batch: wrk(dp.base, 'batch', ingestSeconds, `pb${Date.now()}`),
  };
  await stopChild(dp.child);
  log(`  healthz ${Math.round(out.healthz.requests_per_second)}/s; single ${Math.round(out.single.events_per_second)} events/s ` +
      `p99 ${out.single.p99_ms} ms; batch ${Math.round(out.batch.events_per_second)} events/s p99 ${out.batch.p99_ms} ms; ` +
      `rows vs 202s: ${JSON.stringify(out.durability)}; without scenarios: single ` +
      `${Math.round(out.no_scenarios.single.events_per_second)}/s, batch ${Math.round(out.no_scenarios.batch.events_per_second)}/s`);
  return out;
}

// --- 5. scheduler -------------------------------------------------------------------
async function scheduler(folderIn, dIn, sinkIn) {
  let folder = folderIn; let d = dIn; const sink = sinkIn;
  const out = { journeys_target: journeys, slice, window_seconds: windowSeconds };
  const active = () => Number(sql(folder.db, "SELECT count(*) FROM journeys WHERE state = 'active'"));
  let n = active();
  const topUpDeadline = Date.now() + Math.max(300, journeys / 2000) * 1000;
  while (n < journeys && Date.now() < topUpDeadline) {
    const left = journeys - n;
    log(`  ${n.toLocaleString('en-US')} journeys pending; ingesting ${left.toLocaleString('en-US')} more cart events`);
    // About 20,000 events/s batched: a run long enough for the rest, at most 60 s.
    wrk(d.base, 'batch', Math.min(60, Math.max(2, Math.ceil(left / 15000))), `t${Date.now()}`);
    n = active();
  }
  out.journeys_pending = n;
  await sleep(2000);  // let the write queue and allocator settle
  const st = procStatus(d.pid);
  out.rss_pending_mib = st.rss_mib;
  out.hwm_before_restart_mib = st.hwm_mib;
  log(`  ${n.toLocaleString('en-US')} journeys pending, RSS ${st.rss_mib.toFixed(0)} MiB; kill -9`);
  d.child.kill('SIGKILL');
  await new Promise((r) => (d.child.exitCode !== null || d.child.signalCode !== null ? r() : d.child.once('exit', r)));
  const killedAt = Date.now();

  // The slice: the oldest pending abandoned-cart journeys become seeded
  // subscribers' (so their reminder is really sent), 100 of them overdue
  // (missed while the daemon was down: the restart's first reminder) and
  // the rest due one after another across the window, starting 15 s from now.
  const minId = Number(sql(folder.db, "SELECT min(id) FROM journeys WHERE state = 'active' AND scenario = 'abandoned_cart'"));
  const overdue = 100;
  const due0 = Date.now() + 15000;
  const step = (windowSeconds * 1000) / slice;
  sql(folder.db, `UPDATE journeys SET person = 's:sub_bench_' || (id - ${minId}),
      next_at = CASE WHEN id - ${minId} < ${overdue} THEN ${killedAt} - 1000
                     ELSE ${due0} + CAST((id - ${minId} - ${overdue}) * ${step} AS INTEGER) END
      WHERE state = 'active' AND scenario = 'abandoned_cart' AND id >= ${minId} AND id < ${minId} + ${overdue + slice}`);
  out.slice_first_due_ms = due0;

  const r = await startQuiet(folder);
  d = r;
  out.restart_healthz_seconds = (r.healthzMs - r.execMs) / 1000;
  log(`  restarted: /healthz 200 after ${out.restart_healthz_seconds.toFixed(2)} s; wrk (batches) during the due window`);
  const load = wrkBackground(d.base, 'batch', Math.ceil((due0 - Date.now()) / 1000 + windowSeconds + 3), `l${Date.now()}`);
  const firstEnqueued = await waitFor(() => {
    const v = sql(folder.db, `SELECT min(created_at) FROM outbox WHERE created_at >= ${r.execMs}`);
    return v ? Number(v) : null;
  }, { timeoutMs: 60000, intervalMs: 50, what: 'the first due reminder in the outbox' }).catch(() => null);
  out.restart_first_reminder_seconds = firstEnqueued ? (firstEnqueued - r.execMs) / 1000 : null;
  out.load = await load;
  if (out.load.duration_us) out.load.events_per_second = (out.load.ok * 100) / (out.load.duration_us / 1e6);
  await sleep(3000);
  const rows = sql(folder.db, `SELECT l.journey_id - ${minId}, min(l.at), group_concat(DISTINCT l.outcome) FROM journey_log l
      WHERE l.journey_id >= ${minId + overdue} AND l.journey_id < ${minId + overdue + slice}
        AND l.scenario = 'abandoned_cart' AND l.step = 'first_reminder' AND l.outcome NOT IN ('entered', 'restarted')
      GROUP BY l.journey_id`).split('\n').filter(Boolean);
  const lateness = [];
  const outcomes = {};
  for (const line of rows) {
    const [k, at, outcome] = line.split('|');
    const due = due0 + Math.trunc((Number(k) - overdue) * step);
    lateness.push((Number(at) - due) / 1000);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  const p = percentiles(lateness);
  out.lateness_seconds = p;
  out.fired = lateness.length;
  out.outcomes = outcomes;
  // A reminder that never ran counts as late.
  out.share_within_1s = lateness.filter((x) => x <= 1).length / slice;
  out.outbox_from_slice = Number(sql(folder.db, `SELECT count(*) FROM outbox WHERE created_at >= ${r.execMs}`));
  out.rss_after_mib = procStatus(d.pid).rss_mib;
  out.hwm_after_restart_mib = procStatus(d.pid).hwm_mib;
  log(`  first reminder ${out.restart_first_reminder_seconds} s after exec; lateness p50 ${p.p50} s p99 ${p.p99} s, ` +
      `${(out.share_within_1s * 100).toFixed(1)} % within 1 s (${lateness.length}/${slice} fired)`);
  await stopChild(d.child);
  return out;
}

async function main() {
  const t = (name, f) => f().then((v) => writeFileSync(path.join(work, `${name}.json`), `${JSON.stringify(v)}\n`))
    .catch((e) => { log(`${name} failed: ${e.stack}`); writeFileSync(path.join(work, `${name}.json`), `${JSON.stringify({ error: String(e.message).slice(0, 2000) })}\n`); });
  if (only.has('campaign')) await t('campaign', campaign);
  if (only.has('ingest') || only.has('scheduler')) {
    // One daemon for both: the events ingested are what starts the journeys.
    const sink = await startSink(['--threads', '1', '--max-records', '0']);
    const folder = await daemonFolder('events', { scenarios: true });
    seed(folder, sink, slice + 100);
    const d = await startQuiet(folder);
    if (only.has('ingest')) await t('ingest', () => ingest(d, folder));
    if (only.has('scheduler')) await t('scheduler', () => scheduler(folder, d, sink));
    else await stopChild(d.child);
    await sink.stop();
  }
}
await main();
process.exit(0);
