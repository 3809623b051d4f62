"""A confirmed episode on record wins over an uncertain entry of the same infection.

An outside review: a confirmed M46.26 (day 0) and a later "discitis" entry recorded as a
differential (day 2) gave "Diagnosis not confirmed (discitis recorded as a differential) ...
consider image-guided biopsy", with T0 moved to the differential's date: the most recent
entry was the episode, and every other start was read too, the differential's among them.
The uncertain-diagnosis card stays when only uncertain entries are on record, or when the
uncertain entry is a separate diagnosis (too far from the confirmed one to share its
treatment start)."""

from __future__ import annotations

import pytest

from cds_service.cards import CardContext, render_response
from cds_service.engine import Assessment, Recommendation
from fhir_mappers.model import ConditionCategory, ConditionFact
from tests.engine.builders import T0, condition, crp, nvo, pain, run

SNOMED = "http://snomed.info/sct"
IMPROVING = [crp(0, 120), crp(14, 50), crp(28, 15), pain(0, 7), pain(14, 4), pain(28, 2)]


def discitis(onset: int, verification: str | None = "differential") -> ConditionFact:
    return condition(
        "2304001",
        ConditionCategory.NVO_UNSPECIFIED,
        system=SNOMED,
        onset=onset,
        verification=verification,
        display="Discitis",
        name="discitis",
    )


def rules(a: Assessment) -> list[str]:
    return [f.rule_id for f in a.rules_fired]


@pytest.mark.parametrize("status", ["differential", "provisional", "unconfirmed"])
def test_a_later_uncertain_entry_does_not_unconfirm_a_confirmed_episode(status: str) -> None:
    confirmed = nvo(onset=0)
    a = run(IMPROVING, [confirmed, discitis(2, status)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "uncertain-dx" not in rules(a)
    assert a.episode is not None and a.episode.condition is confirmed
    assert a.episode.t0 is not None and a.episode.t0.day == T0  # not moved to day 2
    assert "several-episode-starts" not in [n.code for n in a.notes]
    (card,) = render_response(a, CardContext(patient_id="p1"))["cards"]
    assert "not confirmed" not in card["summary"] + card["detail"]


def test_an_earlier_uncertain_entry_is_not_read_as_another_start_either() -> None:
    a = run(IMPROVING, [discitis(0), nvo(onset=2)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "uncertain-dx" not in rules(a)


def test_a_provisional_entry_of_the_same_code_gives_way_too() -> None:
    a = run(IMPROVING, [nvo(onset=0), nvo(onset=2, verification="provisional")])
    assert "uncertain-dx" not in rules(a)


def test_discitis_unspecified_not_confirmed_gives_way_to_a_confirmed_episode() -> None:
    """M46.4x counts as uncertain unless confirmed: beside a confirmed osteomyelitis entry
    of the same infection, the diagnosis is confirmed."""
    unspecified = condition("M46.46", ConditionCategory.NVO_UNSPECIFIED, onset=2, verification=None)
    a = run(IMPROVING, [nvo(onset=0), unspecified])
    assert "uncertain-dx" not in rules(a)


def test_only_uncertain_entries_keep_the_uncertain_diagnosis_card() -> None:
    a = run(IMPROVING, [discitis(0), discitis(2, "provisional")])
    assert a.recommendation is Recommendation.SUPPORT
    assert rules(a) == ["uncertain-dx"]
    (card,) = render_response(a, CardContext(patient_id="p1"))["cards"]
    assert "Diagnosis not confirmed" in card["summary"]


def test_an_uncertain_entry_of_a_separate_diagnosis_stands() -> None:
    """A confirmed entry 100 days before, never closed, cannot share this treatment start:
    the differential now is another diagnosis, and it is not confirmed."""
    a = run(IMPROVING, [nvo(onset=-100), discitis(0)])
    assert a.recommendation is Recommendation.SUPPORT
    assert "uncertain-dx" in rules(a)
