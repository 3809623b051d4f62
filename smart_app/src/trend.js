// From FHIR resources, the card's appContext and what the service reads (the page's
// `service`: cds_service/trend_link.py service_facts) to what the page draws: no DOM, no
// network, so the model is the same whichever way the app was launched. It follows the
// service's reading of the data (docs/clinical-logic.md, "Which values count"), with the
// service's own codes, statuses, units and factors: each value read by the kind of its
// code, the statuses that count, CRP in mg/L (mass units by their factor, nmol/L by the
// molar factor, or left out when the service reads no molar CRP), hs-CRP only when no
// standard CRP counts, CRP and ESR from T0 - lookback, pain from T0. The words of the
// decision (its summary, the rules' short phrases, where T0 came from) are the card's.
import conditionCodes from '../../cds_service/valuesets/conditions.json';
import imagingConditionCodes from '../../cds_service/valuesets/conditions-imaging.json';

const ICD10CM = 'http://hl7.org/fhir/sid/icd-10-cm';
// The service's shipped condition value sets (a site's own codes are the service's to read).
const CONDITION_ENTRIES = [...conditionCodes.entries, ...imagingConditionCodes.entries];
const RED_FLAG_CATEGORIES = {
  'neuro-deficit': 'Neurologic deficit',
  complication: 'Complication',
  mechanical: 'Mechanical complication',
};
const DAY_MS = 86400000;

function normaliseCode(system, code) {
  const c = String(code).trim();
  return system === ICD10CM ? c.replace(/\./g, '').toUpperCase() : c;
}

// Exact entries win over prefixes, longer prefixes over shorter ones (as the service's value sets).
export function conditionCategory(codings) {
  let best = null;
  for (const coding of codings ?? []) {
    if (!coding?.system || !coding?.code) continue;
    const code = normaliseCode(coding.system, coding.code);
    for (const entry of CONDITION_ENTRIES) {
      if (entry.system !== coding.system) continue;
      const wanted = normaliseCode(entry.system, entry.code);
      const rank = entry.match === 'exact' ? (code === wanted ? 1000 : -1)
        : (code.startsWith(wanted) ? wanted.length : -1);
      if (rank >= 0 && (best === null || rank > best.rank)) best = { rank, category: entry.category };
    }
  }
  return best ? best.category : null;
}

function dayOf(text) {
  if (typeof text !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(text)) return null;
  return text.slice(0, 10);
}

export function daysBetween(fromDay, toDay) {
  return Math.round((Date.parse(`${toDay}T00:00:00Z`) - Date.parse(`${fromDay}T00:00:00Z`)) / DAY_MS);
}

function addDays(day, n) {
  return new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);
}

function observationDay(obs) {
  return dayOf(obs.effectiveDateTime) ?? dayOf(obs.effectiveInstant)
    ?? dayOf(obs.effectivePeriod?.start) ?? dayOf(obs.issued);
}

