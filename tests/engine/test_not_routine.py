"""Not routine follow-up (clinical-rules.md, "Imaging", 2026-12-06): an order with
priority urgent, asap or stat, or with a stated reason other than the infection or spinal
pain, is never advised against; without a red flag there is no card and the audit keeps
the reason; with one the card names it. The orders go through the FHIR mapper."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, NotApplicableReason, Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ConditionCategory, ImagingOrder
from fhir_mappers.orders import map_orders
from tests.engine.builders import CPT, ICD10, PATIENT, condition, improving, neuro, nvo, run

VS = load_value_sets()
SNOMED = "http://snomed.info/sct"
EPISODE = nvo(ref="Condition/episode")


def draft(**extra: Any) -> ImagingOrder:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "sr1",
        "status": "draft",
        "intent": "order",
        "code": {"coding": [{"system": CPT, "code": "72158"}]},
        "subject": {"reference": f"Patient/{PATIENT}"},
        "authoredOn": "2024-04-02T09:00:00Z",  # day 29 after the builders' T0
        **extra,
    }
    bundle = {"resourceType": "Bundle", "entry": [{"resource": resource}]}
    (order,) = map_orders(bundle, None, VS).orders
    return order


def decide(order: ImagingOrder, *conditions: Any) -> Assessment:
    return run(improving(), [EPISODE, *conditions], orders=[order])


def test_the_draft_alone_is_advised_against() -> None:
    # every case below starts from this answer, so each check is the one that changes it
    assert decide(draft()).recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("priority", ["routine", None])
def test_a_routine_priority_is_routine_follow_up(priority: str | None) -> None:
    extra = {"priority": priority} if priority else {}
    assert decide(draft(**extra)).recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("priority", ["urgent", "asap", "stat"])
def test_an_urgent_priority_without_a_red_flag_gives_no_card(priority: str) -> None:
    a = decide(draft(priority=priority))
    assert a.recommendation is Recommendation.NOT_APPLICABLE
    assert a.not_applicable_reason is NotApplicableReason.NOT_ROUTINE
    audit = a.to_dict()
    assert audit["notApplicableReason"] == "not-routine-follow-up"
    assert audit["notes"] == [{"code": "not-routine", "data": {"priority": priority}}]
    assert audit["orders"][0]["priority"] == priority
    assert render_response(a, CardContext(patient_id=PATIENT)) == {"cards": []}


@pytest.mark.parametrize(
    "reason",
    [
        {"coding": [{"system": ICD10, "code": "M46.26"}]},  # the infection
        {"coding": [{"system": ICD10, "code": "M54.50"}]},  # low back pain
        {"coding": [{"system": SNOMED, "code": "279039007", "display": "Low back pain"}]},
        {"coding": [{"system": SNOMED, "code": "81680005"}]},  # neck pain
        {},  # an empty reason states nothing
    ],
)
def test_the_infection_or_spinal_pain_as_the_reason_is_routine(reason: dict[str, Any]) -> None:
    a = decide(draft(reasonCode=[reason]))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize(
    ("reason", "name", "read"),
    [
        ({"text": "Fall at home"}, "Fall at home", False),
        (
            {
                "coding": [
                    {"system": "urn:example:local-reasons", "code": "FALL", "display": "Fall"}
                ]
            },
            "Fall",
            False,
        ),
        ({"coding": [{"system": ICD10, "code": "C79.51"}]}, "bone metastases", True),
    ],
)
def test_another_stated_reason_gives_no_card_and_the_audit_keeps_it(
    reason: dict[str, Any], name: str, read: bool
) -> None:
    # a reason in words or a local code is kept as not read (it may mean the infection)
    a = decide(draft(reasonCode=[reason]))
    assert a.not_applicable_reason is NotApplicableReason.NOT_ROUTINE
    data: dict[str, Any] = (
        {"reasons": [name]} if read else {"reasons": [name], "unreadReasons": [name]}
    )
    data["otherReasonOrders"] = [a.orders[0].reference]
    assert a.to_dict()["notes"] == [{"code": "not-routine", "data": data}]


def test_a_reason_reference_to_the_episode_is_routine() -> None:
    a = decide(draft(reasonReference=[{"reference": "Condition/episode"}]))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_a_reason_reference_to_a_spinal_pain_condition_is_routine() -> None:
    pain = condition("M54.50", ConditionCategory.SPINAL_PAIN, ref="Condition/lbp")
    a = decide(draft(reasonReference=[{"reference": "Condition/lbp"}]), pain)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_a_reason_reference_the_service_cannot_place_is_another_reason() -> None:
    a = decide(draft(reasonReference=[{"reference": "Condition/elsewhere"}]))
    assert a.not_applicable_reason is NotApplicableReason.NOT_ROUTINE
    assert a.to_dict()["notes"][0]["data"] == {
        "unnamedReasons": True,
        "otherReasonOrders": [a.orders[0].reference],
    }


def test_with_a_red_flag_the_card_stands_and_names_the_reason() -> None:
    a = decide(draft(priority="stat", reasonCode=[{"text": "Fall at home"}]), neuro(onset=20))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    card = render_response(a, CardContext(patient_id=PATIENT))["cards"][0]
    assert (
        "Ordered STAT for \u201cFall at home\u201d: not taken as routine follow-up of the "
        "infection (a stated reason the service cannot read as the infection or spinal pain)"
    ) in card["detail"]


def test_a_reason_in_words_that_names_the_infection_is_not_called_something_else() -> None:
    # An outside review: "For follow-up of L4-5 spondylodiscitis: not routine follow-up of
    # the infection" contradicted itself. Text is not read, so the card says that.
    said = "For follow-up of L4-5 spondylodiscitis on IV antibiotics"
    a = decide(draft(reasonCode=[{"text": said}]), neuro(onset=20))
    detail = render_response(a, CardContext(patient_id=PATIENT))["cards"][0]["detail"]
    assert f"Ordered for \u201c{said}\u201d: not taken as routine follow-up" in detail
    assert "cannot read as the infection or spinal pain" in detail


def test_a_coded_reason_of_another_condition_is_named_as_such() -> None:
    reason = {"coding": [{"system": ICD10, "code": "C79.51"}]}
    a = decide(draft(reasonCode=[reason]), neuro(onset=20))
    detail = render_response(a, CardContext(patient_id=PATIENT))["cards"][0]["detail"]
    assert "Ordered for bone metastases: not taken as routine follow-up of the infection;" in detail
