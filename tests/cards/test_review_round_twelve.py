"""Cards an outside clinician's review (round twelve) found wrong, through the engine and
the renderer as the service runs them."""

from __future__ import annotations

from typing import Any

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from tests.engine.builders import complication, crp, improving, nvo, pain, run


def card(a: Assessment) -> dict[str, Any]:
    (only,) = render_response(a, CardContext(patient_id="p"))["cards"]
    return only


def test_an_undated_abscess_reads_as_on_record_not_recorded_date_not_recorded() -> None:
    a = run(improving(), [nvo(), complication(onset=None)])  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.SUPPORT
    summary = card(a)["summary"]
    assert "on record (undated)" in summary, summary
    assert "recorded date not recorded" not in summary


def test_a_crp_above_its_baseline_is_not_said_to_have_fallen() -> None:
    # c12 n24: "CRP fell less than 25%: 180->300 mg/L (+66.7%)" beside the rise
    a = run([crp(0, 180), crp(14, 60), crp(28, 300), pain(0, 6), pain(28, 6)])
    c = card(a)
    assert a.recommendation is Recommendation.SUPPORT
    assert "fell less than" not in c["summary"] and "fall by day" not in c["detail"]
    assert "CRP rising again: 60\u2192300 mg/L (+400%) since day 14" in c["summary"]
    # no rise, but no fall either: said as it is
    a = run([crp(0, 100), crp(28, 110), pain(0, 6), pain(28, 6)])
    c = card(a)
    assert "CRP not down from baseline: 100\u2192110 mg/L (+10%) by day 28" in c["summary"]


def test_a_small_fall_is_still_a_fall_too_small() -> None:
    a = run([crp(0, 100), crp(28, 90), pain(0, 6), pain(28, 6)])
    assert "CRP fell less than 25%: 100\u219290 mg/L" in card(a)["summary"]