// The instant, for ordering values of the same day (a discordant pair hours apart); null
// for a date-only value.
function observationInstant(obs) {
  const text = obs.effectiveDateTime ?? obs.effectiveInstant ?? obs.effectivePeriod?.start ?? obs.issued;
  if (typeof text !== 'string' || !text.includes('T')) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

// How the service reads a value: the kind of the first of its codings that the search
// asks for (the service's select_code), from the service's codes for that search
// ({"system|code": kind}); null for a code the search does not ask for.
function codeKind(resource, codes) {
  for (const coding of resource.code?.coding ?? []) {
    if (typeof coding?.system !== 'string' || typeof coding?.code !== 'string') continue;
    const key = `${coding.system}|${coding.code}`;
    if (codes && Object.hasOwn(codes, key)) return codes[key];
  }
  return null;
}

function aboutPatient(resource, patientId) {
  const subject = resource.subject ?? resource.patient;
  if (!subject) return true;
  const ref = subject.reference ?? '';
  return ref === `Patient/${patientId}` || ref.endsWith(`/Patient/${patientId}`);
}

function round(value, digits = 1) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function upperFirst(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

export function formatNumber(value) {
  return Number.isInteger(value) ? String(value) : String(round(value, 1));
}

// A unit as the service compares it: lower-case, UCUM annotations ("mg/L{CRP}") dropped.
function unitKey(unit) {
  return String(unit ?? '').replace(/\{[^{}]*\}/g, '').trim().toLowerCase();
}

// The units of a quantity as the service weighs them: the (UCUM) code, then the text.
function unitsOf(q) {
  return [q.code, q.unit].filter((u) => typeof u === 'string' && u.trim()).map((u) => u.trim());
}

// The scale of a unit the service knows (a mass unit's factor to mg/L, 'molar', 'rate'),
// undefined for another: a unit text and code of different scale say two values, and the
// service takes neither.
function scaleOf(unit, service) {
  const u = unitKey(unit);
  if (Object.hasOwn(service.crpMassToMgL, u)) return service.crpMassToMgL[u];
  if (service.crpMolarUnits.includes(u)) return 'molar';
  return service.esrUnits.includes(u) ? 'rate' : undefined;
}

function unitsDisagree(units, service) {
  if (units.length !== 2) return false;
  const [code, text] = units.map((u) => scaleOf(u, service));
  return code !== undefined && text !== undefined && code !== text;
}

// A value as the service reads a code of its kind, in the unit drawn: {value, unit,
// reported} or {skip: why}.
function reading(kind, q, service) {
  const units = unitsOf(q);
  const shown = units.join(' / ') || 'missing';
  if (unitsDisagree(units, service)) return { skip: 'unit text and code disagree' };
  if (kind === 'crp-molar') {
    const unit = units.find((u) => service.crpMolarUnits.includes(unitKey(u)));
    if (!unit) return { skip: `unit ${shown} is not a molar CRP unit` };
    return { value: q.value / service.crpMolarFactor, unit: 'mg/L', reported: `${formatNumber(q.value)} ${unit}` };
  }
  if (kind === 'crp' || kind === 'crp-hs') {
    const unit = units.find((u) => Object.hasOwn(service.crpMassToMgL, unitKey(u)));
    if (!unit) return { skip: `unit ${shown} could not be converted` };
    const factor = service.crpMassToMgL[unitKey(unit)];
    const reported = unitKey(unit) === 'mg/l' ? null : `${formatNumber(q.value)} ${unit}`;
    return { value: q.value * factor, unit: 'mg/L', reported };
  }
  if (!units.some((u) => service.esrUnits.includes(unitKey(u)))) return { skip: `unit ${shown} is not an ESR unit` };
  return { value: q.value, unit: 'mm/h', reported: null };
}

// One search's Observations -> points, and what was left out (counted by reason). Each
// value is read by the kind of its code, as the service reads it (`service.codes`).
function readSeries(resources, patientId, key, service) {
  const points = [];
  const leftOut = {};
  const skip = (why) => { leftOut[why] = (leftOut[why] ?? 0) + 1; };
  const counted = new Set(service.statuses);
  for (const obs of resources) {
    if (obs?.resourceType !== 'Observation') continue;
    if (!aboutPatient(obs, patientId)) { skip('about another patient'); continue; }
    const kind = codeKind(obs, service.codes?.[key]);
    if (!kind) { skip('another code'); continue; }
    if (kind === 'crp-molar' && !service.crpMolarFactor) { skip('in nmol/L (the service reads no molar CRP)'); continue; }
    if (!counted.has(obs.status)) { skip(`status ${obs.status ?? 'missing'}`); continue; }
    const day = observationDay(obs);
    if (!day) { skip('no date'); continue; }
    // Pain may come as valueInteger (as the service reads it) or as a quantity.
    const q = key === 'pain' && Number.isInteger(obs.valueInteger)
      ? { value: obs.valueInteger } : obs.valueQuantity;
    if (typeof q?.value !== 'number' || !Number.isFinite(q.value)) { skip('no numeric value'); continue; }
    const point = {
      reference: `Observation/${obs.id}`, day, at: observationInstant(obs), value: q.value, unit: '0-10', reported: null,
      comparator: q.comparator ?? null, kind: key, hs: kind === 'crp-hs',
    };
    if (key === 'pain') {
      if (q.value < 0 || q.value > 10) { skip('outside the 0-10 scale'); continue; }
    } else {
      const read = reading(kind, q, service);
      if (read.skip) { skip(read.skip); continue; }
      if (read.value < 0) { skip('negative value'); continue; }
      Object.assign(point, read);
    }
    points.push(point);
  }
  return { points, leftOut };
}

function conditionDay(c) {
  return dayOf(c.onsetDateTime) ?? dayOf(c.onsetPeriod?.start) ?? dayOf(c.recordedDate);
}

function statusCode(concept) {
  return concept?.coding?.[0]?.code ?? null;
}

function isActiveValid(c) {
  const clinical = statusCode(c.clinicalStatus);
  const verification = statusCode(c.verificationStatus);
  const active = clinical ? ['active', 'recurrence', 'relapse'].includes(clinical)
    : !c.abatementDateTime && !c.abatementPeriod && !c.abatementString && !c.abatementAge;
  return active && !['refuted', 'entered-in-error'].includes(verification);
}

function conditionLabel(c) {
  const coding = (c.code?.coding ?? []).find((x) => x.display) ?? c.code?.coding?.[0];
  return c.code?.text ?? coding?.display ?? coding?.code ?? 'Condition';
}

// Every "reference" the card's result names: the values and conditions the decision used.
function referencesIn(value, into = new Set()) {
  if (Array.isArray(value)) value.forEach((v) => referencesIn(v, into));
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') into.add(v);
      else referencesIn(v, into);
    }
  }
  return into;
}

