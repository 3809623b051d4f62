"""The imaging revision's codes (clinical-rules.md, "Imaging", 2026-12-06), from a FHIR
Condition through the value sets to the decision and the card:

- G95.2x cord compression is a neurologic deficit (new: urgent);
- K68.12 psoas and K68.19 retroperitoneal abscess are in the abscess class (known at
  diagnosis: named with the undrained line; new: support with drainage);
- M53.2x instability, and the collapse and fracture codes, are the mechanical class: a
  new one supports standing radiographs (and CT) and spine surgery review; a CT is rated
  appropriate, an MRI for it alone gets no rating.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.cards.context import load_override_reasons
from cds_service.engine import Assessment, Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionCategory, ConditionFact, Modality
from tests.engine.builders import T0, crp, improving, nvo, order, pain, run

VS = load_value_sets()
CTX = CardContext(patient_id="p1", override_reasons=load_override_reasons())
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def coded(code: str, onset_day: int, display: str = "") -> ConditionFact:
    """A Condition as an EHR sends it, mapped through the shipped value sets."""
    day = T0.toordinal() + onset_day
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"c-{code.replace('.', '')}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": ICD, "code": code, "display": display or code}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": date.fromordinal(day).isoformat(),
    }
    facts, issues = map_conditions([resource], VS)
    assert not issues
    (fact,) = facts
    return fact


def rating(a: Assessment) -> list[str]:
    response = render_response(a, CTX)
    return [
        ext["valueCodeableConcept"]["coding"][0]["code"]
        for action in response.get("systemActions", [])
        for ext in action["resource"]["extension"]
        if ext["url"].endswith("pama-rating")
    ]


@pytest.mark.parametrize("code", ["G95.20", "G95.29"])
def test_a_new_cord_compression_is_urgent(code: str) -> None:
    fact = coded(code, 20)
    assert fact.category is ConditionCategory.NEURO_DEFICIT
    a = run([*improving()[:5], pain(0, 8), pain(14, 5)], [nvo(), fact], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert [f.rule_id for f in a.red_flags] == ["neuro"]


@pytest.mark.parametrize("code", ["G95.20", "G95.29"])
def test_a_cord_compression_known_at_diagnosis_is_never_advise_against(code: str) -> None:
    a = run(improving(), [nvo(), coded(code, 1)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert any(r.code == "known-deficit" for r in a.missing)


@pytest.mark.parametrize("code", ["K68.12", "K68.19"])
def test_a_psoas_or_retroperitoneal_abscess_known_at_diagnosis_keeps_the_undrained_line(
    code: str,
) -> None:
    a = run(improving(), [nvo(), coded(code, -1)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert {"known-at-diagnosis", "known-abscess"} <= {r.code for r in a.notes}
    card = render_response(a, CTX)["cards"][0]
    assert "Undrained abscess on initial imaging" in [r["display"] for r in card["overrideReasons"]]
    assert "Park 2016" in card["detail"]


@pytest.mark.parametrize("code", ["K68.12", "K68.19"])
def test_a_new_psoas_abscess_is_a_complication_with_drainage(code: str) -> None:
    a = run(improving(), [nvo(), coded(code, 20)])
    assert a.recommendation is Recommendation.SUPPORT
    (flag,) = a.red_flags
    assert flag.rule_id == "complication" and flag.data["facts"]["abscess"] is True


@pytest.mark.parametrize("code", ["M53.2X6", "M48.56XA", "M84.48XA"])
def test_a_new_mechanical_complication_is_its_own_red_flag(code: str) -> None:
    a = run(improving(), [nvo(), coded(code, 20)])
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.red_flags] == ["mechanical"]
    card = render_response(a, CTX)["cards"][0]
    assert "standing radiographs" in card["summary"]
    assert "MRI only if" in card["summary"]


def test_a_mechanical_complication_known_at_diagnosis_is_named_and_changes_nothing() -> None:
    a = run(improving(), [nvo(), coded("M53.2X6", 2)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    known = next(r for r in a.notes if r.code == "known-at-diagnosis")
    assert known.data["conditions"][0]["name"] == "spinal instability"


def test_for_a_mechanical_flag_alone_ct_is_appropriate_and_mri_is_not_rated() -> None:
    conds = [nvo(), coded("M53.2X6", 20)]
    ct = order(29, modality=Modality.CT, code="72131")
    assert rating(run(improving(), conds, orders=[ct])) == ["appropriate"]
    assert rating(run(improving(), conds)) == []


def test_with_markers_worse_as_well_the_mri_is_rated_again() -> None:
    plateau = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]
    a = run(plateau, [nvo(), coded("M53.2X6", 20)])
    assert {f.rule_id for f in a.red_flags} == {"mechanical", "markers-not-responding"}
    assert rating(a) == ["appropriate"]
    card = render_response(a, CTX)["cards"][0]
    assert "standing radiographs" not in card["summary"]


# Added 2026-12-07 after an outside clinician's review: a new monoplegia or a myelopathy
# coded G99.2 read "no red flag recorded" beside a delete suggestion.
@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("G83.14", "monoplegia of a leg"),
        ("G83.20", "monoplegia of an arm"),
        ("G83.3", "monoplegia"),
        ("G99.2", "myelopathy"),
    ],
)
def test_a_new_monoplegia_or_myelopathy_is_urgent(code: str, name: str) -> None:
    fact = coded(code, 20)
    assert (fact.category, fact.name) == (ConditionCategory.NEURO_DEFICIT, name)
    a = run([*improving()[:5], pain(0, 8), pain(14, 5)], [nvo(), fact], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    card = render_response(a, CTX)["cards"][0]
    assert card["summary"].startswith(f"New {name} (day 20)")
