"""The edges of the clinical rules, as example patients through the engine.

Written from clinical-rules.md (revised 2026-11-28) and docs/clinical-logic.md, one
boundary at a time: a CRP on the T0 day, CRP values of 0 and between 0 and 1 mg/L, a
value before the look-back window, Condition dates around a timed T0 (a time and an
offset), a complication before T0, and "more than" against "at least" in the rise rule.
Days count from T0 (day 0); the order is authored on ``order_day``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from msgspec.structs import replace

from cds_service.cards.phrasebook import phrase
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import (
    Coding,
    ConditionCategory,
    ConditionFact,
    PatientData,
    When,
)
from tests.engine.builders import (
    ICD10,
    T0,
    complication,
    crp,
    neuro,
    nvo,
    order,
    pain,
    run,
)

FALLING_PAIN = [pain(0, 7), pain(10, 5), pain(20, 3)]


def rule_ids(a: Assessment) -> list[str]:
    return [f.rule_id for f in a.rules_fired]


def codes(remarks: object) -> list[str]:
    return [r.code for r in remarks]  # type: ignore[attr-defined]


# --- a CRP on the T0 day ----------------------------------------------------------------


def test_a_crp_on_the_t0_day_is_an_earlier_value_since_t0_for_the_rise_rule() -> None:
    # "> 20% above the lowest earlier CRP since T0": the T0 day is since T0, so 30 on day 0
    # is the lowest; 40 on day 20 is 33% above it, with the latest at or above 10 mg/L.
    a = run([crp(-3, 100), crp(0, 30), crp(20, 40), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT
    assert rule_ids(a) == ["markers-not-responding"]
    rise = a.rules_fired[0].data["rise"]
    assert rise["lowestEarlier"]["day"] == 0
    assert rise["lowestEarlier"]["value"] == 30


def test_a_crp_the_day_before_t0_is_not_since_t0_for_the_rise_rule() -> None:
    # The same values a day earlier: 30 on day -1 is before treatment, so nothing since
    # T0 precedes the latest and there is no rise; 100 -> 40 is a 60% fall: improving.
    a = run([crp(-3, 100), crp(-1, 30), crp(20, 40), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.crp_lowest_earlier is None


def test_a_latest_crp_on_the_t0_day_is_not_yet_on_treatment() -> None:
    # clinical-rules.md (2026-12-06): with no CRP after T0's day the trend on treatment is
    # unknown: said as such, never as "not yet down 25%" (100 -> 95 on day 0).
    a = run([crp(-5, 100), crp(0, 95), pain(0, 5), pain(2, 5)], order_day=3)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert codes(a.missing) == ["crp-none-on-treatment"]
    assert codes(a.unmet) == []


def test_a_latest_crp_on_the_t0_day_that_fell_is_still_no_response_to_treatment() -> None:
    a = run([crp(-5, 100), crp(0, 50), pain(0, 5), pain(2, 5)], order_day=3)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert codes(a.missing) == ["crp-none-on-treatment"]


def test_the_first_crp_the_day_after_t0_shows_the_response() -> None:
    a = run([crp(-5, 100), crp(1, 50), pain(0, 5), pain(2, 5)], order_day=3)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_a_latest_crp_the_day_before_t0_shows_no_response_to_treatment() -> None:
    a = run([crp(-5, 100), crp(-1, 50), pain(0, 5), pain(2, 5)], order_day=3)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert codes(a.missing) == ["crp-none-on-treatment"]


# --- CRP values of 0 and between 0 and 1 mg/L -------------------------------------------


def test_a_rise_from_a_crp_of_0_counts_once_the_latest_is_at_the_normal_limit() -> None:
    # 0 mg/L is a value; any increase from 0 is more than 20% above it.
    a = run([crp(0, 100), crp(10, 0), crp(20, 50), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.SUPPORT
    assert "rise" in a.rules_fired[0].data
    assert a.figures.crp_lowest_earlier is not None and a.figures.crp_lowest_earlier.value == 0


def test_a_crp_that_stays_at_0_is_not_a_rise_even_with_no_normal_limit() -> None:
    # 0 -> 0 is no increase: "more than 20% above" cannot hold. With the normal limit set
    # to 0 the rise rule is asked; it must say no, and 100 -> 0 is a full fall.
    settings = RuleSettings(crp_normal_mg_l=0.0)
    a = run([crp(0, 100), crp(10, 0), crp(20, 0), *FALLING_PAIN], order_day=21, settings=settings)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert not a.red_flags


def test_an_unchanged_crp_is_not_a_rise() -> None:
    a = run([crp(0, 100), crp(10, 30), crp(20, 30), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize(
    ("latest", "rises"), [(36.0, False), (36.01, True)], ids=["exactly-20pct", "above-20pct"]
)
def test_a_rise_must_be_more_than_20_percent(latest: float, rises: bool) -> None:
    a = run([crp(0, 100), crp(10, 30), crp(20, latest), *FALLING_PAIN], order_day=21)
    expected = Recommendation.SUPPORT if rises else Recommendation.ADVISE_AGAINST
    assert a.recommendation is expected


def test_the_fall_from_a_baseline_below_1_mg_l_is_a_percentage_like_any_other() -> None:
    # 0.8 -> 0.7 mg/L is a 12.5% fall; both are far below the normal limit.
    a = run([crp(0, 0.8), crp(20, 0.7), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.crp_percent_change == pytest.approx(-12.5)


@pytest.mark.parametrize(
    ("latest", "expected"),
    [(0.5, Recommendation.ADVISE_AGAINST), (0.7, Recommendation.INSUFFICIENT_DATA)],
    ids=["fell-37.5pct", "fell-12.5pct"],
)
def test_a_fall_below_1_mg_l_is_judged_by_its_percentage(
    latest: float, expected: Recommendation
) -> None:
    # A site that sets the normal limit to 0.5 mg/L: then only the 25% fall can show a
    # favourable response, and it must be computed from a baseline of 0.8 mg/L too.
    settings = RuleSettings(crp_normal_mg_l=0.5)
    a = run([crp(0, 0.8), crp(20, latest), *FALLING_PAIN], order_day=21, settings=settings)
    assert a.recommendation is expected


def test_a_baseline_of_0_gives_no_percentage_and_no_claimed_fall() -> None:
    # From 0 there is no percentage; a latest of 0 is below the normal limit: improving
    # through the normal limit, and no fall is claimed.
    a = run([crp(0, 0), crp(20, 0), *FALLING_PAIN], order_day=21)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.crp_percent_change is None
    assert a.rules_fired[0].data["belowNormal"] is True


# --- values before the look-back window -------------------------------------------------


def test_a_value_before_the_look_back_window_does_not_hide_the_later_values() -> None:
    # Only data from T0 - 7 days count: 200 on day -10 is left out, the rest is used.
    a = run([crp(-10, 200), crp(0, 100), crp(14, 60), crp(28, 40), *FALLING_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [m.value for m in a.crp] == [100, 60, 40]
    assert a.counts["beforeWindow"] == 1
    assert a.figures.crp_baseline is not None and a.figures.crp_baseline.value == 100


def test_values_before_the_window_are_left_out_wherever_they_come_in_the_input() -> None:
    values = [crp(0, 100), crp(-9, 30), crp(14, 60), pain(-9, 1), crp(28, 40), *FALLING_PAIN]
    a = run(values)
    assert [m.value for m in a.crp] == [100, 60, 40]
    assert a.counts["beforeWindow"] == 2
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize(
    ("early_day", "expected"),
    [(-7, Recommendation.ADVISE_AGAINST), (-8, Recommendation.INSUFFICIENT_DATA)],
    ids=["first-day-of-window", "day-before-window"],
)
def test_the_look_back_window_starts_on_t0_minus_7_days(
    early_day: int, expected: Recommendation
) -> None:
    # 50 -> 25 is a 50% fall when the early value counts; alone, 25 is one CRP only.
    a = run([crp(early_day, 50), crp(28, 25), *FALLING_PAIN])
    assert a.recommendation is expected
    if expected is Recommendation.INSUFFICIENT_DATA:
        assert codes(a.missing) == ["crp-single"]


def test_pain_counts_from_t0_on_only() -> None:
    # A pain score of 2 the day before T0 is not "since T0": 5 -> 4 since T0 is improving,
    # not 2 points above the lowest.
    a = run([crp(0, 100), crp(28, 40), pain(-1, 2), pain(0, 5), pain(28, 4)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [m.value for m in a.pain] == [5, 4]


# --- Condition dates around a timed T0 --------------------------------------------------

PLUS2 = timezone(timedelta(hours=2))
MINUS5 = timezone(timedelta(hours=-5))
PLUS9 = timezone(timedelta(hours=9))


def timed(year: int, month: int, day_: int, hour: int, zone: timezone) -> When:
    instant = datetime(year, month, day_, hour, tzinfo=zone)
    return When(instant=instant, day=instant.date(), date_only=False)


def dated(d: date) -> When:
    return When(instant=datetime(d.year, d.month, d.day, tzinfo=UTC), day=d, date_only=True)


def fact(
    category: ConditionCategory,
    code: str,
    *,
    onset: When | None,
    recorded: When | None = None,
    ref: str = "Condition/flag",
) -> ConditionFact:
    return ConditionFact(
        reference=ref,
        category=category,
        codes=(Coding(ICD10, code, None),),
        clinical_status="active",
        verification_status="confirmed",
        onset=onset,
        recorded=recorded,
        abatement=None,
    )


def timed_patient(t0: When, *flags: ConditionFact) -> Assessment:
    """An improving patient (E1's data) whose episode starts at a timed T0 on T0's date."""
    assert t0.day == T0
    episode = fact(ConditionCategory.NVO, "M46.26", onset=t0, ref="Condition/nvo")
    values = [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(14, 5), pain(28, 3)]
    data = PatientData(conditions=(episode, *flags), measurements=tuple(values))
    return assess((order(29),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))


def test_the_improving_patient_with_a_timed_t0_is_advised_against() -> None:
    a = timed_patient(timed(2024, 3, 4, 10, PLUS2))
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_a_deficit_with_an_onset_before_a_timed_t0_is_known_whenever_recorded() -> None:
    # Onset a week before treatment started, first recorded on day 6: the onset says it
    # was there at diagnosis (clinical-rules.md, 2026-12-06): known, not new, never dropped.
    flag = fact(
        ConditionCategory.NEURO_DEFICIT,
        "G83.4",
        onset=dated(T0 - timedelta(days=7)),
        recorded=timed(2024, 3, 10, 8, PLUS2),
    )
    a = timed_patient(timed(2024, 3, 4, 10, PLUS2), flag)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "known-deficit" in codes(a.missing)


def test_a_deficit_with_onset_and_record_before_a_timed_t0_is_known() -> None:
    flag = fact(
        ConditionCategory.NEURO_DEFICIT,
        "G83.4",
        onset=dated(T0 - timedelta(days=7)),
        recorded=timed(2024, 3, 2, 8, PLUS2),
    )
    a = timed_patient(timed(2024, 3, 4, 10, PLUS2), flag)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [c.reference for c in a.known] == ["Condition/flag"]


def test_a_deficit_onset_after_a_timed_t0_counts_without_a_recorded_date() -> None:
    flag = fact(ConditionCategory.NEURO_DEFICIT, "G83.4", onset=timed(2024, 3, 20, 9, PLUS2))
    a = timed_patient(timed(2024, 3, 4, 10, PLUS2), flag)
    assert a.recommendation is Recommendation.SUPPORT_URGENT


def test_a_complication_on_day_4_in_t0s_zone_is_new() -> None:
    # T0 00:30 at +02:00 (4 March); the diagnosis window ends on 7 March. Onset 23:00 UTC
    # on 7 March is 01:00 on 8 March at +02:00: day 4 in T0's zone, so it is new.
    flag = fact(ConditionCategory.COMPLICATION, "G06.1", onset=timed(2024, 3, 7, 23, UTC))
    a = timed_patient(timed(2024, 3, 4, 0, PLUS2), flag)
    assert a.recommendation is Recommendation.SUPPORT
    assert rule_ids(a) == ["complication"]


def test_a_complication_on_day_3_in_t0s_zone_is_known() -> None:
    # T0 10:00 at -05:00 (4 March). Onset 01:00 on 8 March at +09:00 is 11:00 on 7 March
    # at -05:00: day 3 in T0's zone, inside the diagnosis window, so it is known.
    flag = fact(ConditionCategory.COMPLICATION, "G06.1", onset=timed(2024, 3, 8, 1, PLUS9))
    a = timed_patient(timed(2024, 3, 4, 10, MINUS5), flag)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [c.reference for c in a.known] == ["Condition/flag"]


def test_a_deficit_onset_on_day_4_in_t0s_zone_is_new() -> None:
    # T0 00:30 at +02:00; onset 22:00 UTC on 7 March = 00:00 on 8 March at +02:00.
    flag = fact(ConditionCategory.NEURO_DEFICIT, "G83.4", onset=timed(2024, 3, 7, 22, UTC))
    a = timed_patient(timed(2024, 3, 4, 0, PLUS2), flag)
    assert a.recommendation is Recommendation.SUPPORT_URGENT


def test_a_threshold_day_follows_elapsed_time_from_a_timed_t0() -> None:
    # T0 02:00 at +09:00 (4 March). A CRP 28 days and 1 hour later, written in UTC as
    # 18:00 on 31 March (day 27 as written), is on day 28 in T0's zone: the plateau rule
    # applies (100 -> 90 is a 10% fall after 28 days).
    t0 = timed(2024, 3, 4, 2, PLUS9)
    episode = fact(ConditionCategory.NVO, "M46.26", onset=t0, ref="Condition/nvo")
    first = crp(0, 100)
    latest = crp(28, 90)
    late = timed(2024, 3, 31, 18, UTC)
    assert (late.instant - t0.instant) == timedelta(days=28, hours=1)
    values = (
        replace(first, when=t0),
        replace(latest, when=late),
        pain(0, 5),
        pain(28, 4),
    )
    data = PatientData(conditions=(episode,), measurements=values)
    a = assess((order(29),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is Recommendation.SUPPORT
    assert "plateau" in a.rules_fired[0].data
    assert a.rules_fired[0].data["latestDay"] == 28


# --- complications and deficits before T0 -----------------------------------------------


def test_a_complication_before_t0_does_not_block_advise_against() -> None:
    # an abscess present 20 days before treatment is the reason for treatment, not a
    # complication of it: known at diagnosis, named, advise-against stands
    a = run(
        [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)],
        [nvo(), complication(onset=-20)],
    )
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "known-at-diagnosis" in codes(a.notes)


@pytest.mark.parametrize(
    ("onset", "recorded", "fires"),
    [
        (-1, None, False),
        (3, None, False),
        (4, None, True),
        (-20, 5, False),
        (None, 3, False),
        (None, 4, True),
    ],
    ids=[
        "onset-day-before",
        "onset-d3",
        "onset-d4",
        "onset-before-recorded-d5",
        "recorded-d3",
        "recorded-d4",
    ],
)
def test_a_complication_is_new_after_the_diagnosis_window_by_onset_else_recorded_date(
    onset: int, recorded: int | None, fires: bool
) -> None:
    a = run(
        [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)],
        [nvo(), complication(onset=onset, recorded=recorded)],
    )
    expected = Recommendation.SUPPORT if fires else Recommendation.ADVISE_AGAINST
    assert a.recommendation is expected


@pytest.mark.parametrize(
    ("onset", "recorded", "fires"),
    [(-1, None, False), (-30, 10, False), (None, 3, False), (None, 4, True), (4, None, True)],
    ids=["onset-day-before", "onset-before-recorded-d10", "recorded-d3", "recorded-d4", "onset-d4"],
)
def test_a_deficit_is_new_after_the_diagnosis_window_by_onset_else_recorded_date(
    onset: int | None, recorded: int | None, fires: bool
) -> None:
    a = run(
        [crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)],
        [nvo(), neuro(onset=onset, recorded=recorded)],
    )
    # known at diagnosis: the exam decides (insufficient-data), never advise-against
    expected = Recommendation.SUPPORT_URGENT if fires else Recommendation.INSUFFICIENT_DATA
    assert a.recommendation is expected


# --- what is missing, and the records that say so --------------------------------------


def test_a_latest_crp_that_is_the_baseline_leaves_no_trend() -> None:
    # The baseline is the highest CRP in T0 +/- 7 days: 100 on day 5, which is also the
    # latest, so no CRP was taken after the baseline.
    a = run([crp(0, 50), crp(5, 100), pain(0, 5), pain(5, 5)], order_day=6)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert codes(a.missing) == ["crp-none-after-baseline"]
    assert "day 5" in phrase(a.missing[0]).message


def test_one_old_crp_is_both_single_and_not_recent() -> None:
    a = run([crp(0, 100), pain(0, 5), pain(5, 5)], order_day=10)
    assert codes(a.missing) == ["crp-single", "crp-not-recent"]
    assert codes(a.unmet) == []


def test_one_recent_crp_is_missing_a_trend_not_an_unmet_fall() -> None:
    a = run([crp(0, 100), pain(0, 5), pain(2, 5)], order_day=3)
    assert codes(a.missing) == ["crp-single"]
    assert codes(a.unmet) == []


def test_cut_off_pain_without_a_score_since_t0_is_named() -> None:
    values = [crp(-7, 100), crp(28, 40)]
    data = PatientData(conditions=(nvo(),), measurements=tuple(values), cut_off=frozenset({"pain"}))
    a = assess((order(29),), data, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(a.missing) == ["pain-none", "pain-incomplete"]


def test_one_pain_score_since_t0_allows_advise_against() -> None:
    # "at least one pain score since T0, and the latest is not above the first"
    a = run([crp(0, 100), crp(28, 40), pain(28, 3)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    data = a.rules_fired[0].data
    assert data["painFirst"]["value"] == data["painLatest"]["value"] == 3


def test_a_complication_with_a_recorded_date_only_is_dated_by_it() -> None:
    a = run(
        [crp(0, 142), crp(28, 18), pain(0, 8), pain(28, 3)],
        [nvo(), complication(onset=None, recorded=5)],  # type: ignore[arg-type]
    )
    assert a.recommendation is Recommendation.SUPPORT
    assert "day 5" in phrase(a.rules_fired[0]).message


@pytest.mark.parametrize(
    ("values", "conditions", "rule", "recommendation"),
    [
        ([], [nvo(), neuro(onset=5)], "neuro", Recommendation.SUPPORT_URGENT),
        ([], [nvo(), complication(onset=5)], "complication", Recommendation.SUPPORT),
        ([], [nvo(verification="provisional")], "uncertain-dx", Recommendation.SUPPORT),
        ([crp(0, 120), crp(28, 105)], [nvo()], "markers-not-responding", Recommendation.SUPPORT),
        ([pain(0, 3), pain(20, 6)], [nvo()], "pain-worse", Recommendation.SUPPORT),
    ],
    ids=["neuro", "complication", "uncertain-dx", "markers", "pain"],
)
def test_each_red_flag_finding_carries_its_recommendation(
    values: list[object], conditions: list[ConditionFact], rule: str, recommendation: Recommendation
) -> None:
    a = run(values, conditions)  # type: ignore[arg-type]
    finding = a.rules_fired[0]
    assert finding.rule_id == rule
    assert finding.recommendation is recommendation
    assert finding.to_dict()["recommendation"] == recommendation.value


@pytest.mark.parametrize(
    "case", ["improving", "not-applicable", "order-without-date", "no-t0"], ids=str
)
def test_every_audit_record_is_json(case: str) -> None:
    if case == "improving":
        a = run([crp(0, 142), crp(14, 61), crp(28, 18), pain(0, 8), pain(28, 3)])
    elif case == "not-applicable":
        a = run([crp(0, 100)], [nvo(clinical="resolved")])
    elif case == "order-without-date":
        a = run([crp(0, 100), crp(28, 40), pain(0, 3)], orders=[order(None)])
    else:
        a = run([crp(0, 100)], [nvo(onset=None)])
    record = json.loads(json.dumps(a.to_dict()))
    assert record["recommendation"] == a.recommendation.value
    assert [m["value"] for m in record["crp"]] == [m.value for m in a.crp]


def test_a_deficit_with_only_an_onset_before_a_timed_t0_is_known() -> None:
    flag = fact(ConditionCategory.NEURO_DEFICIT, "G83.4", onset=timed(2024, 2, 20, 9, PLUS2))
    a = timed_patient(timed(2024, 3, 4, 10, PLUS2), flag)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert "known-deficit" in codes(a.missing)


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "reversed"])
def test_two_complications_are_both_reported_whatever_the_input_order(reverse: bool) -> None:
    flags = [
        complication(onset=6, ref="Condition/a1", display="Collapsed vertebra"),
        complication(onset=None, recorded=5, ref="Condition/b2"),
    ]
    conditions = [nvo(), *(reversed(flags) if reverse else flags)]
    a = run([crp(0, 142), crp(28, 18), pain(0, 8), pain(28, 3)], conditions)
    assert a.recommendation is Recommendation.SUPPORT
    finding = a.rules_fired[0]
    assert [c["reference"] for c in finding.data["conditions"]] == ["Condition/a1", "Condition/b2"]
    assert "and" in phrase(finding).short


def test_two_deficits_are_both_reported_whatever_the_input_order() -> None:
    flags = (neuro(onset=4, ref="Condition/n2"), neuro(onset=5, ref="Condition/n1"))
    a = run([crp(0, 142), crp(28, 18), pain(0, 8), pain(28, 3)], [nvo(), *flags])
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    refs = [c["reference"] for c in a.rules_fired[0].data["conditions"]]
    assert refs == ["Condition/n1", "Condition/n2"]


def test_an_inactive_nvo_entry_does_not_stop_the_other_episode_starts_being_tried() -> None:
    # Several active NVO entries with different starts: the rules run from each and the
    # most cautious answer is shown. From day 0: 100 -> 35 mg/L is a 65% fall (improving).
    # From the entry starting on day -20: baseline 40, so 35 on day 48 is a plateau.
    conditions = [
        nvo(onset=-40, clinical="resolved", ref="Condition/a-old"),
        nvo(onset=0, ref="Condition/b-main"),
        nvo(onset=-20, ref="Condition/c-earlier"),
    ]
    values = [crp(-20, 40), crp(0, 100), crp(28, 35), pain(0, 6), pain(28, 3)]
    a = run(values, conditions)
    assert a.recommendation is Recommendation.SUPPORT
    assert "several-episode-starts" in codes(a.notes)