// A string the card sent, or null (an empty or missing one, or another type).
const sentText = (value) => (typeof value === 'string' && value ? value : null);

export function parseAppContext(raw, patientId) {
  if (raw === undefined || raw === null || raw === '') {
    return { context: null, problem: 'Opened without a card: the trend is shown without the service\'s decision.' };
  }
  let context = raw;
  if (typeof raw === 'string') {
    try { context = JSON.parse(raw); } catch { context = null; }
  }
  if (!context || typeof context !== 'object' || context.v !== 1) {
    return { context: null, problem: 'The card\'s context could not be read: the trend is shown without the service\'s decision.' };
  }
  if (context.patient !== patientId) {
    return { context: null, problem: 'The card was about another patient: its decision is not shown here.' };
  }
  return { context, problem: null };
}

// `service`: what the service reads, from the app's page (trend_link.service_facts);
// the card's thresholds, when there is a card, are those its decision used.
export function buildModel({ patientId, data, context, today, service }) {
  const messages = [];
  const thresholds = { ...service.thresholds, ...(context?.thresholds ?? {}) };

  // Conditions: the episode (for T0 when there is no card) and the red flags.
  const conditions = (data.conditions?.resources ?? []).filter(
    (c) => c?.resourceType === 'Condition' && aboutPatient(c, patientId),
  );
  let t0 = context?.episode?.t0 ?? null;
  const episodeCategories = new Set(service.episodeCategories);
  // Where T0 came from, in the card's words (cards/episode_line.py t0_phrase); without
  // them (no card, or a card that does not say) the app says nothing about it.
  const t0Text = context?.episode?.t0 ? sentText(context.t0Text) : null;
  if (!t0) {
    const episodes = conditions
      .filter((c) => isActiveValid(c) && episodeCategories.has(conditionCategory(c.code?.coding)))
      .map((c) => conditionDay(c)).filter(Boolean).sort();
    if (episodes.length) t0 = episodes.at(-1);
  }

  const series = {};
  const leftOut = {};
  for (const kind of ['crp', 'esr', 'pain']) {
    const read = readSeries(data[kind]?.resources ?? [], patientId, kind, service);
    series[kind] = read.points;
    leftOut[kind] = read.leftOut;
  }
  // hs-CRP only when no standard CRP counts (as the service).
  const standard = series.crp.filter((p) => !p.hs);
  const hsUsed = standard.length === 0 && series.crp.length > 0;
  if (!hsUsed && series.crp.length > standard.length) {
    leftOut.crp['high-sensitivity CRP (standard CRP is on record)'] = series.crp.length - standard.length;
  }
  series.crp = hsUsed ? series.crp : standard;

  if (!t0) {
    const firstDays = [...series.crp, ...series.esr, ...series.pain].map((p) => p.day).sort();
    if (firstDays.length) {
      t0 = firstDays[0];
      messages.push({ level: 'warning', text: 'No treatment start (T0) was found: days are counted from the first value.' });
    }
  }
  // The windows the service counts: CRP and ESR from T0 - lookback, pain from T0.
  if (t0) {
    const from = { crp: addDays(t0, -thresholds.dataLookbackDays), esr: addDays(t0, -thresholds.dataLookbackDays), pain: t0 };
    for (const kind of ['crp', 'esr', 'pain']) {
      const before = series[kind].filter((p) => p.day < from[kind]).length;
      if (before) leftOut[kind][kind === 'pain' ? 'before treatment start' : `before day -${thresholds.dataLookbackDays}`] = before;
      series[kind] = series[kind].filter((p) => p.day >= from[kind]);
    }
  }
  const used = referencesIn(context ?? {});
  for (const kind of ['crp', 'esr', 'pain']) {
    series[kind].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : (a.at ?? 0) - (b.at ?? 0)));
    for (const p of series[kind]) {
      p.x = t0 ? daysBetween(t0, p.day) : 0;
      p.used = used.has(p.reference);
    }
  }

  // Baseline: the card's, else the highest CRP within T0 +/- window, else the first after T0.
  // A CRP search cut off short of the window (newest first: the oldest are the ones not
  // read), the card's or this page's own, gives no baseline: its earliest value read may
  // not be it, so it is drawn as what it is, with no fall line (as the card says it).
  let baseline = null;
  let earliest = null;
  const w = thresholds.baselineWindowDays;
  const ownShort = Boolean(data.crp?.cutOff) && !series.crp.some((p) => p.x <= -w);
  if (context?.crp?.baseline) {
    baseline = { value: context.crp.baseline.value, reference: context.crp.baseline.reference };
  } else if (context?.crp?.earliestRead) {
    earliest = { value: context.crp.earliestRead.value, reference: context.crp.earliestRead.reference };
  } else if (t0 && series.crp.length && ownShort) {
    const pick = series.crp[0];
    earliest = { value: pick.value, reference: pick.reference };
  } else if (t0 && series.crp.length) {
    const inWindow = series.crp.filter((p) => Math.abs(p.x) <= w);
    const pick = inWindow.length ? inWindow.reduce((a, b) => (b.value > a.value ? b : a))
      : series.crp.find((p) => p.x > 0);
    if (pick) baseline = { value: pick.value, reference: pick.reference };
  }
  for (const p of series.crp) {
    p.baseline = baseline?.reference === p.reference;
    p.earliestRead = earliest?.reference === p.reference;
  }

  const lines = [];
  if (earliest) {
    lines.push({ id: 'earliest', axis: 'y', value: round(earliest.value, 2), label: `Earliest CRP read ${formatNumber(earliest.value)} mg/L (older results not read)` });
  }
  if (baseline) {
    lines.push({ id: 'baseline', axis: 'y', value: round(baseline.value, 2), label: `Baseline CRP ${formatNumber(baseline.value)} mg/L` });
    const fall = baseline.value * (1 - thresholds.plateauMinFallPct / 100);
    lines.push({ id: 'fall', axis: 'y', value: round(fall, 2), label: `${formatNumber(thresholds.plateauMinFallPct)}% fall from baseline: ${formatNumber(fall)} mg/L` });
  }
  lines.push({ id: 'normal', axis: 'y', value: thresholds.crpNormalMgL, label: `CRP normal limit ${formatNumber(thresholds.crpNormalMgL)} mg/L` });
  const dayMarks = [];
  if (t0) {
    // T0's own mark, labelled with where it came from when the card says so.
    const short = { 'antibiotic-order': 'first antibiotic order', 'episode-date': 'infection recorded' };
    const from = t0Text ? short[context.episode.t0Source] : null;
    dayMarks.push({ id: 't0', x: 0, label: from ? `T0: ${from}` : 'T0', text: t0Text });
    dayMarks.push({ id: 'plateau-day', x: thresholds.plateauAfterDays, label: `Day ${thresholds.plateauAfterDays}` });
    if (context?.evaluationDay) {
      const x = daysBetween(t0, context.evaluationDay);
      dayMarks.push({ id: 'order', x, label: `Order (day ${x})` });
    }
  }

  // Red flags as dated markers: neurologic deficits and complications that are active and
  // valid, and any condition the card's rules named. Those the card says were known at
  // diagnosis are marked so (never a new red flag), with the card's name and date.
  const markers = [];
  const namedByRules = referencesIn(context?.rulesFired ?? []); // not the episode itself
  const knownByRef = new Map((context?.knownAtDiagnosis ?? [])
    .filter((k) => k && typeof k.reference === 'string').map((k) => [k.reference, k]));
  const xOf = (day) => (day && t0 ? daysBetween(t0, day) : null);
  for (const c of conditions) {
    const ref = `Condition/${c.id}`;
    const category = conditionCategory(c.code?.coding);
    const named = namedByRules.has(ref);
    const known = knownByRef.get(ref);
    if (!(category in RED_FLAG_CATEGORIES) && !named && !known) continue;
    if (!isActiveValid(c) && !named && !known) continue;
    const day = conditionDay(c);
    markers.push({
      reference: ref, label: conditionLabel(c),
      kind: RED_FLAG_CATEGORIES[category] ?? RED_FLAG_CATEGORIES[known?.category] ?? 'Named by the card',
      day, x: xOf(day), used: named, known: Boolean(known),
    });
  }
  // A known finding the app did not read (a code only the site's lists know, a failed
  // search) is still marked, from the card.
  for (const [ref, k] of knownByRef) {
    if (markers.some((m) => m.reference === ref)) continue;
    const day = dayOf(k.start);
    markers.push({
      reference: ref, label: upperFirst(k.name ?? 'Condition'),
      kind: RED_FLAG_CATEGORIES[k.category] ?? 'Named by the card', day, x: xOf(day), used: false, known: true,
    });
  }
  markers.sort((a, b) => (a.x ?? 1e9) - (b.x ?? 1e9));
  // What the card says was known at diagnosis: its clinical name and date.
  const known = [...knownByRef.values()].map((k) => ({
    reference: k.reference, name: k.name ?? 'a condition', day: dayOf(k.start), x: xOf(dayOf(k.start)),
  }));

  // What is missing or cut off.
  const names = { conditions: 'diagnosis', crp: 'CRP', esr: 'ESR', pain: 'pain score' };
  for (const key of ['conditions', 'crp', 'esr', 'pain']) {
    const d = data[key];
    if (d?.error) messages.push({ level: 'error', text: `The ${names[key]} search failed (${d.error}): those values are missing below.` });
    if (d?.cutOff) messages.push({ level: 'warning', text: `The ${names[key]} search was cut off after ${d.pages} pages: older values may be missing.` });
    if (d?.offServer) messages.push({ level: 'warning', text: `The ${names[key]} search's next page is on another server than the EHR's FHIR server: it was not read (the sign-in is never sent there), so older values may be missing.` });
  }
  for (const kind of ['crp', 'esr', 'pain']) {
    if (!data[kind]?.error && series[kind].length === 0) messages.push({ level: 'warning', text: `No ${names[kind]} on record for this episode.` });
    const parts = Object.entries(leftOut[kind]).map(([why, n]) => `${n} ${why}`);
    if (parts.length) messages.push({ level: 'info', text: `${names[kind][0].toUpperCase()}${names[kind].slice(1)} values not drawn: ${parts.join('; ')}.` });
  }
  if (hsUsed) messages.push({ level: 'info', text: 'Only high-sensitivity CRP is on record: it is drawn as CRP.' });
  if (context?.evaluationDay && today && today > context.evaluationDay) {
    const later = [...series.crp, ...series.esr, ...series.pain].filter((p) => p.day > context.evaluationDay).length;
    if (later) messages.push({ level: 'info', text: `${later} value(s) are newer than the order the card was about (${context.evaluationDay}): the decision did not see them.` });
  }

  // The decision in the card's words: its summary, and each fired rule's short phrase.
  const decision = context ? {
    recommendation: context.recommendation,
    summary: sentText(context.reason),
    rules: (Array.isArray(context.ruleShorts) ? context.ruleShorts : []).map(sentText).filter(Boolean),
    missing: context.missing ?? [],
    unmet: context.unmet ?? [],
  } : null;

  return {
    patientId, t0, t0Text, thresholds, series, baseline, lines, dayMarks, markers, known, messages, decision,
  };
}
