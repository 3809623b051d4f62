// What the app checks before it sends the user, the authorization code or the token
// anywhere. The service serves the launch page only for a FHIR server (`iss`) on its
// allowlist, and says so in the page's `spine-cds-launch` element, with the mode
// (cds_service/routes/trend_app.py); here the app holds the SMART configuration that
// server names to the same care: the authorization and token endpoints must be https
// (plain http on the loopback interface in development mode only), never `javascript:`
// or another scheme, and a search's `next` link is followed only on the FHIR server's
// own origin, since fhirclient sends the bearer token with every request it makes.

// The page's element, filled in by the service: {server, devMode} on the launch page,
// {devMode, service} on the app's page (service: what the app reads as the service does,
// cds_service/trend_link.py service_facts); {} when it is missing or unreadable.
export function pageSettings(doc = document) {
  const meta = doc.querySelector('meta[name="spine-cds-launch"]');
  try {
    const value = JSON.parse(meta?.getAttribute('content') || '{}');
    return value && typeof value === 'object' ? value : {};
  } catch {
    return {};
  }
}

// The WHATWG parser (the one fetch and navigation use) has already turned 127.1 or
// 2130706433 into 127.0.0.1 by the time this sees a hostname.
export function isLoopback(hostname) {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function quoted(url) {
  const text = String(url);
  return `"${text.length > 120 ? `${text.slice(0, 120)}…` : text}"`;
}

// Why `url` cannot be the authorization or token endpoint (`what`), or null.
export function endpointProblem(url, what, devMode) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    return `its ${what} ${quoted(url)} is not an absolute URL`;
  }
  if (parsed.protocol === 'https:') return null;
  if (parsed.protocol === 'http:' && devMode && isLoopback(parsed.hostname)) return null;
  const allowed = devMode ? 'https (or http on the loopback interface, in development mode)' : 'https';
  return `its ${what} ${quoted(url)} is not ${allowed}`;
}

// Why the SMART state fhirclient saved for this launch must not be used, or null:
// another server than the approved one, or an unsafe authorization or token endpoint.
// An open server (no authorization endpoint) has neither endpoint to check.
export function stateProblem(state, server, devMode) {
  if (!state || typeof state !== 'object') return 'the launch was not saved';
  if (server !== undefined && state.serverUrl !== server) return 'the FHIR server changed during the launch';
  if (!state.authorizeUri) {
    return state.tokenUri ? 'it names a token endpoint but no authorization endpoint' : null;
  }
  return endpointProblem(state.authorizeUri, 'authorization endpoint', devMode)
    ?? endpointProblem(state.tokenUri, 'token endpoint', devMode);
}

// fhirclient's state for a launch, as its BrowserStorage keeps it: the one named by
// `key` (the `state` parameter of the return to /trend/), else the current one.
export function savedState(key = null, storage = window.sessionStorage) {
  try {
    const name = key || JSON.parse(storage.getItem('SMART_KEY') ?? 'null');
    return name ? JSON.parse(storage.getItem(name) ?? 'null') : null;
  } catch {
    return null;
  }
}

// The URL fhirclient would request for a `next` link (its lib.js `absolute`), when that is
// on the FHIR server's origin and under its base path; null otherwise (the token must not
// go there: another host, or another path of the same host such as another tenant's).
export function sameServerUrl(link, serverUrl) {
  if (typeof link !== 'string' || !link) return null;
  const base = String(serverUrl ?? '');
  const target = /^(http|urn)/.test(link) ? link : `${base.replace(/\/+$/, '')}/${link.replace(/^\/+/, '')}`;
  try {
    const to = new URL(target);
    const from = new URL(base);
    const path = from.pathname.replace(/\/+$/, '');
    const under = to.pathname === path || to.pathname.startsWith(`${path}/`);
    const climbs = hasDotSegments(to.pathname);
    return to.origin === from.origin && under && !climbs ? target : null;
  } catch {
    return null;
  }
}

// Whether `pathname` has a `.` or `..` segment in a spelling the server or a proxy may
// resolve though the URL parser did not: escaped (..%2F), escaped twice or more
// (%252e%252e), with a path parameter (Tomcat reads `..;/` as `../`), behind a backslash
// or in fullwidth forms NFKC folds to dots; a NUL (servers cut there) or a path still
// escaped after four rounds of decoding counts too. Mirrors cds_service/fhir/urls.py.
export function hasDotSegments(pathname) {
  let decoded = String(pathname);
  for (let round = 0; ; round += 1) {
    const once = decodeURIComponent(decoded);
    if (once === decoded) break;
    if (round === 4) return true;
    decoded = once;
  }
  if (decoded.includes('\0')) return true;
  return decoded.normalize('NFKC').split(/[/\\]/).some((s) => {
    const name = s.split(';', 1)[0];
    return name === '.' || name === '..';
  });
}
