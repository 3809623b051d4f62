"""A card never orders a CRP (or ESR) that is already on its way: one drafted in the same
order set, or one drawn after the latest counted CRP whose result is not in yet (an
outside clinician's review, 2026-12-08: "Order CRP and ESR" beside a draft CRP in the
order set, and beside a CRP drawn on day 28 with status registered). The awaited
Observation goes through the real mapper, so its left-out record is the one a chart
produces."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cds_service.engine import Recommendation
from cds_service.engine.assessment import Assessment
from cds_service.engine.next_steps import AWAIT_CRP, REPEAT_CRP_ESR
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import DataIssue, MeasurementKind
from fhir_mappers.observations import map_observations
from fhir_mappers.observations_careful import MappingOptions
from tests.engine.builders import T0, crp, pain, run
from tests.engine.test_clinician_revision import card

VS = load_value_sets()
CRP, ESR = MeasurementKind.CRP, MeasurementKind.ESR
# the reviewer's course: the latest CRP 15 days old on the order's day (29)
STALE = [crp(0, 142), crp(14, 61), pain(0, 8), pain(14, 5), pain(28, 3)]


def left_out(day: int, status: str = "registered", **value: Any) -> tuple[DataIssue, ...]:
    resource = {
        "resourceType": "Observation",
        "id": f"drawn{day}",
        "status": status,
        "code": {"coding": [{"system": "http://loinc.org", "code": "1988-5"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": f"{(T0 + timedelta(days=day)).isoformat()}T08:00:00Z",
        **value,
    }
    measurements, issues = map_observations([resource], VS, MappingOptions())
    assert not measurements
    return issues


def steps(a: Assessment) -> tuple[tuple[MeasurementKind, ...], tuple[MeasurementKind, ...]]:
    return a.next_steps.marker_orders, a.next_steps.markers_drafted


def test_without_a_draft_the_stale_crp_asks_for_both() -> None:
    a = run(STALE)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert steps(a) == ((CRP, ESR), ())


@pytest.mark.parametrize(
    ("drafted", "ordered"),
    [((CRP,), (ESR,)), ((ESR,), (CRP,)), ((CRP, ESR), ())],
    ids=["crp", "esr", "both"],
)
def test_a_drafted_marker_is_not_ordered_again(
    drafted: tuple[MeasurementKind, ...], ordered: tuple[MeasurementKind, ...]
) -> None:
    a = run(STALE, drafted_markers=drafted)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert steps(a) == (ordered, drafted)


def test_a_drafted_crp_the_card_would_not_ask_for_is_not_named() -> None:
    a = run([crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)], drafted_markers=[CRP])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert steps(a) == ((), ())


def test_the_card_orders_the_esr_alone_and_says_the_crp_is_in_the_order_set() -> None:
    shown = card(run(STALE, drafted_markers=[CRP]))
    (suggestion,) = shown["suggestions"]
    assert suggestion["label"] == "Order an ESR"
    assert [a["resource"]["code"]["coding"][0]["code"] for a in suggestion["actions"]] == ["4537-7"]
    assert "- A CRP is already in this order set: not ordered again." in shown["detail"]


def test_with_both_drafted_no_lab_order_is_offered() -> None:
    shown = card(run(STALE, drafted_markers=[CRP, ESR]))
    assert "suggestions" not in shown
    assert "A CRP and an ESR are already in this order set" in shown["detail"]


def test_a_crp_drawn_after_the_latest_awaiting_its_result_is_named_and_not_ordered() -> None:
    a = run(STALE, issues=left_out(28))
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (note,) = [n for n in a.notes if n.code == "crp-awaited"]
    assert (note.data["day"], note.data["status"], note.data["count"]) == (28, "registered", 1)
    assert a.next_steps.marker_orders == (ESR,)
    assert a.next_steps.markers_asked == AWAIT_CRP


def test_the_awaited_crp_card_names_its_day_once() -> None:
    shown = card(run(STALE, issues=left_out(28)))
    detail = shown["detail"]
    assert "- A CRP drawn on day 28 awaits its result (status registered): not used yet." in detail
    assert "not final" not in detail  # named, not only counted
    assert shown["summary"].endswith("CRP result awaited")
    assert [s["label"] for s in shown["suggestions"]] == ["Order an ESR"]


@pytest.mark.parametrize("status", ["preliminary", "registered"])
def test_an_awaited_crp_before_the_latest_counted_one_changes_nothing(status: str) -> None:
    a = run(STALE, issues=left_out(10, status))
    assert not [n for n in a.notes if n.code == "crp-awaited"]
    assert steps(a) == ((CRP, ESR), ())
    assert a.next_steps.markers_asked == REPEAT_CRP_ESR
    # still named with its day among the data left out
    assert "Not used: CRP drawn on day 10, result not in yet (status " in card(a)["detail"]


@pytest.mark.parametrize("drawn", [21, 30], ids=["8-days-before-the-order", "after-the-order"])
def test_a_crp_not_drawn_in_the_last_week_is_not_awaited(drawn: int) -> None:
    """A re-check: a CRP registered 8 days or more before the order has a lost result,
    not one on its way; one dated after the order was not drawn. Neither is awaited: the
    card orders a CRP as it would without it."""
    a = run(STALE, issues=left_out(drawn))
    assert not [n for n in a.notes if n.code == "crp-awaited"]
    assert a.next_steps.marker_orders == (CRP, ESR)
    assert a.next_steps.markers_asked == REPEAT_CRP_ESR
