"""The level a deficit implies (clinical-logic.md, "The infected level and the order"): a
quadriplegia's lesion is cervical, a paraplegia's thoracic or above; cauda equina syndrome
stays lumbosacral. The design note let a deficit code without a level take the episode's
level; an outside review found a new quadriplegia in a lumbar infection "seen on the lumbar
MRI" of the day before (a lumbar MRI cannot show a cervical cord cause) and a lumbar MRI
ordered for it rated appropriate. The level comes from the value set, so the deficits here
go through the mapper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.conditions import map_conditions
from fhir_mappers.model import ConditionFact, Modality, PatientData
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import CPT, T0, crp, nvo, order, pain

VS = load_value_sets()
CTX = CardContext(patient_id="p1", value_sets=VS, override_reasons=load_override_reasons())
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
MARKERS = (crp(0, 120), crp(14, 50), crp(20, 15), pain(0, 7), pain(14, 4), pain(20, 2))


def deficit(code: str, system: str = ICD, onset_day: int = 20) -> ConditionFact:
    """A new deficit as an EHR records it (at 10:00 UTC), mapped through the value sets."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"d-{code.replace('.', '')}",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": f"{(T0 + timedelta(days=onset_day)).isoformat()}T10:00:00Z",
    }
    facts, issues = map_conditions([resource], VS)
    assert not issues
    (fact,) = facts
    return fact


def study(code: str, system: str = CPT, study_day: int = 21) -> dict[str, Any]:
    """A spine study done on ``study_day`` at 09:00 UTC."""
    return {
        "resourceType": "ImagingStudy",
        "id": f"s-{code}",
        "status": "available",
        "started": f"{(T0 + timedelta(days=study_day)).isoformat()}T09:00:00Z",
        "procedureCode": [{"coding": [{"system": system, "code": code}]}],
    }


