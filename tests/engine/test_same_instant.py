"""Values of one kind charted at the same instant: the answer must not depend on the
resource ids the EHR gave them. An outside review charted pain 3 and 5 at one moment
(two pain scales) and got "pain worse" or "improving" by which id sorted last. The
higher of them is read as the latest (the worse reading for CRP, ESR and pain), and the
lower as a baseline (``limits.sort_key``)."""

from __future__ import annotations

import pytest
from msgspec import structs

from cds_service.engine import Assessment, Recommendation
from fhir_mappers.model import Measurement
from tests.engine.builders import crp, pain, run


def both_ways(first: Measurement, second: Measurement) -> tuple[Measurement, Measurement]:
    """The same two values with their references swapped."""
    return (
        structs.replace(first, reference=second.reference),
        structs.replace(second, reference=first.reference),
    )


def decide(markers: list[Measurement]) -> Assessment:
    return run(markers, order_day=29)


@pytest.mark.parametrize("swap", [False, True])
def test_pain_scores_at_one_moment_read_the_worse_as_latest(swap: bool) -> None:
    """The review's case: pain 6 → 3, then 3 and 5 at day 28 09:00, CRP 140 → 18."""
    low, high = pain(28, 3, hour=9, ref="Observation/a"), pain(28, 5, hour=9, ref="Observation/b")
    if swap:
        low, high = both_ways(low, high)
    a = decide([crp(0, 140), crp(14, 60), crp(28, 18), pain(0, 6), pain(14, 3), low, high])
    assert a.figures.pain_latest is not None and a.figures.pain_latest.value == 5
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.red_flags] == ["pain-worse"]
    assert [m.value for m in a.pain] == [6, 3, 3, 5]  # shown in the order read


@pytest.mark.parametrize("swap", [False, True])
def test_crps_at_one_moment_read_the_higher_as_latest(swap: bool) -> None:
    """100 mg/L at the start, then 74 and 80 at one moment of day 28 (within the
    discordant-pair limit of 50%): the plateau is judged on 80 (-20%) either way."""
    low, high = crp(28, 74, hour=8, ref="Observation/a"), crp(28, 80, hour=8, ref="Observation/b")
    if swap:
        low, high = both_ways(low, high)
    a = decide([crp(0, 100), low, high, pain(0, 6), pain(28, 2)])
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 80
    assert [f.rule_id for f in a.red_flags] == ["markers-not-responding"]


@pytest.mark.parametrize("swap", [False, True])
def test_a_first_value_at_one_moment_is_the_lower(swap: bool) -> None:
    """No CRP within 7 days of the start: the baseline is the first after it. Two at one
    moment of day 10 (90 and 100 mg/L): the fall is measured from 90, the smaller fall,
    whichever id sorts first. (Within the window the highest is the baseline, by rule.)"""
    low, high = crp(10, 90, hour=8, ref="Observation/a"), crp(10, 100, hour=8, ref="Observation/b")
    if swap:
        low, high = both_ways(low, high)
    a = decide([low, high, crp(28, 20), pain(0, 6), pain(28, 2)])
    assert a.figures.crp_baseline is not None and a.figures.crp_baseline.value == 90


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize(("limit", "plain_is_latest"), [("<", True), ("<=", True), (">", False)])
def test_a_limit_and_a_plain_value_at_one_moment_are_ordered_by_what_they_say(
    swap: bool, limit: str, plain_is_latest: bool
) -> None:
    """A review's case: CRP 12 → "<10" and "10" at day 28 08:00. "<10" says the true value
    is below 10, so the plain 10 is the worse reading and the latest (a plateau above the
    normal limit: support); by id, either could be read last. ">10" is the worse one."""
    limited = crp(28, 10, comparator=limit, hour=8, ref="Observation/a")
    plain = crp(28, 10, hour=8, ref="Observation/b")
    if swap:
        limited, plain = both_ways(limited, plain)
    a = decide([crp(0, 12), limited, plain, pain(0, 6), pain(28, 3)])
    latest = a.figures.crp_latest
    assert latest is not None
    assert latest.comparator == (None if plain_is_latest else limit), latest
