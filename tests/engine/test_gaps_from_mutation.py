"""Rules the mutation run showed untested, each written from the rules, not the mutant.

- Several in-scope NVO entries with no date: no treatment start can be known, so the
  answer is insufficient data (and the choice of entry never depends on input order).
- Several mimics: the diagnosis is unclear whichever order they come in.
- hs-CRP counts only when no standard CRP counts; a standard CRP that does not count
  (entered in error, before the look-back window) does not stop it.
- The evaluation time: the order's authoredOn, else a timezone-aware ``now``; a naive
  ``now`` is refused rather than read in an unknown zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Recommendation, RuleSettings, assess
from fhir_mappers.model import PatientData
from tests.engine.builders import crp, improving, mimic, nvo, order, pain, run

GOOD_PAIN = [pain(0, 7), pain(14, 5), pain(28, 3)]


def test_several_undated_nvo_entries_leave_the_start_unknown() -> None:
    entries = [nvo(onset=None, ref="Condition/b"), nvo(onset=None, ref="Condition/a")]
    for conditions in (entries, entries[::-1]):
        a = run(improving(), conditions)
        assert a.recommendation is Recommendation.INSUFFICIENT_DATA
        assert [r.code for r in a.missing] == ["episode-start-unknown"]
        assert a.episode is not None and a.episode.condition.reference == "Condition/b"


def test_several_mimics_make_the_diagnosis_unclear_in_any_order() -> None:
    metastasis = mimic(display="Secondary malignant neoplasm of bone", ref="Condition/m2")
    degeneration = mimic(display="Intervertebral disc degeneration", ref="Condition/m1")
    answers = []
    for conditions in ([nvo(), metastasis, degeneration], [nvo(), degeneration, metastasis]):
        a = run(improving(), conditions)
        assert a.recommendation is Recommendation.SUPPORT
        assert [f.rule_id for f in a.red_flags] == ["uncertain-dx"]
        answers.append(phrase(a.red_flags[0]).message)
    assert answers[0] == answers[1]
    assert "secondary malignant neoplasm of bone" in answers[0].lower()
    assert "intervertebral disc degeneration" in answers[0].lower()


def test_hs_crp_is_not_used_beside_a_standard_crp_that_counts() -> None:
    a = run([crp(0, 140), crp(28, 18), crp(0, 500, hs=True), crp(28, 400, hs=True), *GOOD_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert all(not m.high_sensitivity for m in a.crp)
    assert "hs-crp-used" not in [n.code for n in a.notes]


@pytest.mark.parametrize(
    "standard",
    [
        [crp(28, 500, status="entered-in-error")],  # not a usable result
        [crp(-30, 500)],  # before the look-back window: does not count
    ],
    ids=["entered-in-error", "before-the-window"],
)
def test_hs_crp_is_used_when_no_standard_crp_counts(standard: list[object]) -> None:
    hs = [crp(0, 140, hs=True), crp(28, 18, hs=True)]
    a = run([*standard, *hs, *GOOD_PAIN])  # type: ignore[list-item]
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [m.value for m in a.crp] == [140, 18] and all(m.high_sensitivity for m in a.crp)
    assert "hs-crp-used" in [n.code for n in a.notes]


def test_without_authored_on_the_time_is_an_aware_now_and_a_naive_one_is_refused() -> None:
    data = PatientData(conditions=(nvo(),), measurements=tuple(improving()))
    aware = datetime(2024, 4, 2, 9, tzinfo=UTC)  # T0 is 2024-03-04: day 29
    a = assess([order(None)], data, RuleSettings(), aware)
    assert (a.evaluation_day.isoformat(), a.evaluation_time_source) == ("2024-04-02", "now")
    assert a.figures.days_since_t0 == 29
    with pytest.raises(ValueError, match="timezone-aware"):
        assess([order(None)], data, RuleSettings(), datetime(2024, 4, 2, 9))
