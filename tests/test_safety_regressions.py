"""Regressions from an independent clinical-logic review, FHIR JSON through mappers and engine.

Each case once gave advise-against where the specification's safety rule ("no
advise-against ever when a red flag is present") or its wording says otherwise.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import PatientData
from fhir_mappers.observations import MappingOptions, map_observations
from fhir_mappers.orders import map_orders

VS = load_value_sets()
T0 = date(2026, 3, 2)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def on(day: int) -> str:
    return (T0 + timedelta(days=day)).isoformat()


def condition(cid: str, code: str, onset: int | None = 0, **extra: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": ICD, "code": code}]},
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
    }
    if onset is not None:
        resource["onsetDateTime"] = on(onset)
    resource.update(extra)
    return resource


def observation(oid: str, code: str, day: int, value: float, unit: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "effectiveDateTime": on(day) + "T08:00:00Z",
        "valueQuantity": {
            "value": value,
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def series(crp: list[tuple[int, float]], pain: list[tuple[int, float]]) -> list[dict[str, Any]]:
    out = [observation(f"crp{d}", "1988-5", d, v, "mg/L") for d, v in crp]
    out += [observation(f"pain{d}", "72514-3", d, v, "{score}") for d, v in pain]
    return out


IMPROVING = series([(0, 142), (14, 61), (28, 18)], [(0, 8), (14, 5), (28, 3)])


def decide(
    conditions: list[dict[str, Any]], observations: list[dict[str, Any]], order_day: int = 29
) -> Assessment:
    order = {
        "resourceType": "ServiceRequest",
        "id": "mri",
        "status": "draft",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72158"}]},
        "authoredOn": on(order_day) + "T10:00:00Z",
    }
    orders = map_orders({"resourceType": "Bundle", "entry": [{"resource": order}]}, None, VS)
    facts, condition_issues = map_conditions(conditions, VS)
    measurements, observation_issues = map_observations(observations, VS, MappingOptions())
    data = PatientData(facts, measurements, orders.issues + condition_issues + observation_issues)
    return assess(orders.orders, data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def test_the_improving_patient_is_advised_against() -> None:
    """The baseline the cases below depart from."""
    assert (
        decide([condition("nvo", "M46.26")], IMPROVING).recommendation
        is Recommendation.ADVISE_AGAINST
    )


@pytest.mark.parametrize(
    "malformed",
    [{"note": "legs weaker"}, {"severityText": "severe"}, {"onsetDateTime": on(26) + "T10:00:00"}],
    ids=["note-not-a-list", "unknown-element", "dateTime-without-offset"],
)
def test_a_red_flag_condition_with_an_unread_malformed_element_still_counts(
    malformed: dict[str, Any],
) -> None:
    deficit = condition("cauda", "G83.4", onset=26, **malformed)
    assessment = decide([condition("nvo", "M46.26"), deficit], IMPROVING)
    assert assessment.recommendation is Recommendation.SUPPORT_URGENT
    assert any("kept for its neuro-deficit code" in issue.reason for issue in assessment.issues)


def test_an_nvo_condition_malformed_only_where_the_rules_do_not_read_is_the_episode() -> None:
    """An element the rules never read (a note that is not a list) does not cost the
    episode: the outside review saw that drop every card, a red flag's too."""
    broken = condition("nvo", "M46.26", note="not a list")
    assert decide([broken], IMPROVING).recommendation is Recommendation.ADVISE_AGAINST


def test_an_nvo_condition_whose_status_cannot_be_read_is_still_skipped() -> None:
    """The other direction: an episode whose clinical status cannot be read (it may be
    resolved) gives no card rather than advice."""
    broken = condition("nvo", "M46.26", clinicalStatus="resolved")
    assert decide([broken], IMPROVING).recommendation is Recommendation.NOT_APPLICABLE


