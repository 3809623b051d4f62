"""Prior imaging (clinical-rules.md, "Imaging", 2026-12-06): cards name the last spine
study of the episode and its day; when a red flag predates a study done in the last
``prior_study_days`` (3) days, the card says it was seen there and a new MRI is needed
only if the exam changed. Studies go through the FHIR mapper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, RuleSettings, assess
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import PatientData
from fhir_mappers.prior_imaging import map_prior_imaging
from tests.engine.builders import CPT, T0, improving, neuro, nvo, order

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
    assert "seen on the lumbar MRI of day 26 (1 day ago)" in card["summary"]
    assert "a new MRI only if the exam changed" in card["summary"]
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
