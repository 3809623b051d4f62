// The trend page (/trend/): finishes the SMART launch, reads the patient's data from the
// EHR's FHIR server with the user's token (the searches the service serves as its
// prefetch, as the page's `service` gives them: trend_link.service_facts),
// and draws CRP and ESR (left axis) and pain (right axis) against days since T0, with
// the baseline, the fall line, the normal limit, T0 (and, from the card, where it came
// from), the day-28 mark, the values the decision used, the red flags as dated markers
// (those known at diagnosis marked so), and the card's recommendation.
import FHIR from 'fhirclient';
import {
  Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';
import { pageSettings, sameServerUrl, savedState, stateProblem } from './guard.js';
import { buildModel, formatNumber, parseAppContext } from './trend.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip);

// Okabe-Ito: told apart with every common colour-vision deficiency; each series also
// has its own point shape and line pattern, and every line is labelled in words.
const COLOURS = {
  crp: '#0072B2', esr: '#E69F00', pain: '#009E73', baseline: '#000000', earliest: '#000000', fall: '#CC79A7',
  normal: '#56B4E9', mark: '#555555', flag: '#D55E00', used: '#000000',
};
const LINE_DASH = {
  baseline: [8, 4], earliest: [8, 4], fall: [4, 4], normal: [2, 3], t0: [], 'plateau-day': [6, 3], order: [1, 3], known: [7, 4],
};
const KNOWN = 'known at diagnosis';
const SERIES = {
  crp: { label: 'CRP (mg/L)', axis: 'y', shape: 'circle', dash: [] },
  esr: { label: 'ESR (mm/h)', axis: 'y', shape: 'triangle', dash: [6, 4] },
  pain: { label: 'Pain (0-10, right axis)', axis: 'yPain', shape: 'rect', dash: [2, 3] },
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// A search followed through at most `maxPages` pages, as the service follows it.
async function search(client, query, maxPages) {
  const resources = [];
  let url = query.replace('{patient}', encodeURIComponent(client.patient.id));
  let pages = 0;
  let offServer = false;
  while (url && pages < maxPages) {
    const bundle = await client.request(url);
    pages += 1;
    for (const entry of bundle?.entry ?? []) if (entry.resource) resources.push(entry.resource);
    const next = (bundle?.link ?? []).find((l) => l.relation === 'next')?.url ?? null;
    // fhirclient sends the token with every request: never to another origin.
    url = next === null ? null : sameServerUrl(next, client.state.serverUrl);
    offServer = next !== null && url === null;
  }
  return { resources, pages, cutOff: Boolean(url), offServer };
}

async function readAll(client, service) {
  const keys = Object.keys(service.queries);
  const results = await Promise.allSettled(keys.map((k) => search(client, service.queries[k], service.maxPages)));
  const data = {};
  keys.forEach((k, i) => {
    const r = results[i];
    data[k] = r.status === 'fulfilled' ? r.value
      : { resources: [], error: r.reason?.status ? `HTTP ${r.reason.status}` : String(r.reason?.message ?? r.reason) };
  });
  return data;
}

function patientName(patient) {
  const name = patient?.name?.[0];
  if (!name) return null;
  return name.text ?? [...(name.given ?? []), name.family].filter(Boolean).join(' ');
}

// Reference lines and day marks, drawn over the data with their labels (on a white
// ground, so that they stay legible over lines and grid).
function label(ctx, text, x, y, align, colour) {
  const width = ctx.measureText(text).width;
  const left = align === 'right' ? x - width : x;
  ctx.fillStyle = 'rgba(255,255,255,0.88)';
  ctx.fillRect(left - 2, y - 11, width + 4, 14);
  ctx.fillStyle = colour;
  ctx.textAlign = 'left';
  ctx.fillText(text, left, y);
}

const referenceLines = {
  id: 'spineReferenceLines',
  afterDatasetsDraw(chart, _args, opts) {
    const { ctx, chartArea: area, scales } = chart;
    ctx.save();
    ctx.font = '12px system-ui, sans-serif';
    const marks = [...(opts.dayMarks ?? []), ...(opts.markers ?? [])]
      .filter((m) => m.x !== null && m.x !== undefined)
      .map((m) => ({ ...m, px: scales.x.getPixelForValue(m.x), flag: Boolean(m.reference) }))
      .filter((m) => m.px >= area.left && m.px <= area.right);
    // Horizontal labels end before the first vertical mark in the right half.
    const rightMarks = marks.map((m) => m.px).filter((px) => px > (area.left + area.right) / 2);
    const labelEnd = Math.min(area.right - 4, ...rightMarks.map((px) => px - 10));
    for (const line of opts.lines ?? []) {
      const y = scales.y.getPixelForValue(line.value);
      if (y < area.top || y > area.bottom) continue;
      ctx.strokeStyle = COLOURS[line.id];
      ctx.lineWidth = 1.5;
      ctx.setLineDash(LINE_DASH[line.id] ?? []);
      ctx.beginPath(); ctx.moveTo(area.left, y); ctx.lineTo(area.right, y); ctx.stroke();
      ctx.setLineDash([]);
      // The normal limit sits low, where the day marks are labelled: its label goes left.
      if (line.id === 'normal') label(ctx, line.label, area.left + 6, y - 4, 'left', '#222');
      else label(ctx, line.label, labelEnd, y - 4, 'right', '#222');
    }
    const dayRows = []; // the labels' horizontal extents, row by row
    let flagRow = 0;
    for (const mark of marks) {
      const x = mark.px;
      ctx.strokeStyle = mark.flag ? COLOURS.flag : COLOURS.mark;
      ctx.lineWidth = mark.flag ? 2.5 : 1.5;
      ctx.setLineDash(mark.flag ? (mark.known ? LINE_DASH.known : []) : (LINE_DASH[mark.id] ?? [4, 4]));
      ctx.beginPath(); ctx.moveTo(x, area.top); ctx.lineTo(x, area.bottom); ctx.stroke();
      ctx.setLineDash([]);
      const align = x > area.right - 180 ? 'right' : 'left';
      const tx = align === 'right' ? x - 6 : x + 6;
      if (mark.flag) {
        // A diamond at the top: the marker's shape, not only its colour. Filled for a new
        // finding; hollow (and a dashed line) for one known at diagnosis.
        ctx.beginPath();
        ctx.moveTo(x, area.top - 2); ctx.lineTo(x + 7, area.top + 7);
        ctx.lineTo(x, area.top + 16); ctx.lineTo(x - 7, area.top + 7);
        ctx.closePath();
        if (mark.known) {
          ctx.fillStyle = '#fff'; ctx.fill(); ctx.lineWidth = 2.5; ctx.stroke();
        } else {
          ctx.fillStyle = COLOURS.flag; ctx.fill();
        }
        const text = mark.known ? `${mark.label}, ${KNOWN} (day ${mark.x})` : `${mark.label} (day ${mark.x})`;
        label(ctx, text, align === 'right' ? x - 10 : x + 10, area.top + 12 + 16 * flagRow, align, COLOURS.flag);
        flagRow += 1;
      } else { // day marks are labelled along the bottom, in the lowest row where they fit
        const width = ctx.measureText(mark.label).width;
        const left = align === 'right' ? tx - width : tx;
        let row = dayRows.findIndex((spans) => spans.every(([a, b]) => left + width + 8 < a || left - 8 > b));
        if (row < 0) { row = dayRows.length; dayRows.push([]); }
        dayRows[row].push([left, left + width]);
        label(ctx, mark.label, tx, area.bottom - 6 - 16 * row, align, '#222');
      }
    }
    ctx.restore();
  },
};

function draw(model) {
  const canvas = $('chart');
  const datasets = Object.entries(SERIES).map(([kind, s]) => ({
    label: s.label,
    data: model.series[kind].map((p) => ({ x: p.x, y: Math.round(p.value * 10) / 10, ref: p.reference })),
    yAxisID: s.axis,
    borderColor: COLOURS[kind], backgroundColor: COLOURS[kind],
    pointStyle: s.shape, pointRadius: 5, pointHoverRadius: 7, borderWidth: 2, borderDash: s.dash,
    tension: 0,
  }));
  for (const axis of ['y', 'yPain']) {
    const kinds = axis === 'y' ? ['crp', 'esr'] : ['pain'];
    const points = kinds.flatMap((k) => model.series[k].filter((p) => p.used))
      .map((p) => ({ x: p.x, y: Math.round(p.value * 10) / 10, ref: p.reference }));
    datasets.push({
      label: axis === 'y' ? 'Used by the decision' : 'Used by the decision (pain)',
      data: points, yAxisID: axis, showLine: false, pointStyle: 'circle', pointRadius: 10,
      pointHoverRadius: 11, borderColor: COLOURS.used, backgroundColor: 'rgba(0,0,0,0)', borderWidth: 2.5,
    });
  }
  const allX = [...Object.values(model.series).flat().map((p) => p.x), ...model.markers.map((m) => m.x ?? 0),
    ...model.dayMarks.map((m) => m.x), 0];
  const maxLeft = Math.max(10, ...model.series.crp.map((p) => p.value), ...model.series.esr.map((p) => p.value),
    ...model.lines.map((l) => l.value));
  const chart = new Chart(canvas, {
    type: 'line',
    data: { datasets },
    options: {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: true,
      layout: { padding: { top: 8 } },
      interaction: { mode: 'nearest', intersect: false },
      scales: {
        x: { type: 'linear', min: Math.min(...allX) - 2, max: Math.max(...allX) + 3,
          title: { display: true, text: model.t0 ? `Days since treatment start (T0 ${model.t0})` : 'Days' } },
        y: { type: 'linear', position: 'left', min: 0, suggestedMax: Math.ceil(maxLeft * 1.1),
          title: { display: true, text: 'CRP mg/L · ESR mm/h' } },
        yPain: { type: 'linear', position: 'right', min: 0, max: 10, grid: { drawOnChartArea: false },
          title: { display: true, text: 'Pain (0-10)' } },
      },
      plugins: {
        legend: { labels: { usePointStyle: true, filter: (item) => item.text !== 'Used by the decision (pain)' } },
        tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${formatNumber(item.parsed.y)} (day ${item.parsed.x})` } },
        spineReferenceLines: { lines: model.lines, dayMarks: model.dayMarks, markers: model.markers },
      },
    },
    plugins: [referenceLines],
  });
  keyboard(chart, canvas);
  return chart;
}

// Arrow keys walk through the points, Home/End jump, Escape hides the tooltip.
function keyboard(chart, canvas) {
  const points = [];
  chart.data.datasets.forEach((ds, datasetIndex) => {
    if (datasetIndex > 2) return;
    ds.data.forEach((p, index) => points.push({ datasetIndex, index, x: p.x }));
  });
  points.sort((a, b) => a.x - b.x || a.datasetIndex - b.datasetIndex);
  let at = -1;
  const live = $('chart-live');
  canvas.addEventListener('keydown', (event) => {
    if (!points.length) return;
    const keys = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: points.length - 1 };
    if (event.key === 'Escape') {
      chart.setActiveElements([]); chart.tooltip.setActiveElements([], { x: 0, y: 0 }); chart.update(); return;
    }
    if (!(event.key in keys)) return;
    event.preventDefault();
    at = Math.max(0, Math.min(points.length - 1, keys[event.key]));
    const p = points[at];
    const active = [{ datasetIndex: p.datasetIndex, index: p.index }];
    chart.setActiveElements(active);
    chart.tooltip.setActiveElements(active, { x: 0, y: 0 });
    chart.update();
    const ds = chart.data.datasets[p.datasetIndex];
    live.textContent = `${ds.label}: ${formatNumber(ds.data[p.index].y)} on day ${ds.data[p.index].x}`;
  });
}

function renderDecision(model) {
  const box = $('decision');
  box.replaceChildren();
  if (!model.decision) return;
  const d = model.decision;
  box.className = `decision decision-${d.recommendation}`;
  // The card's own words: its summary (the card's headline), each fired rule's short phrase.
  box.append(el('h2', { id: 'decision-title' }, d.summary ?? ''));
  if (d.rules.length) {
    const lead = d.rules.length === 1 ? 'Rule that fired' : 'Rules that fired';
    box.append(el('p', { class: 'rules', id: 'decision-rules' }, `${lead}: ${d.rules.join('; ')}.`));
  }
  box.dataset.recommendation = d.recommendation;
}

function renderMessages(model, extra) {
  const list = $('messages');
  list.replaceChildren();
  for (const m of [...extra, ...model.messages]) {
    list.append(el('li', { class: `msg msg-${m.level}` }, `${m.level === 'error' ? 'Error: ' : m.level === 'warning' ? 'Note: ' : ''}${m.text}`));
  }
  list.hidden = list.children.length === 0;
}

function renderKey(model) {
  const key = $('key');
  key.replaceChildren();
  const items = [
    ...model.lines.map((l) => [`line-${l.id}`, l.label]),
    ...model.dayMarks.map((m) => [`line-${m.id}`, dayMarkKey(m, model)]),
    ...model.markers.map((m) => [m.known ? 'line-known' : 'line-flag',
      `${m.kind}: ${m.label}${m.known ? `, ${KNOWN}` : ''}${m.day ? ` (${m.day}${m.x !== null ? `, day ${m.x}` : ''})` : ' (undated)'}`]),
    ['used', 'Ringed points: the values the decision used'],
  ];
  for (const [cls, text] of items) key.append(el('li', {}, el('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text));
}

function dayMarkKey(m, model) {
  if (m.id === 'plateau-day') return `${m.label}: markers judged after day ${model.thresholds.plateauAfterDays}`;
  if (m.id === 't0') return `T0 (day 0): ${m.text ?? model.t0}`;
  return m.label;
}

// Above the chart: T0 and, from the card only, where it came from; the findings the card
// says were known at diagnosis, by name and date.
function renderT0(model) {
  const t0 = $('t0');
  if (!model.t0) t0.textContent = 'Treatment start unknown.';
  else t0.textContent = `T0 (day 0): ${model.t0Text ?? model.t0}.`;
  t0.dataset.source = model.t0Text ? 'card' : 'none';
  const known = $('known');
  known.replaceChildren();
  if (model.known.length) {
    const items = model.known.map((k) => `${k.name} (${k.day ? `${k.day}${k.x !== null ? `, day ${k.x}` : ''}` : 'undated'})`);
    const not = model.known.length === 1 ? 'Not a new red flag.' : 'Not new red flags.';
    known.append(el('span', { class: 'known-label' }, 'Known at diagnosis'), `: ${items.join('; ')}. ${not}`);
  }
  known.hidden = model.known.length === 0;
}

function renderTable(model) {
  const body = $('values-body');
  body.replaceChildren();
  const names = { crp: 'CRP', esr: 'ESR', pain: 'Pain' };
  const rows = ['crp', 'esr', 'pain'].flatMap((k) => model.series[k].map((p) => ({ ...p, name: names[k] })));
  rows.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.name.localeCompare(b.name)));
  for (const p of rows) {
    const notes = [];
    if (p.baseline) notes.push('baseline');
    if (p.earliestRead) notes.push('earliest read: older results were not read');
    if (p.used) notes.push('used by the decision');
    if (p.reported) notes.push(`reported ${p.reported}`);
    if (p.hs) notes.push('high-sensitivity CRP');
    if (p.comparator) notes.push(`reported as ${p.comparator}${formatNumber(p.value)}`);
    const tr = el('tr', { 'data-ref': p.reference, 'data-kind': p.kind },
      el('td', {}, p.day), el('td', {}, String(p.x)), el('th', { scope: 'row' }, p.name),
      el('td', { class: 'num' }, formatNumber(p.value)), el('td', {}, p.unit), el('td', {}, notes.join('; ')));
    if (p.used) tr.className = 'used';
    body.append(tr);
  }
  const flags = $('flags-body');
  flags.replaceChildren();
  for (const m of model.markers) {
    const kind = m.kind + (m.known ? `; ${KNOWN}, not a new red flag` : '') + (m.used ? '; named by the card' : '');
    flags.append(el('tr', { 'data-ref': m.reference, 'data-known': m.known ? 'true' : 'false' },
      el('td', {}, m.day ?? 'undated'), el('td', {}, m.x === null ? '' : String(m.x)),
      el('th', { scope: 'row' }, m.label), el('td', {}, kind)));
  }
  $('flags').hidden = model.markers.length === 0;
}

function chartSummary(model) {
  const parts = [];
  if (model.t0) parts.push(`T0 (day 0): ${model.t0Text ?? model.t0}`);
  for (const [kind, s] of Object.entries(SERIES)) {
    const pts = model.series[kind];
    if (pts.length) parts.push(`${s.label}: ${pts.map((p) => `${formatNumber(p.value)} on day ${p.x}`).join(', ')}`);
  }
  for (const m of model.markers) parts.push(`${m.kind}: ${m.label}${m.known ? `, ${KNOWN}` : ''}${m.x !== null ? ` on day ${m.x}` : ''}`);
  return `Chart of the values in the table below. ${parts.join('. ')}.`;
}

async function main() {
  const state = document.body;
  try {
    const page = pageSettings();
    // What the service reads (its searches, codes, statuses, units, settings in force):
    // the service writes it into this page; the app holds no copy of it.
    const { service } = page;
    if (!service?.queries || !service?.codes || !service?.thresholds) {
      throw new Error('the page does not say what the service reads: open the app from the EHR again');
    }
    // The launch page checked the server's endpoints; checked again before the code goes
    // to the token endpoint (guard.js).
    const refused = stateProblem(savedState(new URLSearchParams(window.location.search).get('state')),
      undefined, page.devMode === true);
    if (refused) throw new Error(`the FHIR server's SMART configuration is refused: ${refused}`);
    const client = await FHIR.oauth2.ready();
    const patientId = client.patient.id;
    if (!patientId) throw new Error('the launch gave no patient (for an open server, add patientId to the launch URL)');
    const { context, problem } = parseAppContext(client.state.tokenResponse?.appContext, patientId);
    const [data, patient] = await Promise.all([
      readAll(client, service),
      client.request(`Patient/${encodeURIComponent(patientId)}`).catch(() => null),
    ]);
    const model = buildModel({ patientId, data, context, service, today: new Date().toISOString().slice(0, 10) });
    $('patient').textContent = patientName(patient) ? `${patientName(patient)} (${patientId})` : patientId;
    renderT0(model);
    renderDecision(model);
    renderMessages(model, problem ? [{ level: 'info', text: problem }] : []);
    renderKey(model);
    renderTable(model);
    $('chart').setAttribute('aria-label', chartSummary(model));
    const chart = draw(model);
    window.spineTrend = { model, chart, open: !client.state.tokenResponse?.access_token };
    state.dataset.state = 'ready';
  } catch (err) {
    const box = $('fatal');
    box.textContent = `The trend could not be shown: ${err && err.message ? err.message : err}`;
    box.hidden = false;
    state.dataset.state = 'error';
  }
}

main();
