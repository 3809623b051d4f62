// The client id to register with the EHR (a public client: no secret, PKCE). An EHR
// that assigns another one can pass it as the launch URL's `clientId` parameter.
export const CLIENT_ID = 'spine-cds-trend';
// Read-only, patient-level: the patient's name, Conditions and Observations.
export const SCOPES = 'launch patient/Patient.read patient/Observation.read patient/Condition.read';
// What the app reads as the service does (its searches, how each code is read, the
// statuses that count, the units, the molar CRP factor, the pages followed, the
// thresholds in force) is not copied here: the service puts it in the app's page
// (cds_service/trend_link.py service_facts), read with guard.js pageSettings.
