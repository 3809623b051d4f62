"""A deficit dated at diagnosis but first recorded on treatment is read as known at
diagnosis (the design), and its card says when it was first recorded and what follows if
it is new (an outside clinician's review, 2026-12-07: a cauda equina syndrome with onset
day 0 and recordedDate day 20 was called "recorded at diagnosis", the later date unsaid)."""

from __future__ import annotations

from cds_service.engine import Recommendation
from tests.engine.builders import crp, neuro, nvo, pain, run
from tests.engine.test_clinician_revision import card

COURSE = [crp(0, 140), crp(10, 70), crp(20, 40), pain(0, 8), pain(20, 4)]


def test_a_deficit_recorded_on_day_20_with_onset_at_diagnosis_says_so() -> None:
    a = run(COURSE, [nvo(), neuro(onset=0, recorded=20)], order_day=21)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    shown = card(a)
    assert "cauda equina syndrome recorded day 20: if new, emergency MRI" in shown["summary"]
    assert "first recorded on day 20, is read as found at diagnosis" in shown["detail"]
    assert "If it was not there at diagnosis, it is new" in shown["detail"]


def test_a_deficit_recorded_at_diagnosis_keeps_its_wording() -> None:
    shown = card(run(COURSE, [nvo(), neuro(onset=0, recorded=0)], order_day=21))
    assert "recorded at diagnosis: whether repeat imaging is needed" in shown["detail"]
    assert "first recorded" not in shown["detail"]
