"""The edges of "Reading the data" (clinical-rules.md), through the mappers.

CRP values of 0 and between 0 and 1 mg/L are values, not missing data; only a negative
value is skipped; molar CRP at the normal limit stays at the limit after conversion;
pain is a 0-10 score, both ends included; Condition dates keep their time and offset so
that the engine can count days in T0's zone. The last tests run raw FHIR through the
mappers and the engine together, as a request does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cds_service.engine import Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import MeasurementKind, PatientData
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.orders import map_orders

VS = load_value_sets()
LOINC = "http://loinc.org"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
MOLAR = MappingOptions(crp_molar_factor_nmol_per_mg=9.524)


def observation(
    oid: str, code: str, value: float, unit: str, when: str = "2024-03-10", **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }
    resource.update(extra)
    return resource


def mapped(resource: dict[str, Any], options: MappingOptions = MOLAR) -> tuple[Any, Any]:
    return map_observations([resource], VS, options)


@pytest.mark.parametrize(
    ("code", "value", "unit", "expected"),
    [
        ("1988-5", 0, "mg/L", 0.0),
        ("1988-5", 0.0, "mg/dL", 0.0),
        ("1988-5", 0.4, "mg/L", 0.4),
        ("1988-5", 0.05, "mg/dL", 0.5),
        ("30522-7", 0.8, "mg/L", 0.8),
        ("76485-2", 0, "nmol/L", 0.0),
        ("76485-2", 4.762, "nmol/L", 0.5),
    ],
    ids=["zero", "zero-mg-dl", "below-1", "below-1-mg-dl", "hs-below-1", "zero-molar", "molar-0.5"],
)
def test_a_crp_of_0_or_below_1_mg_l_is_a_value(
    code: str, value: float, unit: str, expected: float
) -> None:
    measurements, issues = mapped(observation("c", code, value, unit))
    assert issues == ()
    assert [(m.kind, m.value, m.unit) for m in measurements] == [
        (MeasurementKind.CRP, pytest.approx(expected), "mg/L")
    ]


@pytest.mark.parametrize("value", [-0.001, -1])
def test_only_a_negative_crp_is_skipped(value: float) -> None:
    measurements, issues = mapped(observation("c", "1988-5", value, "mg/L"))
    assert measurements == ()
    assert [i.kind for i in issues] == ["crp"]
    assert "negative" in issues[0].reason


def test_an_esr_of_0_is_a_value() -> None:
    measurements, issues = mapped(observation("e", "4537-7", 0, "mm/h"))
    assert issues == () and [m.value for m in measurements] == [0.0]


@pytest.mark.parametrize(("value", "kept"), [(0, True), (10, True), (-1, False), (10.5, False)])
def test_pain_is_a_score_from_0_to_10_both_ends_included(value: float, kept: bool) -> None:
    resource = observation("p", "72514-3", value, "{score}")
    measurements, issues = mapped(resource)
    assert [m.value for m in measurements] == ([float(value)] if kept else [])
    assert len(issues) == (0 if kept else 1)


def test_molar_crp_at_the_normal_limit_stays_at_the_limit() -> None:
    # 95.24 nmol/L / 9.524 = 10 mg/L: float noise must not put it just below the limit.
    measurements, _ = mapped(observation("m", "76485-2", 95.24, "nmol/L"))
    assert measurements[0].value == 10.0
    assert measurements[0].value >= RuleSettings().crp_normal_mg_l


def test_since_keeps_a_value_on_the_same_day_and_drops_the_day_before() -> None:
    options = MappingOptions(since=datetime(2024, 2, 26, 12, tzinfo=UTC))
    same_day = observation("a", "1988-5", 5, "mg/L", when="2024-02-26")
    day_before = observation("b", "1988-5", 5, "mg/L", when="2024-02-25T23:00:00Z")
    later = observation("c", "1988-5", 5, "mg/L", when="2024-03-01")
    measurements, issues = map_observations([same_day, day_before, later], VS, options)
    assert issues == ()
    assert [m.reference for m in measurements] == ["Observation/a", "Observation/c"]


# --- Conditions around a timed T0, raw FHIR through the mappers and the engine ------------


def condition(cid: str, code: str, **dates: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": {"coding": [{"system": ICD, "code": code}]},
        **dates,
    }


def test_condition_dates_keep_their_time_and_offset() -> None:
    facts, issues = map_conditions(
        [condition("n", "G83.4", onsetDateTime="2024-03-04T00:30:00+02:00")], VS
    )
    assert issues == ()
    onset = facts[0].onset
    assert onset is not None and not onset.date_only
    assert onset.day == date(2024, 3, 4)
    assert onset.instant == datetime(2024, 3, 3, 22, 30, tzinfo=UTC)


def decide(conditions: list[dict[str, Any]]) -> Recommendation:
    """E1's improving patient (T0 4 March 2024) with these Conditions, order on day 29."""
    values = [(0, 142), (14, 61), (28, 18)]
    t0 = date(2024, 3, 4)
    observations = [
        observation(f"crp{d}", "1988-5", v, "mg/L", when=f"{t0 + timedelta(days=d)}T09:00:00+02:00")
        for d, v in values
    ]
    observations += [
        observation("pain0", "72514-3", 8, "{score}", when="2024-03-04T09:00:00+02:00"),
        observation("pain28", "72514-3", 3, "{score}", when="2024-04-01T09:00:00+02:00"),
    ]
    draft = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "id": "sr1",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": CPT, "code": "72158"}]},
                    "authoredOn": "2024-04-02T10:00:00+02:00",
                }
            }
        ],
    }
    orders = map_orders(draft, None, VS)
    facts, _ = map_conditions(conditions, VS)
    measurements, issues = map_observations(observations, VS, MOLAR)
    assert issues == ()
    data = PatientData(conditions=facts, measurements=measurements)
    return assess(
        orders.orders, data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC)
    ).recommendation


