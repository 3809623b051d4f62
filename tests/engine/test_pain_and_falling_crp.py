"""Worse pain while the CRP keeps falling: "think mechanical (collapse, instability):
upright radiographs or CT" (clinical-rules.md, "What a card should say"), so a CT without
contrast answers it. An outside review found this reading for any CRP fall above 0%: CRP
100→92→97 (-3%, rising again) with pain 7→9 was told "think mechanical" and a CT without
contrast was rated appropriate; a plateau with pain up read both "less than a 25% fall"
and "the CRP keeps falling". The CRP keeps falling only when its response is the
favourable one of advise-against (a fall of at least 25% or below the normal limit, not a
slow fall, not a discordant pair), from a CRP that was raised, and no markers flag fired;
otherwise worse pain points to failure or an abscess: MRI with gadolinium."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cds_service.engine import Assessment, Recommendation
from fhir_mappers.model import Measurement, Modality
from tests.engine.builders import crp, order, pain, run

CT_WITHOUT = replace(
    order(29, code="72131", modality=Modality.CT), contrast="without"
)  # lumbar CT without contrast


def decide(markers: list[Measurement], order_day: int = 29) -> Assessment:
    ct = replace(CT_WITHOUT, authored_on=order(order_day).authored_on)
    return run(markers, orders=[ct], order_day=order_day)


def pain_flag(a: Assessment) -> Any:
    return next(f for f in a.red_flags if f.rule_id == "pain-worse")


def test_a_crp_that_rises_again_after_a_small_fall_is_not_the_mechanical_question() -> None:
    """The review's case: 100→92→97 mg/L (-3%, rising again since day 10), pain 7→9."""
    a = decide([crp(0, 100), crp(10, 92), crp(20, 97), pain(0, 7), pain(20, 9)], order_day=21)
    assert [f.rule_id for f in a.red_flags] == ["pain-worse"]
    assert a.study_gaps == {CT_WITHOUT.reference: "contrast"}
    assert pain_flag(a).data["facts"]["crpFalls"] is False


def test_the_mechanical_reading_needs_the_25_percent_fall() -> None:
    """Before day 28 (no plateau rule yet): -25% is the favourable fall, -24% is not."""
    below = decide([crp(0, 100), crp(20, 76), pain(0, 3), pain(20, 6)], order_day=21)
    assert below.study_gaps == {CT_WITHOUT.reference: "contrast"}
    assert pain_flag(below).data["facts"]["crpFalls"] is False
    at = decide([crp(0, 100), crp(20, 75), pain(0, 3), pain(20, 6)], order_day=21)
    assert at.study_gaps == {}
    assert pain_flag(at).data["facts"]["crpFalls"] is True


def test_a_slow_fall_is_not_a_crp_that_keeps_falling() -> None:
    """From day 28, 100→70 mg/L (-30%, still above 27.5 mg/L) is a slow fall: the response
    is not yet favourable (clinical-rules.md, "Slow fall")."""
    a = decide([crp(0, 100), crp(28, 70), pain(0, 3), pain(28, 6)])
    assert [f.rule_id for f in a.red_flags] == ["pain-worse"]
    assert a.study_gaps == {CT_WITHOUT.reference: "contrast"}
    assert pain_flag(a).data["facts"]["crpFalls"] is False
    halved = decide([crp(0, 100), crp(28, 50), pain(0, 3), pain(28, 6)])
    assert pain_flag(halved).data["facts"]["crpFalls"] is True


def test_below_the_normal_limit_counts_only_from_a_crp_that_was_raised() -> None:
    """11→9 mg/L (-18%) has come down into the normal range; 9→8 mg/L never rose and
    "cannot show the response"."""
    never = decide([crp(0, 9), crp(20, 8), pain(0, 3), pain(20, 6)], order_day=21)
    assert never.study_gaps == {CT_WITHOUT.reference: "contrast"}
    assert pain_flag(never).data["facts"]["crpFalls"] is False
    raised = decide([crp(0, 11), crp(20, 9), pain(0, 3), pain(20, 6)], order_day=21)
    assert raised.study_gaps == {}
    assert pain_flag(raised).data["facts"]["crpFalls"] is True


def test_a_discordant_latest_pair_is_not_a_crp_that_keeps_falling() -> None:
    a = decide([crp(0, 120), crp(28, 30, hour=8), crp(28, 70, hour=13), pain(0, 3), pain(28, 6)])
    assert a.study_gaps == {CT_WITHOUT.reference: "contrast"}
    assert pain_flag(a).data["facts"]["crpFalls"] is False


@pytest.mark.parametrize(
    "markers",
    [
        [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 3), pain(28, 6)],  # plateau -12.5%
        [crp(0, 120), crp(14, 40), crp(28, 60), pain(0, 3), pain(28, 6)],  # rise, -50% overall
    ],
    ids=["plateau", "rise-after-a-fall"],
)
def test_a_markers_flag_is_never_the_crp_that_keeps_falling(markers: list[Measurement]) -> None:
    a = decide(markers)
    assert a.recommendation is Recommendation.SUPPORT
    assert pain_flag(a).data["facts"]["crpFalls"] is False
