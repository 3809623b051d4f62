// The SMART launch URL (/trend/launch). An EHR launch brings `iss` (its FHIR server)
// and `launch` (the launch context, which holds the card's appContext); fhirclient reads
// the server's .well-known/smart-configuration and builds the authorization URL with
// PKCE (S256); the user then comes back to /trend/ with a code. A server without an
// authorization endpoint is an open server (sandboxes): the app goes straight on to
// /trend/ and reads without a token (the patient then comes from `patientId`).
// The service serves this page only for an approved FHIR server, named in the page
// (guard.js); the app goes on only when the URL names that same server and the server's
// endpoints pass the checks of guard.js.
import FHIR from 'fhirclient';
import { CLIENT_ID, SCOPES } from './config.js';
import { pageSettings, savedState, stateProblem } from './guard.js';

const status = document.getElementById('launch-status');
const params = new URLSearchParams(window.location.search);
const page = pageSettings();
const devMode = page.devMode === true;
// fhirclient takes the server from the URL: `iss`, else `fhirServiceUrl`.
const named = params.get('iss') || params.get('fhirServiceUrl');

function refuse(text) {
  status.textContent = text;
  status.setAttribute('role', 'alert');
  document.body.dataset.state = 'refused';
}

async function launch() {
  const url = await FHIR.oauth2.authorize({
    clientId: CLIENT_ID,
    scope: SCOPES,
    redirectUri: './',
    pkceMode: 'required',
    completeInTarget: true,
    noRedirect: true, // checked below before the user is sent anywhere
  });
  const problem = stateProblem(savedState(), page.server, devMode);
  if (problem) {
    window.sessionStorage.clear(); // nothing of this launch may be used by /trend/
    refuse(`The trend app was not started: the FHIR server's SMART configuration is refused: ${problem}.`);
    return;
  }
  window.location.assign(url);
}

if (!named) {
  refuse('This page is the SMART launch URL of the trend app: open it from the EHR '
    + '(or from a card\'s link). It needs the "iss" parameter, the EHR\'s FHIR server.');
} else if (typeof page.server !== 'string' || named !== page.server) {
  refuse('The trend app was not started: the service did not approve this FHIR server.');
} else {
  launch().catch((err) => {
    refuse(`The launch failed: ${err && err.message ? err.message : err}`);
  });
}
