"""A card never orders a CRP (or ESR) that is already on its way: one drafted in the same
order set (an outside clinician's review, 2026-12-08: "Order CRP and ESR" beside a draft
CRP in the order set)."""

from __future__ import annotations

import pytest

from cds_service.engine import Recommendation
from cds_service.engine.assessment import Assessment
from fhir_mappers.model import MeasurementKind
from tests.engine.builders import crp, pain, run
from tests.engine.test_clinician_revision import card

CRP, ESR = MeasurementKind.CRP, MeasurementKind.ESR
# the reviewer's course: the latest CRP 15 days old on the order's day (29)
STALE = [crp(0, 142), crp(14, 61), pain(0, 8), pain(14, 5), pain(28, 3)]


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
