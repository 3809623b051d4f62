"""Two values of a change whose percentage is said beside its threshold keep the decimals
that put their own change on the percentage's side of it. A clinician reviewer summed
"CRP fell less than 25%: 36→27 mg/L (-24.99%)" (36.00 → 27.01 mg/L, from a molar CRP) to
exactly -25%, the fall the card says was missed; likewise 100→75 for 75.004 and a rise
of 50→60 for 60.05 said "+20.1%, more than 20%"."""

from __future__ import annotations

import re

import pytest

from cds_service.cards.words import change_digits
from cds_service.engine import Recommendation
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, pain, run

PAIR = re.compile(r"CRP (?:fell less than 25%: )?([\d.]+)→([\d.]+) mg/L")


@pytest.mark.parametrize(
    ("baseline", "latest", "said"),
    [(36.004, 27.005, "36.004→27.005"), (100, 75.004, "100→75.004"), (36.0, 27.01, "36→27.01")],
)
def test_a_fall_just_short_of_25_percent_sums_short_of_it(
    baseline: float, latest: float, said: str
) -> None:
    a = run(
        [
            crp(0, baseline),
            crp(14, (baseline + latest) / 2),
            crp(28, latest),
            pain(0, 6),
            pain(28, 3),
        ]
    )
    assert a.recommendation is Recommendation.SUPPORT
    summary = card(a)["summary"]
    assert said in summary, summary
    first, last = map(float, PAIR.search(summary).groups())  # type: ignore[union-attr]
    assert (first - last) / first * 100 < 25


def test_a_rise_just_over_20_percent_sums_over_it() -> None:
    a = run([crp(0, 90), crp(10, 50), crp(15, 60.05), pain(0, 6), pain(15, 5)], order_day=16)
    detail = card(a)["detail"]
    said = re.search(r"CRP rising again: ([\d.]+) mg/L on day \d+, ([\d.]+) mg/L", detail)
    assert said is not None, detail
    low, high = map(float, said.groups())
    assert (high - low) / low * 100 > 20, said.group(0)


@pytest.mark.parametrize(
    ("first", "last", "pct"),
    [(142, 18, -87.323944), (120, 60, -50.0), (40, 30, -25.0), (50, 60, 20.0), (12, 10, -16.67)],
)
def test_any_other_change_keeps_its_usual_numbers(first: float, last: float, pct: float) -> None:
    """Exactly at a threshold, or far from one, the values read as before."""
    assert change_digits(first, last, pct) is None


def test_more_decimals_never_land_on_a_value_threshold() -> None:
    """A clinician reviewer: a molar CRP of 54.99 → 27.5004 mg/L (a fall of 49.99%) read
    "still 27.5 mg/L" on a slow-fall card, 27.5 being the value that is not a slow fall."""
    a = run([crp(0, 54.99), crp(14, 40), crp(28, 27.5004), pain(0, 6), pain(28, 3)])
    c = card(a)
    text = c["summary"] + c["detail"]
    assert "27.51" in text, text
    assert not re.search(r"27\.5(?![\d])", text), text
