"""A finding dated by its recordedDate alone is said as recorded on that day, never as
begun on it: a clinician reviewer read "New cauda equina syndrome (day 4)" and "It dates
from 25 days before this order" for a deficit with no onset, recorded on day 4."""

from __future__ import annotations

from cds_service.engine import Recommendation
from tests.cards.test_review_wording import card
from tests.engine.builders import complication, improving, neuro, nvo, order, run


def test_a_deficit_with_only_a_recorded_date_is_said_recorded_that_day() -> None:
    a = run(improving(), [nvo(), neuro(onset=None, recorded=4)], orders=[order(29)])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    c = card(a)
    assert "(recorded day 4)" in c["summary"], c["summary"]
    assert "It was recorded 25 days before this order." in c["detail"], c["detail"]
    assert "dates from" not in c["detail"]


def test_a_deficit_with_an_onset_still_dates_from_it() -> None:
    c = card(run(improving(), [nvo(), neuro(onset=4, recorded=6)], orders=[order(29)]))
    assert "(day 4)" in c["summary"], c["summary"]
    assert "It dates from 25 days before this order." in c["detail"]


def test_a_complication_recorded_only_is_not_recorded_twice() -> None:
    c = card(run(improving(), [nvo(), complication(None, recorded=12)]))
    assert "recorded day 12" in c["summary"], c["summary"]
    assert "recorded recorded" not in c["summary"] + c["detail"]