def test_an_abscess_with_onset_at_diagnosis_recorded_later_is_known_and_named() -> None:
    # clinical-rules.md (2026-12-06): the onset says when it was found; an abscess there at
    # diagnosis and coded on day 20 is known, never dropped: named, with the undrained line
    abscess = condition("abscess", "G06.2", onset=-2, recordedDate=on(20))
    assessment = decide([condition("nvo", "M46.26"), abscess], IMPROVING)
    assert assessment.recommendation is Recommendation.ADVISE_AGAINST
    assert [c.reference for c in assessment.known] == ["Condition/abscess"]
    assert {"known-at-diagnosis", "known-abscess"} <= {n.code for n in assessment.notes}


def test_an_abscess_first_found_during_treatment_is_a_red_flag() -> None:
    abscess = condition("abscess", "G06.2", onset=20, recordedDate=on(20))
    assessment = decide([condition("nvo", "M46.26"), abscess], IMPROVING)
    assert assessment.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in assessment.red_flags] == ["complication"]


def test_a_second_nvo_entry_cannot_hide_a_rise() -> None:
    """CRP 142 -> 8 -> 30: a rise after the decline (to above the normal limit). A later
    entry of the same episode would move T0 past the early values and hide the rise."""
    observations = series([(0, 142), (14, 8), (28, 30)], [(0, 5), (14, 4), (28, 4)])
    first = condition("nvo", "M46.26")
    assert decide([first], observations).recommendation is Recommendation.SUPPORT
    later_entry = condition("nvo-encounter", "M46.26", onset=None, recordedDate=on(20))
    assessment = decide([first, later_entry], observations)
    assert assessment.recommendation is Recommendation.SUPPORT
    assert "several-episode-starts" in {note.code for note in assessment.notes}


def test_advice_through_the_normal_limit_does_not_claim_a_fall() -> None:
    """CRP 6 -> 9 mg/L by day 12: within the normal range neither a rise nor a plateau
    counts, and 9 is below the normal limit, so the answer is advise-against; but it must
    not be worded as a fall or as improvement."""
    observations = series([(0, 6), (12, 9)], [(0, 3), (12, 3)])
    assessment = decide([condition("nvo", "M46.26")], observations, order_day=13)
    assert assessment.recommendation is Recommendation.ADVISE_AGAINST
    card = render_response(
        assessment, CardContext(patient_id="p1", override_reasons=load_override_reasons())
    )["cards"][0]
    assert "improving" not in card["summary"] and "fall" not in card["summary"]
    # never above the normal limit: the summary says the CRP cannot show the response
    assert "CRP never raised (at most 9 mg/L)" in card["summary"]
    assert "fall" not in phrase(assessment.rules_fired[0]).message


def test_a_qualitative_crp_coding_beside_the_mass_code_does_not_hide_the_value() -> None:
    observations = series([(0, 142), (14, 61), (28, 18)], [(0, 8), (14, 5), (28, 3)])
    observations[2]["code"]["coding"].insert(0, {"system": "http://loinc.org", "code": "11039-5"})
    assessment = decide([condition("nvo", "M46.26")], observations)
    assert assessment.recommendation is Recommendation.ADVISE_AGAINST
    assert len(assessment.crp) == 3


def test_days_are_counted_in_one_zone_so_a_threshold_follows_elapsed_time() -> None:
    """T0 at 01:00+02:00; the second CRP 28 days 5 hours later, written at -08:00, falls
    on the previous calendar day in its own offset. Counted in T0's zone it is day 28:
    a 20% fall to 10.4 mg/L at day 28 is a plateau (support); counted as day 27 it would
    be too early for one (insufficient data)."""
    nvo = condition("nvo", "M46.26", onset=None, onsetDateTime="2026-03-02T01:00:00+02:00")
    observations = series([(0, 13.0)], [(0, 3.0)])
    later = observation("crp28", "1988-5", 0, 10.4, "mg/L")
    later["effectiveDateTime"] = "2026-03-29T20:00:00-08:00"
    pain_later = observation("pain28", "72514-3", 0, 3.0, "{score}")
    pain_later["effectiveDateTime"] = "2026-03-29T20:00:00-08:00"
    assessment = decide([nvo], [*observations, later, pain_later], order_day=30)
    assert assessment.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in assessment.red_flags] == ["markers-not-responding"]