NVO = condition("nvo", "M46.26", onsetDateTime="2024-03-04T10:00:00+02:00")


def test_the_improving_patient_from_raw_fhir_is_advised_against() -> None:
    assert decide([NVO]) is Recommendation.ADVISE_AGAINST


def test_a_deficit_with_an_earlier_onset_recorded_after_a_timed_t0_is_known() -> None:
    # clinical-rules.md (2026-12-06): the onset dates a finding; there before treatment,
    # first coded on day 6, it is known at diagnosis: the exam decides, never urgent
    deficit = condition(
        "cauda", "G83.4", onsetDateTime="2024-02-26", recordedDate="2024-03-10T08:00:00+02:00"
    )
    assert decide([NVO, deficit]) is Recommendation.INSUFFICIENT_DATA


def test_a_deficit_with_an_onset_after_the_diagnosis_window_is_urgent() -> None:
    deficit = condition("cauda", "G83.4", onsetDateTime="2024-03-10T08:00:00+02:00")
    assert decide([NVO, deficit]) is Recommendation.SUPPORT_URGENT


def test_a_complication_recorded_before_a_timed_t0_is_not_a_red_flag() -> None:
    abscess = condition(
        "abscess", "G06.1", onsetDateTime="2024-02-20", recordedDate="2024-03-02T08:00:00+02:00"
    )
    assert decide([NVO, abscess]) is Recommendation.ADVISE_AGAINST


def test_a_complication_dated_on_day_4_in_t0s_zone_is_a_red_flag() -> None:
    # T0 00:30 at +02:00 on 4 March; the diagnosis window ends on 7 March. Recorded (no
    # onset) 23:00 UTC on 7 March = 01:00 on 8 March there: day 4, new.
    nvo = condition("nvo", "M46.26", onsetDateTime="2024-03-04T00:30:00+02:00")
    abscess = condition("abscess", "G06.1", recordedDate="2024-03-07T23:00:00Z")
    assert decide([nvo, abscess]) is Recommendation.SUPPORT


def test_molar_crp_is_standard_crp_not_high_sensitivity() -> None:
    # Molar CRP (76485-2) is CRP in another unit: it counts beside 1988-5 values, unlike
    # hs-CRP, which is used only when there is no standard CRP.
    measurements, issues = mapped(observation("m", "76485-2", 381, "nmol/L"))
    assert issues == ()
    assert measurements[0].high_sensitivity is False


@pytest.mark.parametrize("code", ["72514-3", "1988-5", "4537-7"])
def test_a_measurement_keeps_the_loinc_coding_that_identified_it(code: str) -> None:
    unit = {"72514-3": "{score}", "1988-5": "mg/L", "4537-7": "mm/h"}[code]
    measurements, _ = mapped(observation("x", code, 3, unit))
    assert measurements[0].code.system == LOINC and measurements[0].code.code == code


def test_an_unreadable_onset_is_reported_and_a_red_flag_is_kept_undated() -> None:
    facts, issues = map_conditions([condition("c", "G06.1", onsetDateTime="not a date")], VS)
    assert [f.onset for f in facts] == [None]
    assert any("onsetDateTime" in i.reason for i in issues)


def test_an_order_after_a_non_order_in_draft_orders_is_found() -> None:
    draft = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "MedicationRequest", "id": "m1"}},
            {
                "resource": {
                    "resourceType": "ServiceRequest",
                    "id": "sr1",
                    "status": "draft",
                    "intent": "order",
                    "subject": {"reference": "Patient/p1"},
                    "code": {"coding": [{"system": CPT, "code": "72158"}]},
                }
            },
        ],
    }
    assert [o.reference for o in map_orders(draft, None, VS).orders] == ["ServiceRequest/sr1"]


@pytest.mark.parametrize(
    ("written", "category"), [("G83.4", "neuro-deficit"), ("G834", "neuro-deficit")]
)
def test_value_sets_built_now_match_icd_codes_with_or_without_the_dot(
    written: str, category: str
) -> None:
    vs = load_value_sets()  # built inside the test, not at import
    entry = vs.condition_entry(ICD, written)
    assert entry is not None and entry.category.value == category


def test_a_spine_order_after_a_brain_mri_in_draft_orders_is_found() -> None:
    # order-sign asks about every draft order: a brain MRI first does not hide the spine MRI
    def request(rid: str, code: str) -> dict[str, Any]:
        return {
            "resourceType": "ServiceRequest",
            "id": rid,
            "status": "draft",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": CPT, "code": code}]},
        }

    draft = {
        "resourceType": "Bundle",
        "entry": [{"resource": request("brain", "70551")}, {"resource": request("spine", "72158")}],
    }
    assert [o.reference for o in map_orders(draft, None, VS).orders] == ["ServiceRequest/spine"]
