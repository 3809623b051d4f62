"""The Yoon 2010 line beside advise-against (clinical-rules.md, "Slow fall", 2026-12-06).
An outside review found an advise-against card saying the markers at 4 weeks "predicted
failure" (CRP 90 mg/L, ESR 75 mm/h, example e30)."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation
from cds_service.valuesets import load_value_sets
from tests.engine.builders import crp, esr, pain, run

VS = load_value_sets()
CTX = CardContext(patient_id="p1", value_sets=VS, override_reasons=load_override_reasons())
FALLING_PAIN = [pain(0, 7), pain(14, 5), pain(28, 3)]


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CTX)["cards"]
    result: dict[str, Any] = only
    return result


def test_the_yoon_line_beside_advise_against_names_the_study_levels_not_a_prediction() -> None:
    """clinical-rules.md, "Slow fall": advise-against stands after a fall of 50% or more;
    at week 4 with CRP above 27.5 mg/L and ESR above 55 mm/h "the card does not reassure:
    it says both are at the levels that predicted failure (Yoon 2010) and asks for a repeat
    in 1-2 weeks"."""
    a = run([crp(0, 220), crp(14, 140), crp(28, 90), esr(0, 110), esr(28, 75), *FALLING_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # -59%: not a slow fall
    c = card(a)
    assert (
        "CRP 90 mg/L and ESR 75 mm/h at 4 weeks: both at levels that predicted failure in "
        "Yoon 2010 (CRP above 27.5 mg/L with ESR above 55 mm/h): not reassuring; repeat both "
        "in 1-2 weeks." in c["detail"]
    )
    assert "which predicted failure" not in c["detail"]
    # a slow fall (e21: 100→75 mg/L, ESR 70) is not advise-against: its own line asks for the
    # repeat, and the Yoon line is for advise-against cards only
    slow = run([crp(0, 100), crp(14, 85), crp(28, 75), esr(0, 90), esr(28, 70), *FALLING_PAIN])
    assert slow.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "yoon-high-markers" not in [n.code for n in slow.notes]
