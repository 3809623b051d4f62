"""Rule settings and episode choice at their edges, from thresholds.py's and episode.py's
documented contracts.

- A bad setting is refused with a message that names every offending key and says what
  is wrong: a site reads it in its start-up log, so the words are behaviour.
- ``now`` must be timezone-aware in Python's sense (a tzinfo that gives an offset); the
  message says so exactly.
- The same NVO Condition read twice (by two searches, edited in between) is one episode,
  not a crash.
- Several active NVO entries: the rules run once per *distinct* start date, and an entry
  on the chosen episode's own start date adds no second start.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Recommendation, RuleSettings, assess
from fhir_mappers.model import PatientData
from tests.engine.builders import improving, nvo, order, run

# --- settings -----------------------------------------------------------------------------


def test_every_unknown_setting_is_named_in_one_message() -> None:
    with pytest.raises(ValueError) as caught:
        RuleSettings.from_mapping({"rise_percent": 20, "plateau_fall": 25, "rise_pct": 20})
    assert str(caught.value) == "unknown rule setting(s): plateau_fall, rise_percent"


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_an_infinite_or_undefined_threshold_is_refused(value: float) -> None:
    with pytest.raises(ValueError) as caught:
        RuleSettings.from_mapping({"plateau_min_fall_pct": value})
    assert str(caught.value) == (
        f"setting 'plateau_min_fall_pct' must be a finite number (got {value!r})"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rise_pct": "20"}, "setting 'rise_pct' must be a number (got '20')"),
        ({"rise_after_days": 14.0}, "setting 'rise_after_days' must be a whole number of days"),
        ({"include_other_infective": "yes"}, "setting 'include_other_infective' must be true or"),
        ({"crp_normal_mg_l": -0.5}, "setting 'crp_normal_mg_l' must not be negative (got -0.5)"),
        ({"crp_max_age_days": -1}, "setting 'crp_max_age_days' must not be negative (got -1)"),
    ],
)
def test_a_bad_setting_says_which_and_why(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        RuleSettings.from_mapping(data)
    assert str(caught.value).startswith(message)


def test_zero_is_a_valid_threshold_and_false_a_valid_switch() -> None:
    s = RuleSettings.from_mapping(
        {"plateau_min_fall_pct": 0, "crp_max_age_days": 0, "include_other_infective": False}
    )
    assert (s.plateau_min_fall_pct, s.crp_max_age_days, s.include_other_infective) == (
        0.0,
        0,
        False,
    )


# --- the evaluation time ------------------------------------------------------------------


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: Python counts such a datetime as naive."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


@pytest.mark.parametrize(
    "now",
    [datetime(2024, 4, 2, 9), datetime(2024, 4, 2, 9, tzinfo=_NoOffset())],
    ids=["no-tzinfo", "tzinfo-without-offset"],
)
def test_without_authored_on_a_now_without_an_offset_is_refused(now: datetime) -> None:
    data = PatientData(conditions=(nvo(),), measurements=tuple(improving()))
    with pytest.raises(ValueError) as caught:
        assess([order(None)], data, RuleSettings(), now)
    assert str(caught.value) == "now must be timezone-aware"


# --- the episode --------------------------------------------------------------------------


def test_the_same_nvo_condition_read_twice_is_one_episode() -> None:
    # Two searches return the same Condition, its display corrected between the two reads:
    # same reference, same start, different content.
    before = nvo(ref="Condition/c1", display="Osteomyelitis of vertebra, lumbar")
    after = nvo(ref="Condition/c1", display="Osteomyelitis of vertebra, lumbar region")
    a = run(improving(), [before, after])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.episode is not None and a.episode.condition.reference == "Condition/c1"
    assert "several-episode-starts" not in [n.code for n in a.notes]


def test_a_second_entry_on_the_episode_start_date_adds_no_other_start() -> None:
    a = run(improving(), [nvo(onset=0, ref="Condition/a"), nvo(onset=0, ref="Condition/b")])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [n.code for n in a.notes if n.code == "several-episode-starts"] == []


def test_each_other_start_date_is_tried_once() -> None:
    # Chosen: the most recent start (day 0). Two more entries share day -20: one more start.
    conditions = [
        nvo(onset=0, ref="Condition/main"),
        nvo(onset=-20, ref="Condition/old-1"),
        nvo(onset=-20, ref="Condition/old-2"),
    ]
    a = run(improving(), conditions)
    (note,) = [n for n in a.notes if n.code == "several-episode-starts"]
    assert "(2024-02-13, 2024-03-04)" in phrase(note).message
