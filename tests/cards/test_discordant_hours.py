"""Two CRPs that disagree are said apart to the minute: the rule reads a pair taken less
than 12 hours apart, and a clinician reviewer read CRPs 11 h 59 min apart as "12 hours
apart" beside it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from msgspec import structs

from tests.cards.test_review_wording import card
from tests.engine.builders import crp, pain, run

PAIN = [pain(0, 6), pain(28, 3)]


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (11 * 60 + 59, "11 hours 59 minutes apart"),
        (11 * 60, "11 hours apart"),
        (60, "1 hour apart"),
        (45, "45 minutes apart"),
    ],
)
def test_a_discordant_pair_is_said_apart_to_the_minute(minutes: int, said: str) -> None:
    earlier = crp(28, 46, hour=8)
    later = crp(28, 30, hour=8)
    later = structs.replace(
        later,
        when=structs.replace(later.when, instant=later.when.instant + timedelta(minutes=minutes)),
    )
    a = run([crp(0, 100), earlier, later, *PAIN], order_day=29)
    assert "crp-discordant" in {r.code for r in a.missing}
    detail = card(a)["detail"]
    assert f"The latest two CRPs, {said}, disagree" in detail, detail
