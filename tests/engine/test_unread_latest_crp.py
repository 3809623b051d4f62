"""A resulted CRP newer than the latest counted one that the service cannot read (a text
result, a number without a unit, units that disagree) blocks advise-against, as a pending
rise does: "95 mg/L" written as text hid a rise behind an advise-against card and a delete
suggestion (an outside clinician's review, 2026-12-07). The Observations go through the
real mapper, so the left-out reasons are the ones a chart produces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.engine import Recommendation
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import MeasurementKind
from fhir_mappers.observations import map_observations
from fhir_mappers.observations_careful import MappingOptions
from tests.engine.builders import T0, crp, pain, run

VS = load_value_sets()
LOINC = "http://loinc.org"
COURSE = [crp(0, 150), crp(14, 60), crp(23, 20), pain(0, 7), pain(28, 2)]


def crp_resource(n: int, status: str = "final", **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"late{n}",
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": "1988-5"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": f"{(T0 + timedelta(days=n)).isoformat()}T08:00:00Z",
        **value,
    }


def assessed(resource: dict[str, Any]) -> Any:
    measurements, issues = map_observations([resource], VS, MappingOptions())
    assert not measurements  # the point: it is left out
    return run([*COURSE], issues=issues)


def test_an_unreadable_preliminary_crp_after_the_latest_blocks_too() -> None:
    # an outside clinician's re-run: a preliminary "see comment" left advise-against
    a = assessed(crp_resource(28, status="preliminary", valueString="see comment"))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert a.missing[0].code == "crp-unread-latest"


UNREADABLE = {
    "text": {"valueString": "95 mg/L"},
    "no unit": {"valueQuantity": {"value": 9.5}},
    "units disagree": {"valueQuantity": {"value": 9.5, "unit": "mg/L", "code": "mg/dL"}},
}


@pytest.mark.parametrize("value", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_crp_after_the_latest_blocks_advise_against(value: dict[str, Any]) -> None:
    a = assessed(crp_resource(28, **value))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "crp-unread-latest"]
    assert (remark.data["day"], remark.data["latest"]["day"]) == (28, 23)
    assert a.next_steps.marker_orders == (MeasurementKind.CRP,)
    assert a.next_steps.markers_asked is None  # the remark asks for it


def test_without_it_the_same_course_is_advised_against() -> None:
    assert run(COURSE).recommendation is Recommendation.ADVISE_AGAINST


def test_an_unreadable_crp_before_the_latest_counted_one_does_not_block() -> None:
    a = assessed(crp_resource(20, valueString="95 mg/L"))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "registered"])
def test_a_crp_that_is_no_result_yet_or_none_at_all_does_not_block(status: str) -> None:
    # entered-in-error and cancelled are no results; a registered one has none yet (the
    # design's pending rule reads it by its value, when it has one)
    a = assessed(crp_resource(28, status=status, valueString="95 mg/L"))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_the_card_asks_for_it_to_be_read_and_names_it_as_sent() -> None:
    from tests.engine.test_clinician_revision import card

    shown = card(assessed(crp_resource(28, valueString="95 mg/L")))
    assert "CRP of day 28 not readable" in shown["summary"]
    assert "A CRP resulted on day 28, after 20 mg/L on day 23, could not be read" in shown["detail"]
    assert 'Not used: CRP "95 mg/L" on day 28' in shown["detail"]
    assert [s["label"] for s in shown.get("suggestions", [])] == ["Order a CRP"]


def test_the_unread_crp_leads_the_summary_before_an_old_latest_one() -> None:
    # an outside clinician's re-run: "latest CRP 15 days old" led the summary while
    # yesterday's CRP was on record, only unreadable
    from tests.engine.test_clinician_revision import card

    _, issues = map_observations([crp_resource(28, valueString="<5")], VS, MappingOptions())
    a = run([crp(0, 140), crp(14, 60), pain(0, 7), pain(28, 2)], issues=issues)
    assert [r.code for r in a.missing][:1] == ["crp-unread-latest"]
    summary = card(a)["summary"]
    assert summary.startswith("Not enough data to judge repeat spine MRI: CRP of day 28 not")
