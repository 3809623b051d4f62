"""An urgent card asks for one thing first: the emergency MRI and the surgeon.

An outside clinical review (2026-12-07, c07): a new cauda equina syndrome on day 21 beside
an epidural abscess known at diagnosis, pain 5 -> 7 while the CRP kept falling. Under
"emergency MRI of the whole spine now" the card also said "think mechanical: upright
radiographs or CT" (the rule for worse pain on its own, clinical-rules.md "What a card
should say") and "if the abscess was not drained, an MRI before stopping antibiotics may be
reasonable". Beside a new deficit, worse pain points to its cause; both lines competed with
the emergency. They stay on cards without an emergency MRI.
"""

from __future__ import annotations

from cds_service.engine import Recommendation
from tests.cards.test_review_wording import card
from tests.engine.builders import complication, crp, neuro, nvo, pain, run

FALLING_CRP_WORSE_PAIN = [
    crp(0, 150),
    crp(14, 60),
    crp(21, 30),
    pain(0, 5),
    pain(14, 4),
    pain(21, 7),
]


def test_an_emergency_card_has_no_mechanical_hint_nor_pre_stop_mri_line() -> None:
    a = run(
        FALLING_CRP_WORSE_PAIN,
        [nvo(), complication(0), neuro(21)],
        order_day=21,
    )
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    detail = card(a)["detail"]
    assert "emergency" in detail.lower()
    assert "think mechanical" not in detail
    assert "before stopping antibiotics" not in detail


def test_without_the_deficit_both_lines_stay() -> None:
    a = run(FALLING_CRP_WORSE_PAIN, [nvo(), complication(0)], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT
    detail = card(a)["detail"]
    assert "think mechanical" in detail
    assert "before stopping antibiotics" in detail


def test_a_deficit_days_before_the_order_says_how_old_it_is() -> None:
    # c10 n03: paraplegia on day 4, order on day 30: "New paraplegia (day 4) ... now" did
    # not tell an untreated emergency from a documented one
    values = [crp(0, 150), crp(14, 60), crp(28, 30), pain(0, 5), pain(28, 4)]
    old = card(run(values, [nvo(), neuro(4)], order_day=30))["detail"]
    assert "It dates from 26 days before this order." in old
    fresh = card(run(values, [nvo(), neuro(29)], order_day=30))["detail"]
    assert "days before this order" not in fresh


def test_an_abscess_card_asks_to_extend_a_single_level_mri_to_the_whole_spine() -> None:
    # c10 c01: the card's study is the whole spine; the lumbar MRI ordered answers at the
    # infected level (rated appropriate by the rules) and the card asks to extend it
    values = [crp(0, 150), crp(14, 60), crp(20, 50), pain(0, 5), pain(20, 4)]
    a = run(values, [nvo(), complication(18)], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT
    detail = card(a)["detail"]
    assert "The MRI of the lumbar spine ordered shows the infected level: extend it" in detail
