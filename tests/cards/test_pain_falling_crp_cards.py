"""Worse pain while the CRP keeps falling: "think mechanical (collapse, instability):
upright radiographs or CT" (clinical-rules.md, "What a card should say"). An outside review
found it said, and a CT without contrast rated appropriate, for any CRP fall above 0%
(100→92→97 mg/L, rising again) and beside a plateau's "less than a 25% fall". Worse pain
with a CRP that is not clearly falling points to failure or an abscess: MRI with
gadolinium."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment
from cds_service.valuesets import load_value_sets
from fhir_mappers.model import Modality
from tests.engine.builders import crp, order, pain, run
from tests.support.ratings import ratings_by_id

VS = load_value_sets()
CTX = CardContext(patient_id="p1", value_sets=VS, override_reasons=load_override_reasons())


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CTX)["cards"]
    result: dict[str, Any] = only
    return result


def ratings(a: Assessment) -> dict[str, str]:
    return ratings_by_id(render_response(a, CTX))


CT_WITHOUT = replace(order(21, code="72131", modality=Modality.CT), contrast="without")
CT_DAY_29 = replace(order(29, code="72131", modality=Modality.CT), contrast="without")


def test_worse_pain_with_a_crp_rising_again_is_not_told_to_think_mechanical() -> None:
    """The review's case: CRP 100→92→97 (-3%, rising again since day 10), pain 7→9."""
    a = run(
        [crp(0, 100), crp(10, 92), crp(20, 97), pain(0, 7), pain(20, 9)],
        orders=[CT_WITHOUT],
        order_day=21,
    )
    c = card(a)
    assert "mechanical" not in c["summary"] + c["detail"]
    assert "while CRP falls" not in c["summary"]
    assert "MRI with gadolinium preferred to the CT ordered" in c["summary"]
    assert "Worse pain with a CRP that is not clearly falling" in c["detail"]
    assert ratings(a) == {"sr1": "not-appropriate"}


def test_a_plateau_with_worse_pain_does_not_say_the_crp_keeps_falling() -> None:
    a = run([crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 3), pain(28, 6)])
    c = card(a)
    assert "less than a 25% fall" in c["detail"]
    assert "keeps falling" not in c["detail"]
    assert "not clearly falling" not in c["detail"]  # the markers' own MRI line says it


def test_worse_pain_with_a_crp_that_keeps_falling_still_reads_mechanical() -> None:
    a = run([crp(0, 100), crp(20, 40), pain(0, 3), pain(20, 6)], orders=[CT_WITHOUT], order_day=21)
    c = card(a)
    assert "think mechanical: upright radiographs or CT" in c["summary"]
    assert "Worse pain while the CRP keeps falling" in c["detail"]
    assert "not clearly falling" not in c["detail"]
    assert ratings(a) == {"sr1": "appropriate"}
    below = run(
        [crp(0, 100), crp(20, 76), pain(0, 3), pain(20, 6)], orders=[CT_WITHOUT], order_day=21
    )
    assert "mechanical" not in card(below)["summary"]


def test_a_crp_taken_before_the_pain_rose_does_not_show_that_it_keeps_falling() -> None:
    """An outside clinician's case: CRP 142→61→18 by day 21, pain 8, 3 on day 21, then 8 on
    day 29. "While CRP falls: think mechanical" rested on a CRP eight days older than the
    worse pain; the card asks for a CRP and an exam, and a CT without contrast does not
    answer the question."""
    a = run(
        [crp(0, 142), crp(14, 61), crp(21, 18), pain(0, 8), pain(21, 3), pain(29, 8)],
        orders=[CT_DAY_29],
        order_day=29,
    )
    c = card(a)
    assert "mechanical" not in c["summary"]
    assert "while CRP falls" not in c["summary"]
    assert "keeps falling" not in c["detail"]
    assert "not clearly falling" not in c["detail"]
    assert (
        "No CRP since the pain rose on day 29 (the latest, 18 mg/L, is from day 21): whether "
        "it still falls is not known. Repeat the CRP and examine neurology" in c["detail"]
    )
    assert ratings(a) == {"sr1": "not-appropriate"}
    # A CRP taken on the day the pain rose, or after it, still shows the fall.
    same_day = run(
        [crp(0, 142), crp(14, 61), crp(29, 18), pain(0, 8), pain(21, 3), pain(29, 8)],
        orders=[CT_DAY_29],
        order_day=29,
    )
    assert "think mechanical" in card(same_day)["summary"]
    assert "No CRP since the pain rose" not in card(same_day)["detail"]
    # The pain rose on day 25 (6/10) and stayed up: a CRP of day 27 was taken after it.
    values = [crp(0, 142), crp(14, 61), crp(27, 18), pain(0, 8), pain(21, 3), pain(25, 6)]
    after = run(
        [*values, pain(29, 7)],
        orders=[CT_DAY_29],
        order_day=29,
    )
    assert "think mechanical" in card(after)["summary"]


def test_a_rise_that_settled_and_came_again_is_dated_from_its_return() -> None:
    """A re-check: pain 3 on day 10, 6 on day 15, 3 again on day 24, 7 on day 28, the last
    CRP of day 20. The rise of day 15 had settled; the one of day 28 came after the CRP."""
    values = [crp(0, 142), crp(14, 61), crp(20, 18), pain(0, 8), pain(10, 3), pain(15, 6)]
    a = run([*values, pain(24, 3), pain(28, 7)], orders=[CT_DAY_29], order_day=29)
    c = card(a)
    assert "mechanical" not in c["summary"]
    assert (
        "No CRP since the pain rose on day 28 (the latest, 18 mg/L, is from day 20)"
        in (c["detail"])
    )
