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
        "CRP up from its lowest, 40 mg/L on day 10, to 47 mg/L (+17.5%): a rise of more than "
        "20% would change this advice; worth repeating." in said
    )


def card(measurements: list[object], order_day: int) -> dict[str, str]:
    a = run(measurements, order_day=order_day)  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    return dict(render_response(a, CardContext(patient_id="p1"))["cards"][0])


def test_an_early_rise_over_the_threshold_waits_for_a_repeat_crp() -> None:
    # c12 t18: 150 -> 60 -> 110 mg/L by day 12 read "not recommended, remove the MRI";
    # before day 15 a rise is not the rise rule's, and not a favourable response either
    c = card([crp(0, 100), crp(5, 40), crp(10, 60), pain(0, 7), pain(10, 3)], 12)
    assert (
        "CRP up from its lowest: 40\u219260 mg/L (+50%) from day 5 to day 10. The rules count a "
        "rise only after day 14, but this is not a favourable response: repeat CRP" in c["detail"]
    )
    assert "under the 20% rise" not in c["detail"] and "Improving" not in c["detail"]
    assert "delete" not in str(c.get("suggestions", ""))


def test_an_early_rise_is_in_the_summary() -> None:
    c = card([crp(0, 100), crp(7, 50), crp(14, 70), pain(0, 6), pain(7, 5), pain(14, 5)], 14)
    assert "improving" not in c["summary"] and "falling" not in c["summary"]
    assert c["summary"].endswith("CRP up 40% since day 7, repeat CRP"), c["summary"]
    assert len(c["summary"]) < 140


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


def test_a_rise_on_day_15_is_the_rise_rule() -> None:
    # the boundary the early rise stops at: from day 15 the rise rule supports imaging
    a = run([crp(0, 100), crp(7, 50), crp(15, 70), pain(0, 6), pain(15, 5)], order_day=15)
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.rules_fired] == ["markers-not-responding"]


def test_an_early_rise_within_the_threshold_is_still_only_named() -> None:
    said = detail([crp(0, 100), crp(7, 50), crp(14, 59), pain(0, 6), pain(14, 3)], 14)
    assert "(+18%): a rise counts only after day 14" not in said
    assert "to 59 mg/L (+18%): a rise of more than 20% would change this advice" in said


def test_a_rise_of_exactly_the_threshold_is_not_told_it_is_under_it() -> None:
    """A clinician reviewer's case, 30 -> 36 mg/L (+20%): the rule needs more than 20%, so
    it is advise-against, and the card must not say "+20%: under the 20% rise"."""
    said = detail([crp(0, 100), crp(10, 30), crp(28, 36), pain(0, 6), pain(28, 3)], 29)
    assert "to 36 mg/L (+20%): a rise of more than 20% would change this advice" in said
    assert "under the 20%" not in said
