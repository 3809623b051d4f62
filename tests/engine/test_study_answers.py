"""The study must answer the question (clinical-rules.md, "Imaging", 2026-12-06): on a
support or urgent card a study that misses the level, a CT for a new deficit, or one
without contrast for a soft-tissue question is rated not-appropriate, never appropriate,
and one suggestion replaces it (an ``update`` of the draft's code, rated appropriate)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Coding, ConditionCategory, ImagingOrder, Modality
from tests.engine.builders import (
    PATIENT,
    complication,
    condition,
    crp,
    improving,
    neuro,
    nvo,
    order,
    pain,
    run,
)

CTX = CardContext(patient_id=PATIENT, value_sets=load_value_sets())
LOINC = "http://loinc.org"
PLATEAU = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]


def quadriplegia(onset: int = 15) -> Any:
    return condition("G82.50", ConditionCategory.NEURO_DEFICIT, onset=onset, name="quadriplegia")


def study(code: str, modality: Modality, region: str, contrast: str | None) -> ImagingOrder:
    return replace(order(16, code=code, modality=modality, region=region), contrast=contrast)


def ratings(a: Assessment) -> dict[str, str]:
    response = render_response(a, CTX)
    return {
        f"{act['resource']['resourceType']}/{act['resource']['id']}": next(
            e["valueCodeableConcept"]["coding"][0]["code"]
            for e in act["resource"]["extension"]
            if e["url"].endswith("pama-rating")
        )
        for act in response.get("systemActions", [])
    }


def suggestions(a: Assessment) -> list[dict[str, Any]]:
    return list(render_response(a, CTX)["cards"][0].get("suggestions", []))


def test_an_urgent_card_on_a_lumbar_mri_without_contrast_for_a_cervical_infection() -> None:
    lumbar = study("72148", Modality.MRI, "lumbar", "without")
    a = run(improving()[:2], [nvo(region="cervical"), quadriplegia()], orders=[lumbar])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.study_gaps == {lumbar.reference: "level"}
    assert ratings(a) == {lumbar.reference: "not-appropriate"}
    (suggestion,) = suggestions(a)
    # the card asks for the whole spine; so does its one-click study (an outside review
    # found the card saying "whole spine" and the suggestion ordering the cervical level)
    assert suggestion["label"] == (
        "Order emergency MRI of the whole spine without and with gadolinium (STAT) instead"
    )
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    resource = action["resource"]
    assert resource["id"] == "sr1"
    # CPT has no whole-spine code: LOINC's whole-spine MRI without and with
    assert resource["code"]["coding"][0]["code"] == "30855-1"
    assert resource["code"]["coding"][0]["system"] == LOINC
    rating = next(e for e in resource["extension"] if e["url"].endswith("pama-rating"))
    assert rating["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    summary = render_response(a, CTX)["cards"][0]["summary"]
    assert summary.startswith("New quadriplegia (day 15): the infection is cervical;")


def test_the_replacement_on_an_urgent_card_is_a_stat_order_for_now() -> None:
    """The critical card says "emergency MRI ... now": its replacement kept the draft's
    routine priority and its timing (an outside review, 2026-12-06)."""
    timed = {
        "priority": "routine",
        "occurrenceTiming": {"repeat": {"boundsPeriod": {"start": "2026-12-20"}}},
    }
    ct = study("72131", Modality.CT, "lumbar", "without")
    ct = replace(ct, resource={**ct.resource, **timed})
    urgent = run(improving()[:2], [nvo(region="lumbar"), neuro(onset=15)], orders=[ct])
    assert urgent.recommendation is Recommendation.SUPPORT_URGENT
    (suggestion,) = suggestions(urgent)
    resource = suggestion["actions"][0]["resource"]
    assert resource["priority"] == "stat"
    assert "occurrenceTiming" not in resource
    assert resource["code"]["text"] == "MRI of the whole spine without and with gadolinium"
    assert "emergency" in suggestion["label"] and "(STAT)" in suggestion["label"]
    # a support card's replacement keeps the draft's priority and timing
    plateau = run(PLATEAU, orders=[replace(ct, authored_on=order(29).authored_on)])
    assert plateau.recommendation is Recommendation.SUPPORT
    (kept,) = suggestions(plateau)
    resource = kept["actions"][0]["resource"]
    assert (resource["priority"], resource["occurrenceTiming"]) == (
        "routine",
        timed["occurrenceTiming"],
    )
    assert "emergency" not in kept["label"]


def test_an_urgent_card_on_the_right_mri_is_appropriate_with_no_replacement() -> None:
    # ordered STAT already: nothing to change
    stat = replace(order(16), priority="stat")
    a = run(improving()[:2], [nvo(), neuro(onset=15)], orders=[stat])
    assert a.study_gaps == {}
    assert set(ratings(a).values()) == {"appropriate"}
    assert suggestions(a) == []


@pytest.mark.parametrize("priority", [None, "routine", "urgent"])
def test_an_urgent_card_on_a_whole_spine_mri_ordered_routine_offers_to_make_it_stat(
    priority: str | None,
) -> None:
    """The card asks for an emergency MRI now; a routine slot for a new deficit is a wrongly
    placed order (an outside clinician's reading, 2026-12-06). The study answers, so it is
    rated appropriate, and the one suggestion makes it STAT without its timing."""
    mri = order(16)
    timed = {"occurrenceDateTime": "2026-12-20"} | ({"priority": priority} if priority else {})
    whole = replace(mri, region="spine", priority=priority, resource={**mri.resource, **timed})
    a = run(improving()[:2], [nvo(), neuro(onset=15)], orders=[whole])
    assert a.recommendation is Recommendation.SUPPORT_URGENT and a.study_gaps == {}
    assert set(ratings(a).values()) == {"appropriate"}
    (suggestion,) = suggestions(a)
    assert suggestion["label"] == "Make the spine MRI STAT" and suggestion["isRecommended"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == mri.reference.split("/")[1]
    assert action["resource"]["priority"] == "stat"
    assert "occurrenceDateTime" not in action["resource"]
    assert action["resource"]["code"] == mri.resource["code"]  # the same study
    rating = next(e for e in action["resource"]["extension"] if e["url"].endswith("pama-rating"))
    assert rating["valueCodeableConcept"]["coding"][0]["code"] == "appropriate"
    # where the EHR applies deletes and creates: the draft goes, the STAT order comes
    ctx = replace(CTX, replace_with_delete_create=True)
    (both,) = render_response(a, ctx)["cards"][0]["suggestions"]
    delete, create = both["actions"]
    assert (delete["type"], delete["resourceId"]) == ("delete", mri.reference)
    assert create["type"] == "create" and create["resource"]["priority"] == "stat"
    assert delete["description"] == "Remove the draft spine MRI order"
    # an order re-signed in order-sign is no draft: not called one
    signed = replace(mri, resource={**mri.resource, "status": "active"})
    a_signed = run(improving()[:2], [nvo(), neuro(onset=15)], orders=[signed], order_day=16)
    (again,) = render_response(a_signed, ctx)["cards"][0]["suggestions"]
    assert again["actions"][0]["description"] == "Remove the spine MRI order"


def test_an_urgent_card_on_a_routine_lumbar_mri_offers_the_whole_spine_stat() -> None:
    """The card says "emergency MRI of the whole spine with gadolinium now": its one click
    orders that, STAT, not the lumbar MRI at a routine slot (an outside re-run found the
    card text and the action disagreeing on extent). The lumbar MRI still answers the
    question, so it keeps its appropriate rating."""
    a = run(improving()[:2], [nvo(), neuro(onset=15)], order_day=16)
    assert a.recommendation is Recommendation.SUPPORT_URGENT and a.study_gaps == {}
    assert set(ratings(a).values()) == {"appropriate"}
    (suggestion,) = suggestions(a)
    assert suggestion["label"] == (
        "Order emergency MRI of the whole spine without and with gadolinium (STAT) instead"
    )
    resource = suggestion["actions"][0]["resource"]
    assert resource["priority"] == "stat"
    assert resource["code"]["coding"][0]["code"] == "30855-1"


def test_a_ct_for_a_new_deficit_is_replaced_by_an_mri_of_the_whole_spine() -> None:
    ct = study("72131", Modality.CT, "lumbar", "without")
    a = run(improving()[:2], [nvo(region="lumbar"), neuro(onset=15)], orders=[ct])
    assert a.study_gaps == {ct.reference: "modality"}
    (suggestion,) = suggestions(a)
    assert suggestion["actions"][0]["resource"]["code"]["coding"][0]["code"] == "30855-1"


@pytest.mark.parametrize(
    ("code", "modality", "contrast", "rated"),
    [
        ("72148", Modality.MRI, "without", "not-appropriate"),
        ("72158", Modality.MRI, "without-and-with", "appropriate"),
        ("72149", Modality.MRI, "with", "appropriate"),
        ("72131", Modality.CT, "without", "not-appropriate"),
        # MRI with gadolinium is preferred to it: no rating (an outside review saw
        # "appropriate" beside "MRI preferred" have the CT done)
        ("72132", Modality.CT, "with", None),
        # a CT whose code does not say its contrast (LOINC 24963-1 "CT Lumbar spine"): it
        # may be one without, which cannot exclude an abscess (was rated appropriate)
        ("24963-1", Modality.CT, None, "not-appropriate"),
    ],
)
def test_a_soft_tissue_question_needs_contrast(
    code: str, modality: Modality, contrast: str | None, rated: str | None
) -> None:
    ordered = study(code, modality, "lumbar", contrast)
    a = run(PLATEAU, orders=[replace(ordered, authored_on=order(29).authored_on)])
    assert a.recommendation is Recommendation.SUPPORT
    assert ratings(a) == ({ordered.reference: rated} if rated else {})
    assert bool(suggestions(a)) is (rated == "not-appropriate")


def test_a_loinc_order_of_unknown_level_is_replaced_by_a_whole_spine_study() -> None:
    ordered = replace(
        study("24968-0", Modality.MRI, "thoracic", "without"),
        codes=(Coding(LOINC, "24968-0"),),
        authored_on=order(29).authored_on,
    )
    a = run(PLATEAU, [nvo(region="cervical")], orders=[ordered])
    (suggestion,) = suggestions(a)
    coding = suggestion["actions"][0]["resource"]["code"]["coding"][0]
    # in the order's own system: LOINC 24937-5 MR Cervical spine WO and W contrast IV
    assert (coding["system"], coding["code"]) == (LOINC, "24937-5")
    unknown = run(PLATEAU, [nvo(region=None)], orders=[ordered])
    (whole,) = suggestions(unknown)
    coding = whole["actions"][0]["resource"]["code"]["coding"][0]
    assert (coding["system"], coding["code"]) == (LOINC, "30855-1")


def test_a_mechanical_question_gets_no_replacement() -> None:
    instability = condition("M53.2X6", ConditionCategory.MECHANICAL, onset=20)
    a = run(improving(), [nvo(), instability])
    assert a.answering_study is None
    assert suggestions(a) == []


def test_where_the_ehr_applies_deletes_and_creates_the_replacement_is_both() -> None:
    lumbar = study("72148", Modality.MRI, "lumbar", "without")
    a = run(improving()[:2], [nvo(region="cervical"), quadriplegia()], orders=[lumbar])
    ctx = replace(CTX, replace_with_delete_create=True)
    (suggestion,) = render_response(a, ctx)["cards"][0]["suggestions"]
    delete, create = suggestion["actions"]
    assert (delete["type"], delete["resourceId"]) == ("delete", lumbar.reference)
    assert create["type"] == "create" and "id" not in create["resource"]
    assert create["resource"]["code"]["coding"][0]["code"] == "30855-1"
    assert create["resource"]["status"] == "draft"


def _card(a: Assessment) -> dict[str, Any]:
    return dict(render_response(a, CTX)["cards"][0])


def test_a_new_abscess_on_a_ct_without_contrast_is_replaced_by_a_whole_spine_mri() -> None:
    """ "Abscess: MRI of the whole spine without and with gadolinium" (clinical-rules.md,
    Imaging): the card said so and its suggestion ordered the lumbar level."""
    ct = replace(
        study("72131", Modality.CT, "lumbar", "without"), authored_on=order(29).authored_on
    )
    a = run(improving(), [nvo(region="lumbar"), complication(onset=15)], orders=[ct])
    assert a.recommendation is Recommendation.SUPPORT
    assert a.study_gaps == {ct.reference: "contrast"}
    (suggestion,) = suggestions(a)
    assert suggestion["label"] == "Order MRI of the whole spine without and with gadolinium instead"
    assert suggestion["actions"][0]["resource"]["code"]["coding"][0]["code"] == "30855-1"


def test_an_abscess_on_a_ct_with_contrast_names_the_ct_in_summary_and_detail() -> None:
    ct = replace(study("72132", Modality.CT, "lumbar", "with"), authored_on=order(29).authored_on)
    a = run(improving(), [nvo(region="lumbar"), complication(onset=15)], orders=[ct])
    assert ratings(a) == {}  # MRI preferred: not rated appropriate
    card = _card(a)
    assert "MRI with gadolinium preferred to the CT ordered" in card["summary"]
    assert "**MRI with gadolinium is preferred to the CT ordered.**" in card["detail"]
    assert "a CT without contrast cannot exclude" not in card["detail"]  # it has contrast


WORSE_PAIN_FALLING_CRP = [
    crp(0, 120), crp(14, 50), crp(28, 15), pain(0, 6), pain(14, 2), pain(28, 5)
]  # fmt: skip


def test_worse_pain_while_the_crp_falls_is_answered_by_a_ct_too() -> None:
    """ "Worse pain with a CRP that keeps falling: think mechanical (collapse, instability):
    upright radiographs or CT" (clinical-rules.md): a CT without contrast was rated
    not-appropriate and swapped for an MRI while the card itself said "radiographs or CT"."""
    ct = replace(
        study("72131", Modality.CT, "lumbar", "without"), authored_on=order(29).authored_on
    )
    a = run(WORSE_PAIN_FALLING_CRP, orders=[ct])
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.red_flags] == ["pain-worse"]
    assert a.study_gaps == {}
    assert ratings(a) == {ct.reference: "appropriate"}
    assert suggestions(a) == []
    card = _card(a)
    assert "think mechanical: upright radiographs or CT" in card["summary"]
    assert "preferred to the CT" not in card["summary"]
    assert "MRI with gadolinium is preferred" not in card["detail"]
    mri = replace(
        study("72148", Modality.MRI, "lumbar", "without"), authored_on=order(29).authored_on
    )
    assert ratings(run(WORSE_PAIN_FALLING_CRP, orders=[mri])) == {mri.reference: "appropriate"}


def test_worse_pain_with_a_crp_that_does_not_fall_still_needs_contrast() -> None:
    ct = replace(
        study("72131", Modality.CT, "lumbar", "without"), authored_on=order(29).authored_on
    )
    a = run([*PLATEAU[:3], pain(0, 3), pain(28, 6)], orders=[ct])
    assert {f.rule_id for f in a.red_flags} == {"markers-not-responding", "pain-worse"}
    assert a.study_gaps == {ct.reference: "contrast"}
    assert "preferred to the CT ordered" in _card(a)["summary"]


def test_worse_pain_with_an_unchanged_crp_is_not_the_mechanical_question() -> None:
    """The edge of "while the CRP falls": a CRP that has not moved (8 -> 8 mg/L, within
    the normal range, so no markers flag) leaves worse pain a soft-tissue question."""
    ct = replace(
        study("72131", Modality.CT, "lumbar", "without"), authored_on=order(29).authored_on
    )
    a = run([crp(0, 8), crp(28, 8), pain(0, 2), pain(14, 2), pain(28, 5)], orders=[ct])
    assert [f.rule_id for f in a.red_flags] == ["pain-worse"]
    assert a.figures.crp_percent_change == 0
    assert a.study_gaps == {ct.reference: "contrast"}


def test_an_emergency_card_on_the_right_level_mri_without_gadolinium_is_not_rated() -> None:
    """An outside neuroradiology reading (2026-12-07): a cervical MRI without gadolinium for
    a new quadriplegia in a cervical infection was rated not-appropriate under "do not delay
    it for contrast", with no word why. An MRI now without gadolinium still shows cord
    compression: no rating (never "appropriate": it cannot show everything), and the card
    says to add gadolinium if that does not delay the scan."""
    cervical = study("72141", Modality.MRI, "cervical", "without")
    a = run(improving()[:2], [nvo(region="cervical"), quadriplegia()], orders=[cervical])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.study_gaps == {cervical.reference: "contrast"}
    assert ratings(a) == {}
    detail = render_response(a, CTX)["cards"][0]["detail"]
    assert "The MRI of the cervical spine ordered is without gadolinium: add it if that" in detail


def test_a_support_card_on_an_mri_without_gadolinium_says_why_it_is_not_appropriate() -> None:
    lumbar = study("72148", Modality.MRI, "lumbar", "without")
    a = run(PLATEAU, orders=[replace(lumbar, authored_on=order(29).authored_on)])
    assert a.recommendation is Recommendation.SUPPORT
    assert ratings(a) == {lumbar.reference: "not-appropriate"}
    detail = render_response(a, CTX)["cards"][0]["detail"]
    assert (
        "The MRI of the lumbar spine ordered is without gadolinium: it may miss an abscess"
        in detail
    )
