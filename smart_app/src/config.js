// The client id to register with the EHR (a public client: no secret, PKCE). An EHR
// that assigns another one can pass it as the launch URL's `clientId` parameter.
export const CLIENT_ID = 'spine-cds-trend';
// Read-only, patient-level: the patient's name, Conditions and Observations.
export const SCOPES = 'launch patient/Patient.read patient/Observation.read patient/Condition.read';
// The same searches as the service's prefetch templates (hooks.json), read by key in
// trend.js. The values below copy the service's; tests/cards/test_trend_app_config.py
// fails when they differ from hooks.json or the settings' defaults.
export const QUERIES = {
  conditions: 'Condition?patient={patient}&_count=100',
  crp: 'Observation?patient={patient}&code=http://loinc.org|1988-5,http://loinc.org|30522-7,http://loinc.org|71426-1,http://loinc.org|76485-2&_sort=-date&_count=100',
  esr: 'Observation?patient={patient}&code=http://loinc.org|4537-7,http://loinc.org|30341-2&_sort=-date&_count=100',
  pain: 'Observation?patient={patient}&code=http://loinc.org|72514-3,http://loinc.org|38208-5&_sort=-date&_count=100',
};
// Pages read per search before the app says the data were cut off.
export const MAX_PAGES = 10;
// Used when the app is launched without a card (no thresholds in appContext): the
// service's defaults (docs/settings.md).
export const DEFAULT_THRESHOLDS = {
  plateauMinFallPct: 25, risePct: 20, riseAfterDays: 14, plateauAfterDays: 28,
  painWorsePoints: 2, crpNormalMgL: 10, baselineWindowDays: 7, dataLookbackDays: 7,
  crpMaxAgeDays: 7, antibioticBeforeDays: 14, antibioticAfterDays: 28,
};
export const CRP_MOLAR_FACTOR = 9.524; // nmol/L per mg/L (setting crp_molar_factor)
// CRP mass concentrations by their factor to mg/L, keyed lower-case without UCUM
// annotations (the service's table in fhir_mappers/observations_careful.py).
export const CRP_MASS_TO_MG_PER_L = { 'mg/l': 1, 'mg/dl': 10, 'g/l': 1000, 'ug/ml': 1 };