# --- through the web layer: what prefetch leaves unread, and whose data it is ------------


def e01_request(order_date: date) -> dict[str, Any]:
    from cds_service.discovery import load_discovery
    from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
    from cds_service.examples import load_example

    example = load_example("e01-improving", order_date)
    service = load_discovery().services["spine-imaging-followup-select"]
    request = build_request("order-select", "6f1c2b9e-0d7e-4f4e-9f5c-1d2e3f4a5b6c",
                            example.patient_id, example.draft_order)  # fmt: skip
    request["prefetch"] = local_prefetch(
        service.prefetch, request["context"], bundle_resources(example.bundle)
    )
    return request


def test_a_prefetched_crp_bundle_with_unread_pages_counts_as_cut_off(client: Any) -> None:
    """E1, but the EHR's CRP Bundle says more pages follow and there is no fhirServer
    to read them: the older pages may hold the baseline, so no advise-against, and the
    card says the record was read only in part (was advise-against, nothing said)."""
    request = e01_request(date(2026, 11, 30))
    request["prefetch"]["crp"]["link"] = [
        {"relation": "next", "url": "https://ehr.example.org/fhir/Observation?page=2"}
    ]
    answer = client.post("/cds-services/spine-imaging-followup-select", json=request)
    assert answer.status_code == 200, answer.get_json()
    (card,) = answer.get_json()["cards"]
    result = card["extension"]["spine-cds-assessment"]
    assert result["recommendation"] == "insufficient-data"
    assert "crp-incomplete" in result["missing"]
    assert "Some CRP results could not be read: the record sent them in pages" in card["detail"]


def test_a_result_not_linked_to_this_patient_is_named_on_the_card(client: Any) -> None:
    request = e01_request(date(2026, 11, 30))
    crp = request["prefetch"]["crp"]["entry"]
    stranger = dict(crp[0]["resource"], id="stranger-crp")
    stranger["subject"] = {"identifier": {"value": "123"}, "display": "Someone Else"}
    crp.append({"resource": stranger})
    answer = client.post("/cds-services/spine-imaging-followup-select", json=request)
    (card,) = answer.get_json()["cards"]
    assert "1 result not linked to this patient was not used." in card["detail"]


# --- code systems given by their HL7 OID (an outside review, 2026-12-06) --------------------

ICD_OID = "urn:oid:2.16.840.1.113883.6.90"  # ICD-10-CM (HL7 Terminology, CodeSystem icd10CM)


def test_cauda_equina_coded_by_the_icd10cm_oid_is_a_red_flag() -> None:
    """Was advise-against, the card saying "no red flag recorded": G83.4 arrived with
    ICD-10-CM written as its OID and was read as no condition at all."""
    deficit = condition("cauda", "G83.4", onset=26)
    deficit["code"]["coding"][0]["system"] = ICD_OID
    assessment = decide([condition("nvo", "M46.26"), deficit], IMPROVING)
    assert assessment.recommendation is Recommendation.SUPPORT_URGENT
    assert [f.rule_id for f in assessment.red_flags] == ["neuro"]


def test_an_episode_coded_only_by_the_icd10cm_oid_gets_its_card() -> None:
    """Was no card: the NVO Condition's only coding named ICD-10-CM by its OID."""
    nvo = condition("nvo", "M46.26")
    nvo["code"]["coding"][0]["system"] = ICD_OID
    assessment = decide([nvo], IMPROVING)
    assert assessment.recommendation is Recommendation.ADVISE_AGAINST
    assert assessment.infection_region == "lumbar"


@pytest.mark.parametrize("code", ["C90.00", "C90.01", "C90.02", "C90.30", "C90.32"])
def test_a_myeloma_or_plasmacytoma_beside_the_infection_is_a_mimic(code: str) -> None:
    """An outside clinician's review: multiple myeloma beside an improving infection was
    advised against, "no red flag recorded"; a vertebral neoplasm is a mimic (support)."""
    a = decide([condition("nvo", "M46.26"), condition("mm", code, onset=-30)], IMPROVING)
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.rules_fired] == ["uncertain-dx"]
