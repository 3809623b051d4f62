"""An advise-against card whose latest CRP is above its lowest since treatment start says
so: a clinician reader saw CRP 100 -> 40 -> 47 mg/L read only as "improving, -53%" while
the card's first line lists a rising CRP as what would change the advice."""

from __future__ import annotations

from cds_service.cards import CardContext, render_response
from cds_service.engine import Recommendation
from tests.engine.builders import crp, pain, run


def detail(measurements: list[object], order_day: int) -> str:
    a = run(measurements, order_day=order_day)  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    return str(render_response(a, CardContext(patient_id="p1"))["cards"][0]["detail"])


def test_a_small_rise_after_the_lowest_value_is_named() -> None:
    said = detail([crp(0, 100), crp(10, 40), crp(21, 47), pain(0, 7), pain(21, 3)], 22)
    assert (
        "CRP up from its lowest, 40 mg/L on day 10, to 47 mg/L (+17.5%): under the 20% rise "
        "that would change this advice; worth repeating." in said
    )


def test_an_early_rise_not_yet_counted_is_not_called_small() -> None:
    said = detail([crp(0, 100), crp(5, 40), crp(10, 60), pain(0, 7), pain(10, 3)], 12)
    assert "(+50%): a rise counts only after day 14 of treatment; repeat CRP within a week." in said
    assert "under the 20% rise" not in said
    # not "improving" beside it (an outside review, c10 m17: 100 -> 50 -> 70 on day 14)
    assert "Improving" not in said
    assert "CRP down from its baseline but up again from its lowest" in said


def test_an_early_rise_is_in_the_summary_instead_of_improving() -> None:
    a = run(
        [crp(0, 100), crp(7, 50), crp(14, 70), pain(0, 6), pain(7, 5), pain(14, 5)], order_day=14
    )
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # by the rules: before day 15
    summary = render_response(a, CardContext(patient_id="p1"))["cards"][0]["summary"]
    assert "improving" not in summary
    assert "CRP up 40% since day 7" in summary and summary.endswith("repeat CRP"), summary
    assert len(summary) < 140


def test_a_steady_fall_says_nothing_of_the_kind() -> None:
    said = detail([crp(0, 100), crp(10, 40), crp(21, 20), pain(0, 7), pain(21, 3)], 22)
    assert "up from its lowest" not in said


def test_crps_hours_apart_on_one_day_are_not_a_rise() -> None:
    # c10 m11: 21, 24, 22 mg/L on day 29 read "+4.8% ... worth repeating"
    said = detail(
        [
            crp(0, 120),
            crp(14, 50),
            crp(29, 21, hour=8),
            crp(29, 22, hour=14),
            pain(0, 7),
            pain(29, 3),
        ],
        29,
    )
    assert "up from its lowest" not in said


def test_a_crp_that_never_rose_has_no_percentage() -> None:
    # c10 m22: "CRP 8->3 mg/L (-62.5% from the baseline)" beside "it cannot show the response"
    said = detail([crp(0, 8), crp(14, 5), crp(28, 3), pain(0, 7), pain(28, 3)], 29)
    assert "CRP never raised" in said
    assert "CRP 8\u21923 mg/L; latest CRP" in said


def test_an_early_rise_with_pain_only_on_day_0_is_not_called_falling() -> None:
    # c11 x15: the summary said "CRP falling" over a 40% rise
    a = run([crp(0, 100), crp(7, 50), crp(14, 70), pain(0, 6)], order_day=14)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    c = render_response(a, CardContext(patient_id="p1"))["cards"][0]
    assert "falling" not in c["summary"] and "CRP up 40% since day 7" in c["summary"]
    assert (
        "CRP down from its baseline but up again from its lowest, pain recorded only on day 0"
        in c["detail"]
    )
