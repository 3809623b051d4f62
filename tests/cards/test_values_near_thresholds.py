"""A value never rounds onto the threshold its sentence compares it with.

A clinician reviewer read "CRP falling slowly, still 27.5 mg/L" for a CRP of 27.54 mg/L,
beside another card where 27.5 mg/L itself was no slow fall (clinical-rules.md: at or
below 27.5 mg/L is not slow). Values next to a threshold of the rules (CRP 10 and
27.5 mg/L, ESR 55 mm/h) keep a second decimal, as percentages next to theirs do."""

from __future__ import annotations

import pytest

from cds_service.cards.words import fmt, signed_pct
from tests.cards.test_review_wording import card
from tests.engine.builders import crp, pain, run


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (27.54, "27.54"),
        (27.5, "27.5"),
        (27.501, "27.51"),  # cut away from the threshold, never onto it
        (27.499, "27.49"),
        (9.96, "9.96"),
        (10.0, "10"),
        (54.96, "54.96"),
        (27.44, "27.4"),  # one decimal reaches no threshold: as before
        (142.35, "142.3"),
        (18, "18"),
    ],
)
def test_a_value_keeps_a_second_decimal_only_next_to_a_threshold(value: float, shown: str) -> None:
    assert fmt(value) == shown


def test_a_slow_fall_just_above_the_limit_is_not_shown_at_the_limit() -> None:
    said = card(run([crp(0, 50), crp(28, 27.54), pain(0, 6), pain(28, 3)]))
    text = said["summary"] + said["detail"]
    assert "still 27.54 mg/L on day 28" in said["summary"], said["summary"]
    assert "50\u219227.54 mg/L" in said["detail"]
    assert "27.5 mg/L" not in text, text


@pytest.mark.parametrize(
    ("value", "shown"),
    [(-54.96, "\u221255%"), (9.96, "+10%"), (-27.46, "\u221227.5%"), (-24.99, "\u221224.99%")],
)
def test_a_percentage_is_not_held_to_the_values_thresholds(value: float, shown: str) -> None:
    """The values' thresholds (10, 27.5 mg/L, 55 mm/h) are not percentages: a fall of
    54.96% reads "55%", as before values kept their second decimal; a percentage keeps one
    only next to its own thresholds (25, 20, 50%)."""
    assert signed_pct(value) == shown
