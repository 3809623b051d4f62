"""Prior imaging (clinical-rules.md, "Imaging", 2026-12-06): cards name the last spine
study of the episode and its day; when a red flag predates a study done in the last
``prior_study_days`` (3) days, the card says it was seen there and a new MRI is needed
only if the exam changed. Studies go through the FHIR mapper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace as replace_record

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import ConditionCategory, PatientData
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import (
    CPT,
    T0,
    condition,
    crp,
    improving,
    neuro,
    nvo,
    order,
    pain,
)
from tests.engine.builders import day as bday

VS = load_value_sets()
LOINC = "http://loinc.org"


def study(day: int, kind: str = "ImagingStudy", status: str | None = None) -> dict[str, Any]:
    when = (T0 + timedelta(days=day)).isoformat() + "T20:00:00Z"
    if kind == "ImagingStudy":
        return {
            "resourceType": "ImagingStudy",
            "id": f"s{day}",
            "status": status or "available",
            "started": when,
            "procedureCode": [{"coding": [{"system": CPT, "code": "72158"}]}],
        }
    return {
        "resourceType": "DiagnosticReport",
        "id": f"r{day}",
        "status": status or "final",
        "code": {"coding": [{"system": LOINC, "code": "24967-2"}]},
        "effectiveDateTime": when,
    }


def decide(resources: list[dict[str, Any]], flag_day: int | None, order_day: int) -> Assessment:
    studies, issues = map_prior_imaging(resources, VS)
    assert not issues
    conds = (nvo(),) if flag_day is None else (nvo(), neuro(onset=flag_day))
    data = PatientData(conditions=conds, measurements=tuple(improving()[:5]), prior_studies=studies)
    return assess([order(order_day)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def codes(a: Assessment) -> list[str]:
    return [n.code for n in a.notes]


@pytest.mark.parametrize("kind", ["ImagingStudy", "DiagnosticReport"])
def test_the_last_spine_study_is_named_with_its_day(kind: str) -> None:
    a = decide([study(5, kind), study(20, kind)], None, 29)
    (last,) = [n for n in a.notes if n.code == "last-spine-study"]
    assert (last.data["day"], last.data["daysAgo"]) == (20, 9)


@pytest.mark.parametrize(("study_day", "seen"), [(24, True), (23, False)])
def test_the_three_day_window_boundary(study_day: int, seen: bool) -> None:
    a = decide([study(study_day)], 20, 27)
    assert ("flag-seen-on-study" in codes(a)) is seen


def test_a_flag_after_the_study_was_not_seen_on_it() -> None:
    a = decide([study(25)], 26, 27)
    assert "flag-seen-on-study" not in codes(a)
    assert "last-spine-study" in codes(a)


def test_the_card_says_it_was_seen_and_that_a_new_mri_needs_a_changed_exam() -> None:
    a = decide([study(26)], 20, 27)
    card = render_response(a, CardContext(patient_id="p1"))["cards"][0]
    assert "seen on a recent MRI" in card["summary"]  # the study in the detail's first line
    assert "a new MRI only if the exam changed; urgent spine surgery review" in card["summary"]
    assert "Seen on the lumbar MRI of day 26 (1 day ago)" in card["detail"]
    # said once in the detail, in its bold first line, not again among the notes
    assert card["detail"].count("a new MRI only if the exam changed") == 1


@pytest.mark.parametrize(
    "resource",
    [
        study(20, status="registered"),
        study(20, "DiagnosticReport", status="cancelled"),
        {**study(20), "procedureCode": [{"coding": [{"system": CPT, "code": "70551"}]}]},
    ],
)
def test_what_is_not_a_spine_study_done_is_not_named(resource: dict[str, Any]) -> None:
    assert "last-spine-study" not in codes(decide([resource], None, 29))


def test_a_study_long_before_the_episode_is_not_named() -> None:
    assert "last-spine-study" not in codes(decide([study(-30)], None, 29))


# --- "seen on the MRI" needs a study that can show the finding (an outside review) ------
# The review found "New cauda equina syndrome (day 26), seen on the lumbar MRI of day 26: a
# new MRI only if the exam changed" also when the MRI was done that morning and the
# deficit recorded that evening, when the study was a cervical MRI for a lumbar infection,
# and when it was a lumbar CT without contrast. Seen means: done after the finding, of its
# level, and a study that answers the question (clinical-rules.md, "Imaging": MRI with
# gadolinium for a deficit or an abscess).


def done(
    day: int, time: str | None = "21:15", code: str = "72158", system: str = CPT
) -> dict[str, Any]:
    """A spine study done on ``day`` (at ``time`` UTC; None: date only)."""
    d = (T0 + timedelta(days=day)).isoformat()
    return {
        "resourceType": "ImagingStudy",
        "id": f"s{day}-{code}-{time}",
        "status": "available",
        "started": d if time is None else f"{d}T{time}:00Z",
        "procedureCode": [{"coding": [{"system": system, "code": code}]}],
    }


def cauda_equina(day: int, hour: int | None = 18, region: str | None = "lumbosacral") -> Any:
    """A new cauda equina syndrome on ``day`` (at ``hour`` UTC; None: date only)."""
    return replace_record(neuro(onset=day, region=region), onset=bday(day, hour))


def seen_with(
    resources: list[dict[str, Any]],
    findings: list[Any],
    order_day: int = 27,
    region: str | None = "lumbar",
    measurements: Any = None,
) -> Assessment:
    studies, issues = map_prior_imaging(resources, VS)
    assert not issues
    data = PatientData(
        conditions=(nvo(region=region), *findings),
        measurements=tuple(improving()[:5] if measurements is None else measurements),
        prior_studies=studies,
    )
    return assess([order(order_day)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def seen_notes(a: Assessment) -> list[Any]:
    return [n for n in a.notes if n.code == "flag-seen-on-study"]


def test_a_study_done_before_the_finding_the_same_day_did_not_see_it() -> None:
    assert seen_notes(seen_with([done(26, "07:15")], [cauda_equina(26, 18)])) == []
    # the same MRI done that evening, after the deficit was recorded, saw it
    (note,) = seen_notes(seen_with([done(26, "21:15")], [cauda_equina(26, 18)]))
    assert note.data["allRedFlags"] is True


@pytest.mark.parametrize(
    ("study_time", "finding_hour"),
    [(None, 18), ("21:15", None), (None, None)],
    ids=["study-date-only", "finding-date-only", "both-date-only"],
)
def test_a_same_day_pair_with_a_date_only_side_cannot_show_the_order(
    study_time: str | None, finding_hour: int | None
) -> None:
    a = seen_with([done(26, study_time)], [cauda_equina(26, finding_hour)])
    assert seen_notes(a) == []
    assert "last-spine-study" in codes(a)  # the study is still named


def test_a_date_only_side_counts_from_the_next_day() -> None:
    a = seen_with([done(26, None)], [cauda_equina(25, None)])
    assert [n.data["day"] for n in seen_notes(a)] == [26]
    assert seen_notes(seen_with([done(25, None)], [cauda_equina(25, None)])) == []


@pytest.mark.parametrize(
    ("code", "system"),
    [
        ("72156", CPT),  # cervical MRI without and with gadolinium
        ("72131", CPT),  # lumbar CT without contrast
        ("72133", CPT),  # lumbar CT without and with contrast: still not the MRI
        ("72148", CPT),  # lumbar MRI without contrast
        ("24968-0", LOINC),  # "MR Lumbar spine": its code does not say gadolinium
    ],
    ids=["cervical-mri", "ct-without", "ct-with", "mri-without-contrast", "mri-contrast-unknown"],
)
def test_a_study_that_cannot_answer_the_question_did_not_see_the_deficit(
    code: str, system: str
) -> None:
    a = seen_with([done(26, code=code, system=system)], [cauda_equina(26, 18)])
    assert seen_notes(a) == []
    assert "last-spine-study" in codes(a)


def test_the_study_must_cover_the_deficit_level_as_well_as_the_infection() -> None:
    """A thoracic infection with cauda equina syndrome (lumbosacral): a thoracic MRI with
    gadolinium images the infection but not the cauda equina, a lumbar one the cauda
    equina but not the infection (as for an order, "The study must answer the question")."""
    for code in ("72157", "72158"):  # thoracic, lumbar MRI without and with gadolinium
        a = seen_with([done(26, code=code)], [cauda_equina(26, 18)], region="thoracic")
        assert seen_notes(a) == []
    whole = done(26, code="30855-1", system=LOINC)  # MR whole spine without and with
    (note,) = seen_notes(seen_with([whole], [cauda_equina(26, 18)], region="thoracic"))
    assert note.data["region"] == "spine"


def test_the_study_that_saw_it_is_named_not_a_later_one_that_could_not() -> None:
    later_ct = done(26, "23:00", code="72131")  # the last study: a CT without contrast
    a = seen_with([done(26, "21:15"), later_ct], [cauda_equina(26, 18)])
    (last,) = [n for n in a.notes if n.code == "last-spine-study"]
    assert last.data["modality"] == "CT"
    (note,) = seen_notes(a)
    assert note.data["modality"] == "MRI"


def test_a_mechanical_finding_is_never_said_to_be_seen() -> None:
    """Its study is standing radiographs, which no spine MRI or CT on record replaces."""
    collapse = replace_record(
        condition("M48.56XA", ConditionCategory.MECHANICAL, onset=26, name="collapsed vertebra"),
        onset=bday(26, 18),
    )
    for code in ("72158", "72131"):
        assert seen_notes(seen_with([done(26, code=code)], [collapse])) == []


def test_a_new_mri_is_not_rated_appropriate_when_every_red_flag_was_seen() -> None:
    """The card says a new MRI only if the exam changed: the service cannot see the exam,
    so it does not rate the order appropriate (example e40)."""
    a = seen_with([done(26)], [cauda_equina(26, 18)])
    assert a.study_gaps == {"ServiceRequest/sr1": "seen-on-study"}
    response = render_response(a, CardContext(patient_id="p1", value_sets=VS))
    assert response.get("systemActions", []) == []
    assert response["cards"][0].get("suggestions", []) == []


def test_another_red_flag_not_seen_keeps_the_mri_and_its_rating() -> None:
    """Rising markers beside the deficit: the MRI still answers them, so the order keeps
    its rating. The deficit seen on the MRI keeps the card urgent (the exam and the
    surgeon), with no new MRI for it unless the exam changed."""
    rising = [crp(0, 142), crp(14, 40), crp(26, 90), pain(0, 8), pain(26, 5)]
    a = seen_with([done(26)], [cauda_equina(26, 18)], measurements=rising)
    assert [f.rule_id for f in a.red_flags] == ["neuro", "markers-not-responding"]
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    (note,) = seen_notes(a)
    assert note.data["allRedFlags"] is False
    assert note.data["flagsSeen"] == ["neuro"]
    assert a.study_gaps == {}
    card = render_response(a, CardContext(patient_id="p1"))["cards"][0]
    assert "a new MRI for it only if the exam changed" in card["summary"] + card["detail"]
    assert card.get("suggestions", []) == []  # no STAT order for a deficit seen yesterday


# Flag by flag (an outside review: a cauda equina syndrome seen on yesterday's lumbar MRI
# with gadolinium, beside a CRP plateau not imaged since, made the card urgent, "emergency
# MRI ... now" with a STAT suggestion, while its detail said the deficit was seen there;
# a second reader: setting the deficit aside lost the urgency and the surgeon). The card
# stays urgent for the exam and the surgeon; no emergency MRI for the deficit.
PLATEAU = [crp(0, 120), crp(14, 110), crp(30, 105), pain(0, 7), pain(14, 6), pain(30, 6)]


def test_a_deficit_seen_beside_an_unseen_plateau_asks_no_emergency_mri() -> None:
    a = seen_with([done(30)], [cauda_equina(30, 18)], measurements=PLATEAU, order_day=31)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert [f.rule_id for f in a.red_flags] == ["neuro", "markers-not-responding"]
    assert a.study_gaps == {}
    card = render_response(a, CardContext(patient_id="p1", value_sets=VS))["cards"][0]
    assert "emergency MRI" not in card["summary"] and card.get("suggestions", []) == []
    assert "urgent spine surgery review" in card["summary"]
    (note,) = seen_notes(a)
    assert (note.data["allRedFlags"], note.data["flagsSeen"]) == (False, ["neuro"])
    assert [c["name"] for c in note.data["conditions"]] == ["Cauda equina syndrome"]


def test_a_new_abscess_not_seen_decides_beside_a_deficit_that_was() -> None:
    abscess = replace_record(
        condition("G06.2", ConditionCategory.COMPLICATION, onset=26, name="epidural abscess"),
        onset=bday(26, 23),  # after the MRI of 21:15: not seen on it
    )
    a = seen_with([done(26)], [cauda_equina(26, 18), abscess])
    assert a.recommendation is Recommendation.SUPPORT_URGENT  # the deficit: exam, surgeon
    assert [f.rule_id for f in a.red_flags] == ["neuro", "complication"]


def test_a_deficit_not_seen_keeps_the_card_urgent_beside_one_that_was() -> None:
    """The neurologic flag stands while one of its deficits was not seen."""
    later = cauda_equina(30, 23)  # after the MRI of 21:15
    a = seen_with([done(30)], [cauda_equina(30, 18), later], measurements=PLATEAU, order_day=31)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert {f.rule_id for f in a.red_flags} == {"neuro", "markers-not-responding"}
    (note,) = seen_notes(a)
    assert note.data["flagsSeen"] == []


def test_every_red_flag_seen_keeps_them_all() -> None:
    """Unchanged: the flags stand, the card says a new MRI only if the exam changed."""
    a = seen_with([done(26)], [cauda_equina(26, 18)])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert [f.rule_id for f in a.red_flags] == ["neuro"]
    (note,) = seen_notes(a)
    assert (note.data["allRedFlags"], note.data["flagsSeen"]) == (True, ["neuro"])
