"""A finding whose entry does not confirm it is still a finding, and the card says so.

A clinician reviewer read "Neurologic deficit recorded: paraplegia (day 20)" on an urgent
card for a paraplegia recorded as provisional. The decision stays (missing a red flag is
the worse error); the card names the entry's status beside its date."""

from __future__ import annotations

import re

import pytest
from msgspec import structs

from cds_service.cards.words import VERIFICATION_WORDS
from cds_service.engine import Recommendation
from cds_service.engine.episode import UNCERTAIN_VERIFICATION
from fhir_mappers.model import ConditionCategory
from fhir_mappers.timeutil import parse_fhir_time
from tests.cards.test_review_wording import card
from tests.engine.builders import complication, condition, improving, neuro, nvo, run

STATUSES = [
    ("provisional", "a provisional diagnosis"),
    ("differential", "a differential diagnosis"),
    ("unconfirmed", "unconfirmed"),
]


@pytest.mark.parametrize(("status", "said"), STATUSES)
def test_an_unconfirmed_deficit_is_urgent_and_said_unconfirmed(status: str, said: str) -> None:
    a = run(improving(), [nvo(), neuro(20, verification=status)])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    detail = card(a)["detail"]
    assert f"cauda equina syndrome ({said}, day 20)" in detail, detail


@pytest.mark.parametrize(("status", "said"), STATUSES)
def test_the_status_costs_a_summary_none_of_its_content(status: str, said: str) -> None:
    """A review: the status words in the summary lengthened it past its limit, so an
    urgent card lost "spine surgery now" or the deficit's name, and a complication's read
    "recorded a differential diagnosis, day 12" and lost its next steps. The summary is
    the confirmed entry's; the detail names the status."""
    cervical = condition(
        "M46.22", ConditionCategory.NVO, display="Osteomyelitis", region="cervical"
    )
    for finding in (
        lambda **kw: condition(
            "G82.50", ConditionCategory.NEURO_DEFICIT, onset=15, display="Quadriplegia", **kw
        ),
        lambda **kw: complication(12, **kw),
    ):
        confirmed = card(run(improving(), [cervical, finding()]))
        unconfirmed = card(run(improving(), [cervical, finding(verification=status)]))
        assert unconfirmed["summary"] == confirmed["summary"]
        assert f"({said}, day 1" in unconfirmed["detail"], unconfirmed["detail"]


def test_a_confirmed_finding_reads_as_before() -> None:
    c = card(run(improving(), [nvo(), complication(12)]))
    text = c["summary"] + c["detail"]
    assert "abscess and granuloma (day 12)" in text, text
    assert "provisional" not in text and "unconfirmed" not in text


@pytest.mark.parametrize(("status", "said"), STATUSES)
def test_an_unconfirmed_finding_known_at_diagnosis_says_so(status: str, said: str) -> None:
    """A review: an unconfirmed abscess of day 1 read as certain on an advise-against card,
    while the same entry later on read with its status."""
    c = card(run(improving(), [nvo(), complication(1, verification=status)]))
    assert f"abscess and granuloma ({said}, 2024-03-05, day 1)" in c["detail"], c["detail"]


def test_the_statuses_with_words_are_the_engines_uncertain_ones() -> None:
    """A status the engine reads as uncertain without words here would be said raw."""
    assert set(VERIFICATION_WORDS) == set(UNCERTAIN_VERIFICATION)


def test_a_discitis_without_a_confirmed_cause_is_not_named_as_the_disease_alone() -> None:
    """A clinician reviewer: the summary said "Diagnosis not confirmed (discitis)" while
    the detail's first line named vertebral osteomyelitis with its treatment start."""
    discitis = condition(
        "M46.46",
        ConditionCategory.NVO_UNSPECIFIED,
        verification=None,
        display="Discitis, unspecified, lumbar region",
    )
    c = card(run(improving(), [discitis]))
    assert c["summary"].startswith("Diagnosis not confirmed"), c["summary"]
    assert "(spondylodiscitis), infectious cause not confirmed, recorded from" in c["detail"]
    confirmed = card(run(improving(), [nvo()]))
    assert "not confirmed" not in confirmed["detail"]


def test_an_infection_dated_by_a_month_is_said_as_recorded() -> None:
    """A clinician reviewer read "recorded from 2026-10-01" for an onset of "2026-10": a
    day the record does not hold. The month is said as recorded, with the day counted."""
    month = structs.replace(nvo(), onset=parse_fhir_time("2024-03"))
    detail = card(run(improving(), [month]))["detail"]
    assert "recorded from 2024-03, a month without a day" in detail, detail
    assert "its first day, 2024-03-01, taken as the treatment start" in detail


def test_an_infection_dated_by_a_year_is_said_without_a_month_or_a_day() -> None:
    """A review read "recorded from 2024, a year without a day": a year has no month."""
    year = structs.replace(nvo(), onset=parse_fhir_time("2024"))
    detail = card(run(improving(), [year]))["detail"]
    assert "recorded from 2024, a year without a month or a day" in detail, detail
    assert "its first day, 2024-01-01, taken as the treatment start" in detail


@pytest.mark.parametrize("status", ["provisional", "differential", "unconfirmed"])
def test_the_episode_and_a_finding_say_one_status_in_the_same_words(status: str) -> None:
    """An unconfirmed infection read "recorded as a differential" while a finding's entry
    read "a differential diagnosis, day 20": one status, two wordings (a review)."""
    episode = card(run(improving(), [nvo(verification=status)]))
    finding = card(run(improving(), [nvo(), neuro(20, verification=status)]))
    said = re.search(r"\(([^(]*), day 20\)", finding["summary"] + finding["detail"])
    assert said is not None, finding
    assert f"recorded as {said[1]})" in episode["summary"], (episode["summary"], said[1])
