"""CRP values reported with a comparator ("<10", ">10"). clinical-rules.md: "A comparator
value is taken at its limit and marked", and "a change within the normal range is neither
a plateau nor a rise". An outside review found "<10" read as exactly 10 mg/L: "CRP fell
less than 25%: 12→<10 mg/L", "CRP rising again: 6→<10 mg/L (+66.7%)"; and a high-
sensitivity CRP of ">10" called "never raised (at most 10 mg/L since diagnosis)".

A value reported below (or at most) a limit at or below the normal limit (10 mg/L) is
within the normal range: no plateau, no rise, no pending rise. A limit above the normal
limit is taken at its value ("<12" reads as 12). A value reported above a limit may lie
anywhere above it: the CRP is not shown never to have risen."""

from __future__ import annotations

import pytest

from cds_service.engine import Assessment, Recommendation
from fhir_mappers.model import DataIssue
from tests.engine.builders import crp, day, pain, run

FALLING_PAIN = [pain(0, 7), pain(14, 5), pain(28, 3)]


def markers_fired(a: Assessment) -> bool:
    return any(f.rule_id == "markers-not-responding" for f in a.red_flags)


def notes(a: Assessment) -> list[str]:
    return [n.code for n in a.notes]


@pytest.mark.parametrize("comparator", ["<", "<="])
def test_a_crp_reported_below_the_normal_limit_is_no_plateau(comparator: str) -> None:
    a = run([crp(0, 12), crp(28, 10, comparator=comparator), *FALLING_PAIN])
    assert not markers_fired(a)


def test_a_limit_above_the_normal_limit_is_taken_at_its_value() -> None:
    """The boundary: "<10" is within the normal range, "<12" (normal limit 10) may be 11,
    so it is read at 12, as the rules read any comparator, and 12→<12 is a plateau."""
    assert not markers_fired(run([crp(0, 12), crp(28, 10, comparator="<"), *FALLING_PAIN]))
    assert markers_fired(run([crp(0, 12), crp(28, 12, comparator="<"), *FALLING_PAIN]))


@pytest.mark.parametrize("comparator", ["<", "<="])
def test_a_crp_reported_below_the_normal_limit_is_no_rise(comparator: str) -> None:
    a = run(
        [crp(0, 40), crp(14, 6), crp(20, 10, comparator=comparator), pain(0, 7), pain(20, 4)],
        order_day=21,
    )
    assert not markers_fired(a)


def test_the_rise_boundary_is_the_normal_limit() -> None:
    base = [crp(0, 40), crp(14, 6), pain(0, 7), pain(20, 4)]
    assert not markers_fired(run([*base, crp(20, 10, comparator="<")], order_day=21))
    risen = run([*base, crp(20, 10.5, comparator="<")], order_day=21)  # may be 10.4 mg/L
    assert markers_fired(risen)


def test_a_crp_reported_below_the_normal_limit_is_below_it_for_advise_against() -> None:
    """12→<10 mg/L has reached the normal range ("or is below the normal limit"); "<=10"
    may be 10 itself and has not shown it."""
    below = run([crp(0, 12), crp(28, 10, comparator="<"), *FALLING_PAIN])
    assert below.recommendation is Recommendation.ADVISE_AGAINST
    (finding,) = below.rules_fired
    assert finding.data["belowNormal"] is True
    at_most = run([crp(0, 12), crp(28, 10, comparator="<="), *FALLING_PAIN])
    assert at_most.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in at_most.unmet] == ["crp-not-falling"]


def test_a_pending_crp_reported_below_the_normal_limit_is_no_pending_rise() -> None:
    pending = DataIssue(
        reference="Observation/pending",
        reason="status preliminary: not used",
        kind="crp",
        plain="not yet final",
        value=10.0,
        unit="mg/L",
        when=day(29, 10),
        status="preliminary",
        comparator="<",
    )
    a = run([crp(0, 142), crp(28, 5), *FALLING_PAIN], issues=[pending], order_day=30)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("comparator", [">", ">="])
def test_a_crp_reported_above_the_normal_limit_was_raised(comparator: str) -> None:
    """An hs-CRP assay reports ">10": the CRP rose above the normal limit."""
    a = run([crp(0, 10, comparator=comparator, hs=True), crp(28, 4, hs=True), *FALLING_PAIN])
    assert "crp-never-raised" not in notes(a)


def test_a_crp_reported_above_any_limit_is_not_shown_never_raised() -> None:
    """ ">5" may be 50: "at most 8 mg/L since diagnosis" would claim what it does not say;
    values reported below a limit at or below the normal limit still show it."""
    above = run([crp(0, 8), crp(14, 5, comparator=">"), crp(28, 4), *FALLING_PAIN])
    assert "crp-never-raised" not in notes(above)
    below = run([crp(0, 8), crp(14, 10, comparator="<="), crp(28, 4), *FALLING_PAIN])
    assert "crp-never-raised" in notes(below)
