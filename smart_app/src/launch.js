// The SMART launch URL (/trend/launch). An EHR launch brings `iss` (its FHIR server)
// and `launch` (the launch context, which holds the card's appContext); fhirclient reads
// the server's .well-known/smart-configuration and sends the user to its authorization
// endpoint with PKCE (S256), then to /trend/ with a code. A server without an
// authorization endpoint is an open server (sandboxes): fhirclient goes straight on to
// /trend/ and the app reads without a token (the patient then comes from `patientId`).
import FHIR from 'fhirclient';
import { CLIENT_ID, SCOPES } from './config.js';

const status = document.getElementById('launch-status');
const params = new URLSearchParams(window.location.search);

if (!params.get('iss') && !params.get('fhirServiceUrl')) {
  status.textContent = 'This page is the SMART launch URL of the trend app: open it from the EHR '
    + '(or from a card\'s link). It needs the "iss" parameter, the EHR\'s FHIR server.';
} else {
  FHIR.oauth2.authorize({
    clientId: CLIENT_ID,
    scope: SCOPES,
    redirectUri: './',
    pkceMode: 'required',
    completeInTarget: true,
  }).catch((err) => {
    status.textContent = `The launch failed: ${err && err.message ? err.message : err}`;
    status.setAttribute('role', 'alert');
  });
}
