"""When a CRP short of a 25% fall was taken before day 28 and the order is on day 28 or
later, the card says when to repeat: "now" only when the latest CRP is old enough for
the card to suggest the order; beside a CRP of the last days (no CRP suggested, as
``next_steps`` asks none then), "at the next check". A clinician reviewer read "Repeat
CRP and ESR now" the day after a CRP, with no order offered."""

from __future__ import annotations

import pytest

from cds_service.engine import Recommendation
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, pain, run


@pytest.mark.parametrize(
    ("latest_day", "said", "suggested"),
    [(27, "Repeat CRP and ESR at the next check:", False), (20, "Repeat CRP and ESR now:", True)],
)
def test_repeat_now_only_beside_an_order_for_it(
    latest_day: int, said: str, suggested: bool
) -> None:
    values = [crp(0, 120), crp(10, 110), crp(latest_day, 100), pain(0, 6), pain(latest_day, 3)]
    a = run(values, order_day=28)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    c = card(a)
    assert said in c["detail"], c["detail"]
    offered = any("CRP" in s["label"] for s in c.get("suggestions", []))
    assert offered is suggested, c.get("suggestions")
