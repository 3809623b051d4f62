"""Pain scores on record that could not be used are named as such on the whole card: not
"No pain score since treatment start" in the trend beside a gap that names them, not
"record a pain score now" alone above them; and a withdrawn score (entered in error,
cancelled) or one dated after the order is not counted among them (a code review)."""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.engine import Recommendation
from fhir_mappers.model import DataIssue
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, day, pain, run

CRP = [crp(0, 120), crp(14, 60), crp(28, 20)]


def unusable(n: int, **kw: Any) -> DataIssue:
    """A pain score of day ``n`` the mapper could not use (a text value)."""
    return DataIssue(
        "Observation/p1", "no usable value", "pain", "without a usable value", when=day(n), **kw
    )


def test_a_card_naming_unusable_pain_scores_does_not_also_say_there_are_none() -> None:
    a = run(CRP, issues=[unusable(20)])
    assert next(r.code for r in a.missing) == "pain-none-usable"
    detail = card(a)["detail"]
    assert "No usable pain score since treatment start." in detail, detail
    assert "No pain score since treatment start." not in detail


def test_pain_only_on_day_0_names_the_later_score_that_could_not_be_used() -> None:
    a = run([*CRP, pain(0, 6)], issues=[unusable(20)])
    assert "pain-none-on-treatment" in {r.code for r in a.missing}
    detail = card(a)["detail"]
    assert (
        "Pain recorded only on day 0 (6/10), before treatment could act; 1 later pain score "
        "could not be used (see below): record a pain score now." in detail
    ), detail


@pytest.mark.parametrize(
    "issue",
    [
        unusable(20, status="entered-in-error"),
        unusable(20, status="cancelled"),
        unusable(40),  # after the order (day 29)
    ],
    ids=["entered-in-error", "cancelled", "after-the-order"],
)
def test_a_withdrawn_or_later_score_is_not_a_score_that_could_not_be_used(
    issue: DataIssue,
) -> None:
    a = run(CRP, issues=[issue], order_day=29)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "pain-none" in {r.code for r in a.missing}, [r.code for r in a.missing]
    assert a.figures.pain_unusable == 0
