"""The rule changes of clinical-rules.md's 2026-11-28 revision, each at its edges.

- no plateau or rise while the latest CRP is below the normal limit (10 mg/L);
- advise-against needs a CRP taken no more than 7 days (setting) before the order;
- with paging cut off, advise-against stands only if the CRP values read reach back to
  the start of the baseline window (T0 - 7 d);
- an active out-of-scope infection beside a pyogenic episode: no card
  (tests/engine/test_applicability.py);
- molar CRP converted by default (tests/fhir_mappers/test_observations.py and the e13 example).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.cards.phrasebook import phrase
from cds_service.ehr_requests import bundle_resources
from cds_service.engine import Recommendation, RuleSettings, assess
from cds_service.examples import load_example
from cds_service.runtime import build_runtime
from fhir_mappers.model import DataIssue, PatientData
from fhir_mappers.observations import map_observations
from tests.conftest import make_settings
from tests.engine.builders import crp, day, improving, nvo, order, pain, run

FALLING_PAIN = [pain(0, 7), pain(14, 5), pain(28, 3)]


def rule_ids(a: object) -> list[str]:
    return [f.rule_id for f in a.rules_fired]  # type: ignore[attr-defined]


def codes(remarks: object) -> list[str]:
    return [r.code for r in remarks]  # type: ignore[attr-defined]


# --- plateau and rise only at or above the normal limit --------------------------------


@pytest.mark.parametrize(
    ("latest", "fires"),
    [(10.0, True), (9.99, False), (3.0, False)],
    ids=["at-the-limit", "just-below", "well-below"],
)
def test_plateau_counts_only_at_or_above_the_normal_limit(latest: float, fires: bool) -> None:
    # baseline 12: any latest of 10 or less is a fall of < 25% only at 10 (16.7%)
    a = run([crp(0, 12), crp(28, latest), *FALLING_PAIN], order_day=29)
    if fires:
        assert rule_ids(a) == ["markers-not-responding"]
        assert "plateau" in a.rules_fired[0].data
    else:
        assert a.recommendation is Recommendation.ADVISE_AGAINST  # normal and pain falling


@pytest.mark.parametrize(
    ("latest", "fires"),
    [(10.0, True), (9.9, False)],
    ids=["rise-to-the-limit", "rise-within-normal"],
)
def test_rise_counts_only_at_or_above_the_normal_limit(latest: float, fires: bool) -> None:
    # 30 -> 3 (day 10) -> latest (day 20): +233% or +230%, both far above the 20% threshold
    a = run([crp(0, 30), crp(10, 3), crp(20, latest), *FALLING_PAIN[:2]], order_day=21)
    assert ("markers-not-responding" in rule_ids(a)) is fires
    if not fires:
        assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_crp_3_to_4_with_falling_pain_is_improving() -> None:
    """The revision's own example: 3 -> 4 mg/L is neither a plateau nor a rise."""
    a = run([crp(0, 8), crp(14, 3), crp(28, 4), *FALLING_PAIN], order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.red_flags == ()


def test_a_crp_of_zero_is_a_value_and_a_rise_from_it_above_the_limit_counts() -> None:
    a = run([crp(0, 100), crp(10, 0), crp(20, 50), *FALLING_PAIN[:2]], order_day=21)
    assert rule_ids(a) == ["markers-not-responding"]
    assert "rise" in a.rules_fired[0].data


# --- a recent CRP for advise-against ----------------------------------------------------


@pytest.mark.parametrize(
    ("order_day", "expected"),
    [
        (35, Recommendation.ADVISE_AGAINST),  # latest CRP (day 28) 7 days old
        (36, Recommendation.INSUFFICIENT_DATA),  # 8 days old
    ],
)
def test_advise_against_needs_a_crp_from_the_last_7_days(
    order_day: int, expected: Recommendation
) -> None:
    a = run(improving(), order_day=order_day)
    assert a.recommendation is expected
    if expected is Recommendation.INSUFFICIENT_DATA:
        (remark,) = [r for r in a.missing if r.code == "crp-not-recent"]
        assert (
            phrase(remark).message
            == "Latest CRP 8 days old: repeat CRP before deciding on imaging."
        )


def test_the_recency_limit_is_a_setting() -> None:
    strict = RuleSettings(crp_max_age_days=3)
    assert run(improving(), order_day=31, settings=strict).recommendation is (
        Recommendation.ADVISE_AGAINST
    )
    assert run(improving(), order_day=32, settings=strict).recommendation is (
        Recommendation.INSUFFICIENT_DATA
    )


def test_an_old_crp_does_not_hide_a_red_flag() -> None:
    """Recency guards advise-against only: a plateau seen in older values still supports."""
    a = run([crp(0, 120), crp(28, 105), *FALLING_PAIN], order_day=40)
    assert a.recommendation is Recommendation.SUPPORT


# --- paging cut off -----------------------------------------------------------------------


def cut(measurements: list[object], kinds: set[str], order_day: int = 29) -> object:
    data = PatientData(
        conditions=(nvo(),),
        measurements=tuple(measurements),  # type: ignore[arg-type]
        cut_off=frozenset(kinds),
    )
    return assess([order(order_day)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("earliest_day", "expected"),
    [
        (-7, Recommendation.ADVISE_AGAINST),  # the read values reach T0 - 7 d
        (-6, Recommendation.INSUFFICIENT_DATA),  # they do not: the baseline may be missing
    ],
)
def test_cut_off_crp_paging_allows_advise_against_only_when_the_window_was_read(
    earliest_day: int, expected: Recommendation
) -> None:
    values = [crp(earliest_day, 150), *improving()]
    a = cut(values, {"crp"})
    assert a.recommendation is expected  # type: ignore[attr-defined]
    notes = codes(a.notes)  # type: ignore[attr-defined]
    assert "paging-cut-off" in notes
    if expected is Recommendation.INSUFFICIENT_DATA:
        assert "crp-incomplete" in codes(a.missing)  # type: ignore[attr-defined]


def test_a_value_read_before_the_window_still_shows_the_window_was_read() -> None:
    """A value older than the look-back is not used, but proves the pages reached back."""
    a = cut([crp(-20, 150), *improving()], {"crp"})
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # type: ignore[attr-defined]


def test_cut_off_diagnoses_never_give_advise_against() -> None:
    a = cut(improving(), {"conditions"})
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # type: ignore[attr-defined]
    assert "conditions-incomplete" in codes(a.missing)  # type: ignore[attr-defined]


def test_cut_off_pain_needs_a_score_from_treatment_start() -> None:
    from_start = cut(improving(), {"pain"})
    assert from_start.recommendation is Recommendation.ADVISE_AGAINST  # type: ignore[attr-defined]
    later = [m for m in improving() if not (m.kind.value == "pain" and m.when.day.day == 4)]
    late = cut(later, {"pain"})
    assert late.recommendation is Recommendation.INSUFFICIENT_DATA  # type: ignore[attr-defined]


def test_cut_off_esr_changes_nothing_but_is_said() -> None:
    a = cut(improving(), {"esr"})
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # type: ignore[attr-defined]
    (note,) = [n for n in a.notes if n.code == "paging-cut-off"]  # type: ignore[attr-defined]
    assert phrase(note).message.startswith("Some ESR results could not be read")


def failed(measurements: list[object], kinds: set[str]) -> object:
    data = PatientData(
        conditions=(nvo(),),
        measurements=tuple(measurements),  # type: ignore[arg-type]
        failed_in_part=frozenset(kinds),
    )
    return assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kind", "gap"),
    [
        ("crp", "crp-failed-in-part"),
        ("pain", "pain-failed-in-part"),
        ("conditions", "conditions-incomplete"),
        ("antibiotics", "antibiotics-incomplete"),
    ],
)
def test_a_search_that_failed_in_part_never_gives_advise_against(kind: str, gap: str) -> None:
    """Unlike a cut-off search (the older pages missing), a search that failed in part may
    miss the latest result: even a read that reaches back to T0 - 7 d is no ground for
    advise-against, and the card says which search failed."""
    a = failed([crp(-7, 150), *improving()], {kind})
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # type: ignore[attr-defined]
    assert gap in codes(a.missing)  # type: ignore[attr-defined]
    (note,) = [n for n in a.notes if n.code == "search-failed-in-part"]  # type: ignore[attr-defined]
    assert note.data["kinds"] == [kind]


def test_an_esr_search_that_failed_in_part_changes_nothing_but_is_said() -> None:
    a = failed(improving(), {"esr"})
    assert a.recommendation is Recommendation.ADVISE_AGAINST  # type: ignore[attr-defined]
    (note,) = [n for n in a.notes if n.code == "search-failed-in-part"]  # type: ignore[attr-defined]
    assert phrase(note).message.startswith("The record sent an error with the ESR results")


def test_a_cut_off_rise_still_supports() -> None:
    """A rise over the lowest value read stands: an unread lower value would make it
    larger."""
    a = cut([crp(0, 120), crp(14, 40), crp(28, 60), *FALLING_PAIN], {"crp", "conditions"})
    assert a.recommendation is Recommendation.SUPPORT  # type: ignore[attr-defined]


def test_a_cut_off_plateau_is_not_judged_without_its_baseline() -> None:
    """A clinician reviewer: "fell less than 25%: 130→110 mg/L" judged from the first value
    read, where the baseline on a page not read was 300. The older pages may hold the
    baseline (clinical-rules.md, "Incomplete data"): no plateau, and the card says what
    is missing."""
    a = cut([crp(1, 130), crp(14, 120), crp(28, 110), *FALLING_PAIN], {"crp"})
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA  # type: ignore[attr-defined]
    assert "crp-incomplete" in codes(a.missing)  # type: ignore[attr-defined]
    whole = cut([crp(-7, 130), crp(14, 120), crp(28, 110), *FALLING_PAIN], {"crp"})
    assert whole.recommendation is Recommendation.SUPPORT  # type: ignore[attr-defined]


# --- CRP on record but unusable is not "no CRP" -----------------------------------------


def test_unusable_crp_on_record_is_not_called_no_crp() -> None:
    skipped = DataIssue("Observation/m1", "molar CRP ignored", "crp", "reported in nmol/L")
    data = PatientData(conditions=(nvo(),), measurements=tuple(FALLING_PAIN), issues=(skipped,))
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(a.missing) == ["crp-none-usable"]
    assert (
        "no CRP" not in phrase(a.missing[0]).message
        and "No usable CRP" in phrase(a.missing[0]).message
    )


def test_unusable_pain_scores_on_record_are_not_only_asked_for() -> None:
    """An interop review: pain sent as text ("3") was named below as not used while the
    card's first gap read "No pain score since treatment start: record one"."""
    as_text = DataIssue(
        "Observation/p1", "no usable value", "pain", "without a usable value", when=day(28)
    )
    before_t0 = DataIssue(
        "Observation/p0", "no usable value", "pain", "without a usable value", when=day(-3)
    )
    falling = (crp(0, 120), crp(14, 60), crp(28, 20))
    data = PatientData(conditions=(nvo(),), measurements=falling, issues=(as_text, before_t0))
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(a.missing) == ["pain-none-usable"]
    message = phrase(a.missing[0]).message
    assert "1 pain score on record could not be used" in message  # the one since T0
    only_before = PatientData(conditions=(nvo(),), measurements=falling, issues=(before_t0,))
    b = assess([order(29)], only_before, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(b.missing) == ["pain-none"]


@pytest.mark.parametrize(("skipped_day", "gap"), [(0, "pain-none-usable"), (-1, "pain-none")])
def test_an_unusable_pain_score_counts_from_treatment_start_on(skipped_day: int, gap: str) -> None:
    """Pain is read since T0, T0's own day included: an unusable score on that day is one
    the card names; one the day before is not since treatment start."""
    skipped = DataIssue(
        "Observation/p1", "no usable value", "pain", "without a usable value", when=day(skipped_day)
    )
    falling = (crp(0, 120), crp(14, 60), crp(28, 20))
    data = PatientData(conditions=(nvo(),), measurements=falling, issues=(skipped,))
    a = assess([order(29)], data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(a.missing) == [gap]


# --- molar CRP on by default ---------------------------------------------------------------


def test_molar_crp_is_converted_by_default_and_0_turns_it_off(tmp_path: Path) -> None:
    """The service's default settings convert molar CRP with 9.524 nmol/L per mg/L; with
    the factor set to 0 the values are left out, and the card says so in clinical words
    instead of claiming there is no CRP."""
    example = load_example("e13-molar-crp", date(2026, 11, 30))
    resources = bundle_resources(example.bundle)
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    on = build_runtime(make_settings(tmp_path))
    off = build_runtime(make_settings(tmp_path, crp_molar_factor=0))
    try:
        converted, _ = map_observations(observations, on.value_sets, on.mapping)
        assert [round(m.value, 1) for m in converted if m.kind.value == "crp"] == [140, 60, 15]
        kept, issues = map_observations(observations, off.value_sets, off.mapping)
        assert [m.kind.value for m in kept] == ["pain"] * 3
    finally:
        on.close()
        off.close()
    conditions = (nvo(),)
    a = assess(
        [order(29)],
        PatientData(conditions, kept, issues),
        RuleSettings(),
        datetime(2030, 1, 1, tzinfo=UTC),
    )
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    card = render_response(
        a, CardContext(patient_id="p1", override_reasons=load_override_reasons())
    )["cards"][0]
    assert "no CRP" not in card["summary"] + card["detail"]
    assert "no usable CRP" in card["summary"]
    # each named as reported, with its day (clinical-rules.md, "Pending results")
    assert (
        "Not used, reported in nmol/L (conversion turned off in the settings): CRP 1333 "
        "nmol/L on day " in card["detail"]
    )
