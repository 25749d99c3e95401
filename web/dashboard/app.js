// webpushd dashboard: reads the daemon's JSON API with the session cookie
// (same origin) and renders it. Plain JavaScript, no build step; charts by
// uPlot (vendor/, see web/dashboard/README.md).
//
// Every figure shown is an element with data-path (where it is in the API
// answer) and data-value (the raw JSON value), inside an element whose
// data-api names the answer's URL: the browser test compares them with the
// API, and a curious reader can find any number's source.
'use strict';

(() => {
  const DASH = '—';
  const locale = navigator.language || 'en';
  const integer = new Intl.NumberFormat(locale);
  const percent = new Intl.NumberFormat(locale, { style: 'percent', maximumFractionDigits: 1 });
  const REASONS = [
    ['quiet_hours', 'Quiet hours'],
    ['min_gap', 'Minimum gap between pushes'],
    ['global_cap', 'Shop-wide cap'],
    ['scenario_cap', 'Scenario cap'],
    ['category_cap', 'Category cap'],
  ];
  const STATUS_EVERY_MS = 5000;
  const STATS_EVERY_MS = 60000;

  let days = 7;
  let chart = null;
  let statsTimer = null;
  let loading = 0;

  // ------------------------------------------------------------ helpers

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  /** The value at a dotted path ("steps.0.funnel.sent"), or undefined. */
  function get(obj, path) {
    return path.split('.').reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
  }

  /** The first of `paths` present in `obj`: {path, value}. Lets the page show
   *  the funnel's names (the stats' spec) and fall back to older fields. */
  function pick(obj, paths) {
    for (const p of paths) {
      const v = get(obj, p);
      if (v !== undefined) return { path: p, value: v };
    }
    return { path: paths[0], value: undefined };
  }

  function money(byCurrency) {
    if (!byCurrency || typeof byCurrency !== 'object') return DASH;
    const entries = Object.entries(byCurrency).filter(([, v]) => typeof v === 'number');
    if (entries.length === 0) return integer.format(0);
    return entries.map(([cur, v]) => {
      try {
        return new Intl.NumberFormat(locale, { style: 'currency', currency: cur }).format(v);
      } catch {
        return `${integer.format(v)} ${cur}`;
      }
    }).join(' + ');
  }

  function seconds(v) {
    if (typeof v !== 'number') return DASH;
    if (v < 1) return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 0 }).format(v * 1000)} ms`;
    if (v < 120) return `${new Intl.NumberFormat(locale, { maximumFractionDigits: 1 }).format(v)} s`;
    if (v < 7200) return `${integer.format(Math.round(v / 60))} min`;
    return `${integer.format(Math.round(v / 3600))} h`;
  }

  function format(value, kind) {
    if (kind === 'money') return money(value);
    if (value === undefined || value === null) return DASH;
    if (kind === 'percent') return typeof value === 'number' ? percent.format(value) : DASH;
    if (kind === 'seconds') return seconds(value);
    if (kind === 'text') return String(value);
    return typeof value === 'number' ? integer.format(value) : String(value);
  }

  /** An element showing one figure of `obj` (the first of `paths` present). */
  function figure(tag, obj, paths, kind = 'number', attrs = {}) {
    const { path, value } = pick(obj, Array.isArray(paths) ? paths : [paths]);
    return el(tag, {
      ...attrs,
      'data-path': path,
      'data-value': value === undefined ? '' : JSON.stringify(value),
      text: format(value, kind),
    });
  }

  function showError(message) {
    const box = $('error');
    box.hidden = !message;
    box.textContent = message || '';
  }

  /** GET a JSON API route; null when the route or the thing does not exist. */
  async function api(url) {
    const res = await fetch(url, { headers: { accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' });
    if (res.status === 401) {
      // The session ended: the page itself now shows the login form.
      window.location.assign('/dashboard');
      throw new Error('Your session has ended. Please log in again.');
    }
    if (res.status === 404) return null;
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body?.error?.message ? `${url}: ${body.error.message}` : `${url}: HTTP ${res.status}`);
    return body;
  }

  function range() {
    const hour = 3600 * 1000;
    const to = new Date(Math.ceil(Date.now() / hour) * hour);
    const from = new Date(to.getTime() - days * 24 * hour);
    return { from: from.toISOString(), to: to.toISOString() };
  }

  function table(headers, rows) {
    return el('table', {},
      el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, ...rows));
  }

  function empty(text) { return el('p', { class: 'empty', text }); }

  // ------------------------------------------------------------ health

  function card(label, obj, paths, kind, bad) {
    const { value } = pick(obj, [].concat(paths));
    return el('div', { class: `card${bad && bad(value) ? ' bad' : ''}` },
      el('div', { class: 'label', text: label }),
      figure('div', obj, paths, kind, { class: 'value' }));
  }

  async function loadStatus() {
    let status = null;
    try {
      status = await api('/v1/status');
    } catch (e) {
      showError(e.message);
      return;
    }
    const s = status ?? {};
    const cards = $('health-cards');
    cards.setAttribute('data-api', '/v1/status');
    const positive = (v) => typeof v === 'number' && v > 0;
    cards.replaceChildren(
      card('Waiting in the outbox', s, 'outbox.queued'),
      card('Due now', s, 'outbox.due'),
      card('Being sent', s, 'outbox.sending'),
      card('Oldest due for', s, 'outbox.oldest_due_seconds', 'seconds', (v) => typeof v === 'number' && v > 300),
      card('Sent (last 5 min)', s, 'deliveries.last_5m.sent'),
      card('Retried (last 5 min)', s, 'deliveries.last_5m.retried', 'number', positive),
      card('Gone (last 5 min)', s, 'deliveries.last_5m.gone'),
      card('Failed (last 5 min)', s, 'deliveries.last_5m.failed', 'number', positive),
      card('Delivery time, median', s, 'deliveries.latency_p50_seconds', 'seconds'),
      card('Delivery time, p99', s, 'deliveries.latency_p99_seconds', 'seconds'),
      card('Active subscribers', s, 'subscriptions.active'),
      card('Gone subscribers', s, 'subscriptions.gone'),
    );
    const note = $('health-empty');
    note.hidden = status !== null;
    note.textContent = status === null ? 'Live health is not available: the daemon did not answer /v1/status.' : '';
    $('health-updated').textContent = status === null ? '' : `updated ${new Date().toLocaleTimeString(locale)}, every ${STATUS_EVERY_MS / 1000} s`;
  }

  // ------------------------------------------------------------ scenarios

  const FUNNEL = [
    ['Entered', ['funnel.entered', 'journeys.entered'], null],
    ['Sent', ['funnel.sent', 'sent'], null],
    ['Shown', ['funnel.shown'], ['rates.show_rate', 'of sent']],
    ['Clicked', ['funnel.clicked'], ['rates.click_rate', 'of sent']],
    ['Converted', ['funnel.converted'], ['rates.conversion_rate', 'of clicks']],
  ];

  function funnel(figures, prefix) {
    const p = (paths) => paths.map((x) => prefix + x);
    const stages = FUNNEL.map(([label, paths, rate]) => el('div', { class: 'stage' },
      el('div', { class: 'label', text: label }),
      figure('div', figures, p(paths), 'number', { class: 'value' }),
      rate ? el('div', { class: 'rate' }, figure('span', figures, p([rate[0]]), 'percent'), ` ${rate[1]}`) : null));
    stages.push(el('div', { class: 'stage money' },
      el('div', { class: 'label', text: 'Revenue' }),
      figure('div', figures, p(['revenue.converted']), 'money', { class: 'value' }),
      el('div', { class: 'rate' }, 'influenced ', figure('span', figures, p(['revenue.influenced']), 'money'))));
    return el('div', { class: 'funnel' }, ...stages);
  }

  const STEP_COLUMNS = ['Step', 'Entered', 'Sent', 'Shown', 'Clicked', 'Converted', 'Click rate', 'Conversion rate',
    'Revenue', 'Unsubscribes', 'Unsubscribe rate'];

  function stepRow(body, prefix, label, cls) {
    return el('tr', { class: cls },
      el('td', { text: label }),
      // A step's journeys.entered is always 0 (entering is journey-level): only the funnel's figure counts there.
      figure('td', body, prefix === 'totals.' ? ['totals.funnel.entered', 'totals.journeys.entered'] : [`${prefix}funnel.entered`]),
      figure('td', body, [`${prefix}funnel.sent`, `${prefix}sent`]),
      figure('td', body, [`${prefix}funnel.shown`]),
      figure('td', body, [`${prefix}funnel.clicked`]),
      figure('td', body, [`${prefix}funnel.converted`]),
      figure('td', body, [`${prefix}rates.click_rate`], 'percent', { class: 'rate' }),
      figure('td', body, [`${prefix}rates.conversion_rate`], 'percent', { class: 'rate' }),
      figure('td', body, [`${prefix}revenue.converted`], 'money'),
      figure('td', body, [`${prefix}unsubscribes.total`]),
      figure('td', body, [`${prefix}unsubscribe_rate`], 'percent', { class: 'rate' }));
  }

  function variantRow(body, prefix, variant) {
    const sig = variant.significance;
    const label = el('span', {}, `variant ${variant.name}`,
      typeof variant.weight === 'number' ? ` (weight ${integer.format(variant.weight)})` : '',
      sig ? ' ' : null,
      sig ? el('span', { class: `badge${sig.significant ? ' good' : ''}`, title: sig.note || '',
        text: sig.significant ? `significant vs ${sig.baseline}` : `not significant yet vs ${sig.baseline}` }) : null);
    return el('tr', { class: 'variant' },
      el('td', {}, label),
      el('td', { text: DASH }),
      figure('td', body, [`${prefix}sent`]),
      figure('td', body, [`${prefix}shown`]),
      figure('td', body, [`${prefix}clicked`]),
      figure('td', body, [`${prefix}converted`]),
      figure('td', body, [`${prefix}click_rate`], 'percent', { class: 'rate' }),
      figure('td', body, [`${prefix}conversion_rate`], 'percent', { class: 'rate' }),
      figure('td', body, [`${prefix}revenue`], 'money'),
      figure('td', body, [`${prefix}unsubscribes`]),
      figure('td', body, [`${prefix}unsubscribe_rate`], 'percent', { class: 'rate' }));
  }

  function renderScenario(s) {
    const { body, url, overview } = s;
    const box = el('div', { class: 'scenario', 'data-api': url, 'data-scenario': overview.name });
    box.append(el('h3', {}, overview.name, ' ',
      overview.description ? el('span', { class: 'desc', text: `— ${overview.description}` }) : null, ' ',
      el('span', { class: 'badge', text: overview.enabled === false ? 'paused' : `trigger: ${overview.trigger?.event ?? '?'}` })));
    if (!body) {
      box.append(empty('No figures for this scenario (the daemon answered 404).'));
      return box;
    }
    box.append(funnel(body, 'totals.'));
    const rows = [];
    (body.steps ?? []).forEach((step, i) => {
      rows.push(stepRow(body, `steps.${i}.`, step.configured === false ? `${step.name} (no longer in the file)` : step.name));
      (step.variants ?? []).forEach((v, j) => rows.push(variantRow(body, `steps.${i}.variants.${j}.`, v)));
    });
    rows.push(stepRow(body, 'totals.', 'All steps', 'total'));
    box.append(table(STEP_COLUMNS, rows));
    const sent = pick(body, ['totals.funnel.sent', 'totals.sent']).value;
    const entered = pick(body, ['totals.funnel.entered', 'totals.journeys.entered']).value;
    if (!sent && !entered) {
      box.append(empty(`Nothing happened in this period yet: journeys start when the shop sends a ${overview.trigger?.event ?? 'trigger'} event, and pushes go out when a journey reaches a step.`));
    }
    return box;
  }

  function capsText(caps) {
    if (!Array.isArray(caps)) return DASH;
    if (caps.length === 0) return 'none';
    return caps.map((c) => `${c.count} per ${c.per}`).join(', ');
  }

  function renderPacing(s) {
    const { body, url, overview } = s;
    const box = el('div', { class: 'scenario', 'data-api': url });
    box.append(el('h3', { text: overview.name }));
    if (!body) return box;
    const pacing = body.pacing ?? {};
    const adaptive = pacing.adaptive ? ` — self-throttling, level ${pacing.level ?? 0}` : '';
    box.append(el('p', {},
      'Caps in force: ', figure('b', body, ['pacing.effective_caps'], 'text', {}), adaptive,
      '; quiet hours ', el('b', { text: pacing.quiet_hours === false ? 'ignored' : 'respected' }), '.'));
    const capsCell = box.querySelector('[data-path="pacing.effective_caps"]');
    if (capsCell) capsCell.textContent = capsText(pacing.effective_caps);
    const rows = REASONS.map(([key, label]) => el('tr', {},
      el('td', { text: label }),
      figure('td', body, [`totals.deferred.${key}`]),
      figure('td', body, [`totals.suppressed.${key}`])));
    rows.push(el('tr', { class: 'total' }, el('td', { text: 'All reasons' }),
      figure('td', body, ['totals.deferred.total']), figure('td', body, ['totals.suppressed.total'])));
    box.append(table(['Held back by', 'Deferred', 'Suppressed'], rows));
    box.append(table(['Unsubscribed after a push', 'People'], [
      el('tr', {}, el('td', { text: 'Turned push off on the site' }), figure('td', body, ['totals.unsubscribes.unsubscribe'])),
      el('tr', {}, el('td', { text: 'Unticked a category' }), figure('td', body, ['totals.unsubscribes.withdraw'])),
      el('tr', {}, el('td', { text: 'Browser dropped the subscription' }), figure('td', body, ['totals.unsubscribes.gone'])),
      el('tr', { class: 'total' }, el('td', {}, 'All, ', figure('span', body, ['totals.unsubscribe_rate'], 'percent'), ' of sent'),
        figure('td', body, ['totals.unsubscribes.total'])),
    ]));
    return box;
  }

  // ------------------------------------------------------------ chart

  function dailySeries(sources) {
    const byDay = new Map();
    let clicksKnown = false;
    for (const body of sources) {
      for (const d of body?.per_day ?? []) {
        const t = Date.parse(`${d.date}T00:00:00Z`) / 1000;
        const row = byDay.get(t) ?? { sent: 0, clicked: 0, unsubscribes: 0 };
        row.sent += d.sent ?? 0;
        if (typeof d.clicked === 'number') { row.clicked += d.clicked; clicksKnown = true; }
        row.unsubscribes += d.unsubscribes ?? 0;
        byDay.set(t, row);
      }
    }
    const xs = [...byDay.keys()].sort((a, b) => a - b);
    return [
      xs,
      xs.map((t) => byDay.get(t).sent),
      xs.map((t) => (clicksKnown ? byDay.get(t).clicked : null)),
      xs.map((t) => byDay.get(t).unsubscribes),
    ];
  }

  function renderChart(sources) {
    const box = $('chart');
    const data = dailySeries(sources);
    const total = (i) => data[i].reduce((a, v) => a + (v ?? 0), 0);
    box.setAttribute('data-days', String(data[0].length));
    box.setAttribute('data-sent', String(total(1)));
    box.setAttribute('data-clicked', data[2].some((v) => v !== null) ? String(total(2)) : '');
    box.setAttribute('data-unsubscribes', String(total(3)));
    const note = $('chart-empty');
    note.hidden = total(1) > 0;
    note.textContent = total(1) > 0 ? '' : 'No pushes were sent in this period, so the lines stay at zero.';
    if (typeof window.uPlot !== 'function') {
      box.replaceChildren(empty('The chart library did not load.'));
      return;
    }
    const css = getComputedStyle(document.documentElement);
    const colour = (name) => css.getPropertyValue(name).trim();
    const value = (u, v) => (v === null || v === undefined ? DASH : integer.format(v));
    const opts = {
      width: Math.max(320, box.clientWidth || 800),
      height: 300,
      scales: { x: { time: true } },
      series: [
        { label: 'Day', value: (u, v) => (v === null ? DASH : new Date(v * 1000).toLocaleDateString(locale, { timeZone: 'UTC' })) },
        { label: 'Sent', stroke: colour('--sent'), width: 2, value },
        { label: 'Clicked', stroke: colour('--clicked'), width: 2, value },
        { label: 'Unsubscribes', stroke: colour('--unsub'), width: 2, value },
      ],
      axes: [{}, { values: (u, ticks) => ticks.map((t) => integer.format(t)) }],
    };
    if (chart) chart.destroy();
    box.replaceChildren();
    chart = new window.uPlot(opts, data, box);
    box.setAttribute('data-rendered', String(Date.now()));
  }

  // ------------------------------------------------------------ top messages

  function renderTop(scenarios, campaigns) {
    const candidates = [];
    for (const s of scenarios) {
      (s.body?.steps ?? []).forEach((step, i) => {
        const variants = step.variants ?? [];
        if (variants.length === 0) {
          candidates.push({ url: s.url, body: s.body, label: `${s.overview.name} → ${step.name}`, kind: 'scenario step', prefix: `steps.${i}.`, rate: `steps.${i}.rates.click_rate`, sent: [`steps.${i}.funnel.sent`, `steps.${i}.sent`], clicked: `steps.${i}.funnel.clicked` });
        }
        variants.forEach((v, j) => candidates.push({ url: s.url, body: s.body, label: `${s.overview.name} → ${step.name} (variant ${v.name})`, kind: 'variant', rate: `steps.${i}.variants.${j}.click_rate`, sent: [`steps.${i}.variants.${j}.sent`], clicked: `steps.${i}.variants.${j}.clicked` }));
      });
    }
    for (const c of campaigns) {
      if (c.stats) candidates.push({ url: c.statsUrl, body: c.stats, label: c.row.name, kind: 'campaign', rate: 'totals.rates.click_rate', sent: ['totals.funnel.sent', 'totals.sent'], clicked: 'totals.funnel.clicked' });
    }
    const ranked = candidates
      .filter((c) => typeof get(c.body, c.rate) === 'number')
      .sort((a, b) => get(b.body, b.rate) - get(a.body, a.rate))
      .slice(0, 10);
    const box = $('top-messages');
    if (ranked.length === 0) {
      box.replaceChildren(empty(candidates.length === 0
        ? 'No messages yet: scenarios and campaigns appear here once they have sent something.'
        : 'No click rates yet: they appear once pushes were sent and shoppers\' browsers report clicks.'));
      return;
    }
    box.replaceChildren(table(['Message', 'Kind', 'Sent', 'Clicked', 'Click rate'], ranked.map((c) => el('tr', { 'data-api': c.url },
      el('td', { text: c.label }), el('td', { text: c.kind }),
      figure('td', c.body, c.sent), figure('td', c.body, [c.clicked]),
      figure('td', c.body, [c.rate], 'percent')))));
  }

  // ------------------------------------------------------------ campaigns

  function renderCampaigns(campaigns) {
    const box = $('campaign-list');
    if (campaigns.length === 0) {
      box.replaceChildren(empty('No campaigns yet. The shop backend creates them with POST /v1/campaigns (README, "Campaigns").'));
      return;
    }
    const rows = campaigns.map((c) => {
      const stats = c.stats ?? {};
      const at = (attrs) => ({ ...attrs, 'data-api': c.statsUrl });
      return el('tr', { 'data-api': c.url, 'data-campaign': c.row.id },
        el('td', {}, el('b', { text: c.row.name }), el('br'), el('span', { class: 'small', text: `${c.row.id} · ${c.row.category}` })),
        figure('td', c.detail ?? c.row, ['state'], 'text'),
        el('td', { text: c.row.created_at ? new Date(c.row.created_at).toLocaleString(locale) : DASH }),
        figure('td', c.detail ?? c.row, ['enqueued']),
        figure('td', c.detail ?? c.row, ['messages.sent']),
        figure('td', stats, ['totals.funnel.shown'], 'number', at({})),
        figure('td', stats, ['totals.funnel.clicked'], 'number', at({})),
        figure('td', stats, ['totals.funnel.converted'], 'number', at({})),
        figure('td', stats, ['totals.rates.click_rate'], 'percent', at({ class: 'rate' })),
        figure('td', stats, ['totals.revenue.converted'], 'money', at({})));
    });
    const parts = [table(['Campaign', 'State', 'Created', 'Recipients', 'Sent', 'Shown', 'Clicked', 'Converted', 'Click rate', 'Revenue'], rows)];
    box.replaceChildren(...parts);
  }

  // ------------------------------------------------------------ loading

  async function loadStats() {
    const mine = ++loading;
    const r = range();
    const query = `from=${encodeURIComponent(r.from)}&to=${encodeURIComponent(r.to)}`;
    try {
      const list = await api('/v1/scenarios');
      const overviews = list?.scenarios ?? [];
      const scenarios = await Promise.all(overviews.map(async (overview) => {
        const url = `/v1/scenarios/${encodeURIComponent(overview.name)}/stats?${query}`;
        return { overview, url, body: await api(url) };
      }));
      const campaignList = await api('/v1/campaigns?limit=50');
      const campaigns = await Promise.all((campaignList?.campaigns ?? []).map(async (row) => {
        const url = `/v1/campaigns/${encodeURIComponent(row.id)}`;
        const statsUrl = `${url}/stats`;
        const [detail, stats] = await Promise.all([api(url), api(statsUrl)]);
        return { row, url, detail, statsUrl, stats };
      }));
      if (mine !== loading) return;  // a newer range was chosen meanwhile
      $('range-text').textContent = `${new Date(r.from).toLocaleString(locale)} – ${new Date(r.to).toLocaleString(locale)}`;
      const list1 = $('scenarios');
      const list2 = $('pacing-tables');
      if (overviews.length === 0) {
        list1.replaceChildren(empty('No scenarios are running. Add scenario files to automation.scenario_files in the config (README, "Automation scenarios").'));
        list2.replaceChildren(empty('Caps appear here for each running scenario.'));
      } else {
        list1.replaceChildren(...scenarios.map(renderScenario));
        list2.replaceChildren(...scenarios.map(renderPacing));
      }
      renderChart([...scenarios.map((s) => s.body), ...campaigns.map((c) => c.stats)]);
      renderTop(scenarios, campaigns);
      renderCampaigns(campaigns);
      document.body.setAttribute('data-range-days', String(days));
      document.body.setAttribute('data-range-from', r.from);
      document.body.setAttribute('data-range-to', r.to);
      showError('');
    } catch (e) {
      if (mine === loading) showError(e.message);
    }
  }

  async function start() {
    try {
      const who = await api('/dashboard/session');
      $('user').textContent = who?.user ? `Logged in as ${who.user}` : '';
    } catch (e) {
      showError(e.message);
      return;
    }
    for (const button of document.querySelectorAll('.range button')) {
      button.addEventListener('click', async () => {
        days = Number(button.dataset.days);
        for (const b of document.querySelectorAll('.range button')) b.setAttribute('aria-pressed', String(b === button));
        document.body.setAttribute('data-loaded', 'false');
        await loadStats();
        document.body.setAttribute('data-loaded', 'true');
      });
    }
    window.addEventListener('resize', () => {
      if (chart) chart.setSize({ width: Math.max(320, $('chart').clientWidth), height: 300 });
    });
    await Promise.all([loadStats(), loadStatus()]);
    document.body.setAttribute('data-loaded', 'true');
    setInterval(loadStatus, STATUS_EVERY_MS);
    statsTimer = setInterval(loadStats, STATS_EVERY_MS);
  }

  window.addEventListener('beforeunload', () => clearInterval(statsTimer));
  document.addEventListener('DOMContentLoaded', start);
})();