def decide(
    finding: ConditionFact,
    studies: list[dict[str, Any]] | None = None,
    infected: str = "lumbar",
    ordered: str = "lumbar",
    code: str = "72158",
) -> Assessment:
    done, issues = map_prior_imaging(studies or [], VS)
    assert not issues
    data = PatientData(
        conditions=(nvo(region=infected), finding), measurements=MARKERS, prior_studies=done
    )
    the_order = order(22, region=ordered, code=code)
    return assess([the_order], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def seen(a: Assessment) -> list[Any]:
    return [n for n in a.notes if n.code == "flag-seen-on-study"]


def rating(a: Assessment) -> list[str]:
    return [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for act in render_response(a, CTX).get("systemActions", [])
        for e in act["resource"]["extension"]
        if e["url"].endswith("pama-rating")
    ]


QUADRIPLEGIA = [("G82.50", ICD), ("11538006", SNOMED)]
PARAPLEGIA = [("G82.20", ICD), ("60389000", SNOMED)]


@pytest.mark.parametrize(("code", "system"), QUADRIPLEGIA + PARAPLEGIA)
def test_a_lumbar_mri_did_not_see_a_new_quadriplegia_or_paraplegia(code: str, system: str) -> None:
    """Lumbar infection, the deficit on day 20, a lumbar MRI with gadolinium on day 21, a
    lumbar MRI ordered on day 22: not "seen there; a new MRI only if the exam changed"."""
    a = decide(deficit(code, system), [study("72158")])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert seen(a) == []
    (only,) = render_response(a, CTX)["cards"]
    assert "seen on" not in only["summary"]
    assert "only if the exam changed" not in only["detail"]
    assert "emergency MRI of the whole spine with gadolinium now" in only["summary"]


@pytest.mark.parametrize(("code", "system"), QUADRIPLEGIA + PARAPLEGIA)
def test_a_lumbar_mri_ordered_for_a_new_quadriplegia_or_paraplegia_cannot_answer(
    code: str, system: str
) -> None:
    """Rated not-appropriate, with the one suggestion that replaces it by an MRI of the
    whole spine without and with gadolinium; the card names the level the deficit implies."""
    a = decide(deficit(code, system))
    assert a.study_gaps == {"ServiceRequest/sr1": "level"}
    assert rating(a) == ["not-appropriate"]
    (only,) = render_response(a, CTX)["cards"]
    (suggestion,) = only["suggestions"]
    (action,) = suggestion["actions"]
    assert action["type"] == "update"
    assert action["resource"]["code"]["coding"][0]["code"] == "30855-1"  # whole spine w/wo
    level = "cervical level" if (code, system) in QUADRIPLEGIA else "thoracic level or above"
    cause = "will not show a cervical" if (code, system) in QUADRIPLEGIA else "may miss a thoracic"
    said = f"points to the {level}: the lumbar MRI ordered {cause} cause"
    assert said in only["detail"]


@pytest.mark.parametrize(
    ("code", "system", "study_code", "study_system"),
    [
        ("G82.50", ICD, "30855-1", LOINC),  # whole spine MRI without and with
        ("G82.20", ICD, "30855-1", LOINC),
    ],
)
def test_a_whole_spine_mri_did_see_it(
    code: str, system: str, study_code: str, study_system: str
) -> None:
    (note,) = seen(decide(deficit(code, system), [study(study_code, study_system)]))
    assert note.data["allRedFlags"] is True


def test_a_cervical_mri_saw_a_quadriplegia_in_a_cervical_infection() -> None:
    a = decide(deficit("G82.50"), [study("72156")], infected="cervical", ordered="cervical")
    (note,) = seen(a)
    assert note.data["region"] == "cervical"


def test_a_thoracic_mri_saw_a_paraplegia_in_a_thoracic_infection() -> None:
    a = decide(deficit("G82.20"), [study("72157")], infected="thoracic", ordered="thoracic")
    assert len(seen(a)) == 1


@pytest.mark.parametrize(("ordered", "code"), [("spine", "30855-1"), ("thoracolumbar", "x")])
def test_an_order_that_images_both_levels_answers_a_paraplegia_in_a_lumbar_infection(
    ordered: str, code: str
) -> None:
    a = decide(deficit("G82.20"), ordered=ordered, code=code)
    assert a.study_gaps == {}
    assert rating(a) == ["appropriate"]


def test_a_thoracic_mri_ordered_for_a_quadriplegia_cannot_answer_it() -> None:
    a = decide(deficit("G82.50"), infected="thoracic", ordered="thoracic", code="72157")
    assert a.study_gaps == {"ServiceRequest/sr1": "level"}


def test_cauda_equina_syndrome_stays_lumbar() -> None:
    """Lumbosacral: a lumbar MRI with gadolinium saw it, and a lumbar MRI answers it."""
    assert len(seen(decide(deficit("G83.4"), [study("72158")]))) == 1
    a = decide(deficit("G83.4"))
    assert a.study_gaps == {}
    assert rating(a) == ["appropriate"]


def _urgent_card(region: str, ordered: Any) -> dict[str, Any]:
    data = PatientData(conditions=(nvo(region=region), deficit("G82.20")), measurements=MARKERS)
    a = assess([ordered], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    (only,) = render_response(a, CTX)["cards"]
    card: dict[str, Any] = only
    return card


def test_the_urgent_summary_names_the_missed_infected_level_before_the_deficits() -> None:
    """A cervical infection, a new paraplegia, a lumbar MRI: both levels are missed. The
    summary said "the infection is cervical ...; spine surgery now" until the paraplegia
    had a level; then the deficit's note took its place (a re-run of 314 scenarios)."""
    card = _urgent_card("cervical", order(22, region="lumbar"))
    assert card["summary"].startswith("New paraplegia")
    assert "the infection is cervical" in card["summary"]
    assert "spine surgery now" in card["summary"]
    assert len(card["summary"]) <= 140


def test_a_study_of_the_infected_level_misses_a_paraplegias_thoracic_cause_only() -> None:
    """A cervical infection, a new paraplegia, a cervical CT: the cervical level may hold
    the cause (a cervical abscess can take the legs first), so the card says the study
    may miss a thoracic cause, not that the cause is thoracic, and keeps the surgeon."""
    ct = order(22, region="cervical", code="72125", modality=Modality.CT)
    card = _urgent_card("cervical", ct)
    assert "points to the thoracic level or above" in card["detail"]
    assert "may miss a thoracic cause" in card["detail"]
    assert "the cervical CT may miss a thoracic cause" in card["summary"]
    assert "spine surgery" in card["summary"]


def test_a_deficit_pointing_away_from_the_infection_asks_for_the_whole_spine_only() -> None:
    """Quadriplegia in a lumbar infection, a thoracic MRI ordered (a clinician reader saw
    "emergency MRI of the lumbar or whole spine": a lumbar MRI cannot show its cause)."""
    data = PatientData(conditions=(nvo(region="lumbar"), deficit("G82.50")), measurements=MARKERS)
    a = assess(
        [order(22, region="thoracic", code="72157")],
        data,
        RuleSettings(),
        datetime(2030, 1, 1, tzinfo=UTC),
    )
    (card,) = render_response(a, CTX)["cards"]
    assert "the infection is lumbar; emergency MRI of the whole spine" in card["summary"]
    assert "lumbar or whole spine" not in card["summary"]
    assert "spine surgery" in card["summary"]


def test_an_order_of_the_infected_level_beside_one_that_misses_it_is_not_said_to_miss() -> None:
    """Cauda equina syndrome in a lumbar infection, a lumbar and a thoracic MRI signed
    together: the lumbar one images the infection, so the summary does not say "the
    infection is lumbar; MRI of the lumbar or whole spine" as if no order did."""
    ces = deficit("G83.4")
    data = PatientData(conditions=(nvo(region="lumbar"), ces), measurements=MARKERS)
    orders = [order(22), order(22, ref="ServiceRequest/sr2", region="thoracic", code="72157")]
    a = assess(orders, data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    (card,) = render_response(a, CTX)["cards"]
    assert "the infection is lumbar" not in card["summary"]
    assert "spine surgery" in card["summary"]
