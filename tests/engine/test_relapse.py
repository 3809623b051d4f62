"""A relapse or recurrence recorded on the infection's Condition is never advised against:
its treatment start would be counted from the first course (an outside clinician's review,
2026-12-07: a relapse whose CRP fell slowly read "improving, -53%" against the first
course's baseline, with a delete suggestion)."""

from __future__ import annotations

import pytest

from cds_service.engine import Assessment, Recommendation
from tests.engine.builders import antibiotic, crp, nvo, pain, run
from tests.engine.test_clinician_revision import card

# The first course from day 0; the relapse course from day 200, its CRP 120 -> 70 by its
# day 28: a slow fall, read against the first baseline of 150 as -53%.
VALUES = [crp(0, 150), crp(200, 120), crp(214, 95), crp(228, 70)]
PAIN = [pain(0, 8), pain(200, 7), pain(228, 5)]
COURSES = [antibiotic(0, "cefazolin"), antibiotic(200, "vancomycin")]


def assess_with(status: str) -> Assessment:
    return run([*VALUES, *PAIN], [nvo(clinical=status)], order_day=229, antibiotics=COURSES)


def test_an_active_entry_reads_the_same_values_as_improving() -> None:
    assert assess_with("active").recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("status", ["relapse", "recurrence"])
def test_a_relapse_or_recurrence_is_not_advised_against(status: str) -> None:
    a = assess_with(status)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "relapse-recorded"]
    assert remark.data["status"] == status
    assert remark.data["laterOrder"]["name"] == "vancomycin"
    shown = card(a)
    assert f"{status} recorded" in shown["summary"]
    assert "the vancomycin order started" in shown["detail"]


def test_a_relapse_without_a_later_order_says_so_without_naming_one() -> None:
    a = run([*VALUES, *PAIN], [nvo(clinical="relapse")], order_day=229, antibiotics=COURSES[:1])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    (remark,) = [r for r in a.missing if r.code == "relapse-recorded"]
    assert "laterOrder" not in remark.data
    assert "may be its treatment" not in card(a)["detail"]
