"""When the service applies: spine order, in-scope episode, exclusions (clinical-rules.md)."""

from __future__ import annotations

import pytest

from cds_service.engine import NotApplicableReason, Recommendation, RuleSettings
from fhir_mappers.model import ConditionCategory
from tests.engine.builders import condition, improving, neuro, nvo, run

SNOMED = "http://snomed.info/sct"

NA = Recommendation.NOT_APPLICABLE


@pytest.mark.parametrize(
    ("kw", "applies"),
    [
        ({"clinical": "active"}, True),
        ({"clinical": "recurrence"}, True),
        ({"clinical": "relapse"}, True),
        ({"clinical": None}, True),
        ({"clinical": None, "abatement": 40}, False),
        ({"clinical": "inactive"}, False),
        ({"clinical": "remission"}, False),
        ({"clinical": "resolved"}, False),
        ({"verification": "refuted"}, False),
        ({"verification": "entered-in-error"}, False),
        ({"verification": None}, True),
    ],
)
def test_episode_status(kw: dict[str, object], applies: bool) -> None:
    a = run(improving(), [nvo(**kw)])
    assert (a.recommendation is not NA) is applies
    if not applies:
        assert a.not_applicable_reason is NotApplicableReason.NO_EPISODE


def test_most_recent_episode_start_is_t0() -> None:
    old = nvo(onset=-300, ref="Condition/old")
    new = nvo(onset=0, ref="Condition/new")
    a = run(improving(), [new, old])
    assert a.episode is not None and a.episode.condition.reference == "Condition/new"
    assert a.figures.t0_day is not None and a.figures.days_since_t0 == 29


def test_recorded_date_is_t0_without_onset() -> None:
    a = run(improving(), [nvo(onset=None, recorded=2)])
    assert a.figures.days_since_t0 == 27


def test_other_infective_spondylopathy_is_a_setting() -> None:
    m465 = condition("M46.56", ConditionCategory.NVO_OTHER_INFECTIVE)
    assert run(improving(), [m465]).recommendation is NA
    enabled = RuleSettings(include_other_infective=True)
    assert run(improving(), [m465], settings=enabled).recommendation is not NA


def test_implant_associated_infection_excludes_even_with_nvo() -> None:
    implant = condition("T84.7XXA", ConditionCategory.OUT_OF_SCOPE)
    a = run(improving(), [nvo(), implant])
    assert a.recommendation is NA
    assert a.not_applicable_reason is NotApplicableReason.EXCLUDED_INFECTION


def test_resolved_implant_infection_does_not_exclude() -> None:
    implant = condition("T84.7XXA", ConditionCategory.OUT_OF_SCOPE, clinical="resolved")
    assert run(improving(), [nvo(), implant]).recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize("code", ["A18.01", "A1801", "A23.9", "T84.63XA"])
def test_non_pyogenic_or_implant_infection_beside_pyogenic_nvo_gives_no_card(code: str) -> None:
    """Revised 2026-11-28: the evidence covers pyogenic NVO only, so a coexisting
    tuberculous, brucellar or implant-associated infection takes the patient outside it."""
    other = condition(code, ConditionCategory.OUT_OF_SCOPE)
    a = run(improving(), [nvo(), other])
    assert a.recommendation is NA
    assert a.not_applicable_reason is NotApplicableReason.EXCLUDED_INFECTION
    # the same infection resolved no longer excludes
    old = condition(code, ConditionCategory.OUT_OF_SCOPE, clinical="resolved")
    assert run(improving(), [nvo(), old]).recommendation is Recommendation.ADVISE_AGAINST


def test_tuberculous_spondylitis_with_red_flags_beside_nvo_still_gives_no_card() -> None:
    """Out of scope wins over a red flag too: no card rather than a card built on
    evidence that does not cover the patient."""
    other = condition("35984006", ConditionCategory.OUT_OF_SCOPE, system=SNOMED)
    a = run(improving(), [nvo(), other, neuro(onset=20)], order_day=29)
    assert a.recommendation is NA


def test_isolated_epidural_abscess_without_nvo_gives_no_card() -> None:
    abscess = condition("G06.2", ConditionCategory.COMPLICATION)
    a = run(improving(), [abscess])
    assert a.recommendation is NA
    assert a.not_applicable_reason is NotApplicableReason.NO_EPISODE


def test_no_conditions_at_all_gives_no_card() -> None:
    assert run(improving(), []).recommendation is NA
