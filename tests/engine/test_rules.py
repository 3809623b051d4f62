"""Each rule at and around its thresholds (clinical-rules.md defaults)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cds_service.engine import Recommendation, RuleSettings, assess
from fhir_mappers.model import ConditionCategory, PatientData
from tests.engine.builders import (
    complication,
    condition,
    crp,
    esr,
    improving,
    mimic,
    neuro,
    nvo,
    order,
    pain,
    run,
)

GOOD_PAIN = [pain(0, 7), pain(10, 5), pain(20, 4)]


def rule_ids(a: object) -> list[str]:
    return [f.rule_id for f in a.rules_fired]  # type: ignore[attr-defined]


# --- markers-not-responding: plateau --------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "fires"),
    [(27.1, True), (27.0, False), (26.9, False)],
    ids=["24.7%-fall", "25%-fall", "25.3%-fall"],
)
def test_plateau_fall_threshold(latest: float, fires: bool) -> None:
    # latest at or below 27.5 mg/L: a 25% fall is not a slow fall (clinical-rules.md)
    a = run([crp(0, 36), crp(14, 32), crp(28, latest), *GOOD_PAIN], order_day=29)
    assert ("markers-not-responding" in rule_ids(a)) is fires
    expected = Recommendation.SUPPORT if fires else Recommendation.ADVISE_AGAINST
    assert a.recommendation is expected


def test_plateau_fall_threshold_survives_float_noise() -> None:
    # 142 -> 106.5 is exactly 25 %; float arithmetic must not make it 24.999... %
    # (the slow-fall band is closed by its setting, so that only the plateau edge shows)
    no_slow_fall = RuleSettings(slow_fall_max_pct=25.0)
    a = run([crp(0, 142), crp(28, 106.5), *GOOD_PAIN], order_day=29, settings=no_slow_fall)
    assert a.recommendation is Recommendation.ADVISE_AGAINST


@pytest.mark.parametrize(("latest_day", "fires"), [(27, False), (28, True)])
def test_plateau_day_threshold(latest_day: int, fires: bool) -> None:
    a = run([crp(0, 100), crp(latest_day, 80), *GOOD_PAIN], order_day=latest_day)
    assert ("markers-not-responding" in rule_ids(a)) is fires
    if not fires:  # 20 % fall before day 28: not yet a plateau, not yet a good response
        assert a.recommendation is Recommendation.INSUFFICIENT_DATA
        assert [r.code for r in a.unmet] == ["crp-not-falling"]


@pytest.mark.parametrize(("order_day", "when"), [(21, "at about day 28"), (31, "now")])
def test_an_early_crp_not_yet_down_asks_for_a_repeat_by_the_orders_day(
    order_day: int, when: str
) -> None:
    """CRP 100 -> 80 on day 20: on day 21 repeat at about day 28; an order on day 31 is
    past it (was "at about day 28" too, compared with the CRP's day)."""
    from cds_service.cards.phrasebook import phrase

    a = run([crp(0, 100), crp(20, 80), *GOOD_PAIN], order_day=order_day)
    (remark,) = [r for r in a.unmet if r.code == "crp-not-falling"]
    assert f"Repeat CRP and ESR {when}:" in phrase(remark).message


# --- markers-not-responding: rise ----------------------------------------------------


@pytest.mark.parametrize(("latest_day", "fires"), [(14, False), (15, True)])
def test_rise_day_threshold(latest_day: int, fires: bool) -> None:
    a = run([crp(0, 100), crp(7, 50), crp(latest_day, 70), *GOOD_PAIN], order_day=latest_day)
    assert ("markers-not-responding" in rule_ids(a)) is fires


@pytest.mark.parametrize(
    ("latest", "fires"), [(60.0, False), (60.05, True)], ids=["20%-rise", "20.1%-rise"]
)
def test_rise_pct_threshold(latest: float, fires: bool) -> None:
    a = run([crp(0, 100), crp(10, 50), crp(21, latest), *GOOD_PAIN], order_day=21)
    assert ("markers-not-responding" in rule_ids(a)) is fires
    expected = Recommendation.SUPPORT if fires else Recommendation.ADVISE_AGAINST
    assert a.recommendation is expected


def test_rise_is_measured_from_values_since_t0_only() -> None:
    # The pre-treatment 40 is not "since T0"; against the lowest since T0 (60) 65 is no rise.
    a = run([crp(-3, 40), crp(0, 100), crp(10, 60), crp(21, 65), *GOOD_PAIN], order_day=21)
    assert "markers-not-responding" not in rule_ids(a)


def test_markers_rule_needs_a_value_after_the_baseline() -> None:
    # Only the baseline itself at day 30: no trend, so no plateau can be claimed.
    a = run([crp(30, 100), *GOOD_PAIN], order_day=30)
    assert "markers-not-responding" not in rule_ids(a)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA


# --- pain-worse ------------------------------------------------------------------------


@pytest.mark.parametrize(("latest", "fires"), [(5.0, True), (4.9, False)], ids=["+2", "+1.9"])
def test_pain_worse_threshold(latest: float, fires: bool) -> None:
    data = [crp(0, 140), crp(28, 20), pain(0, 7), pain(14, 3), pain(28, latest)]
    a = run(data, order_day=29)
    assert ("pain-worse" in rule_ids(a)) is fires
    expected = Recommendation.SUPPORT if fires else Recommendation.ADVISE_AGAINST
    assert a.recommendation is expected


def test_pain_worse_fires_whatever_the_crp() -> None:
    data = [crp(0, 140), crp(28, 5), pain(0, 2), pain(28, 4)]
    assert run(data).recommendation is Recommendation.SUPPORT


def test_pain_above_first_score_blocks_advise_against() -> None:
    data = [crp(0, 140), crp(28, 20), pain(0, 3), pain(28, 4)]
    a = run(data)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.unmet] == ["pain-not-improving"]


# --- CRP normal limit --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "expected"),
    [(9.9, Recommendation.ADVISE_AGAINST), (10.0, Recommendation.INSUFFICIENT_DATA)],
)
def test_crp_normal_limit(latest: float, expected: Recommendation) -> None:
    # 12 -> 9.9 is a 17.5 % fall: only "below 10 mg/L" can make it favourable (day 20 < 28).
    a = run([crp(0, 12), crp(20, latest), *GOOD_PAIN], order_day=20)
    assert a.recommendation is expected


# --- baseline window ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("early_day", "expected"),
    [(-7, Recommendation.ADVISE_AGAINST), (-8, Recommendation.INSUFFICIENT_DATA)],
)
def test_baseline_window_start(early_day: int, expected: Recommendation) -> None:
    # At day -7 the 200 is the baseline (fall 55 %); at day -8 it does not count at all.
    a = run([crp(early_day, 200), crp(0, 100), crp(21, 90), *GOOD_PAIN], order_day=21)
    assert a.recommendation is expected
    assert a.counts["beforeWindow"] == (1 if early_day == -8 else 0)


@pytest.mark.parametrize(
    ("late_day", "expected"),
    [(7, Recommendation.ADVISE_AGAINST), (8, Recommendation.INSUFFICIENT_DATA)],
)
def test_baseline_window_end(late_day: int, expected: Recommendation) -> None:
    # Inside the window the 200 is the baseline (140 is a 30 % fall); outside, day 0's 100 is.
    # (pain only up to the order's day: a score after it would block the advice itself)
    pains = [p for p in GOOD_PAIN if p.when.day <= GOOD_PAIN[0].when.day + timedelta(days=12)]
    a = run([crp(0, 100), crp(late_day, 200), crp(12, 140), *pains], order_day=12)
    assert a.recommendation is expected


def test_baseline_is_first_value_after_t0_when_none_in_window() -> None:
    a = run([crp(10, 100), crp(20, 60), *GOOD_PAIN], order_day=20)
    assert a.figures.crp_baseline is not None and a.figures.crp_baseline.value == 100
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_pre_treatment_values_only_are_insufficient() -> None:
    a = run([crp(-6, 100), crp(-2, 50), pain(0, 5), pain(5, 5)], order_day=10)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    # the latest CRP (day -2) is also 12 days old at the order
    assert [r.code for r in a.missing] == ["crp-none-on-treatment", "crp-not-recent"]


# --- hs-CRP, comparators, statuses, evaluation time --------------------------------------


def test_hs_crp_used_only_without_standard_crp() -> None:
    only_hs = run([crp(0, 100, hs=True), crp(28, 20, hs=True), *GOOD_PAIN])
    assert only_hs.recommendation is Recommendation.ADVISE_AGAINST
    assert "hs-crp-used" in [n.code for n in only_hs.notes]
    mixed = run([crp(0, 100), crp(28, 90), crp(0, 100, hs=True), crp(28, 5, hs=True), *GOOD_PAIN])
    assert all(not m.high_sensitivity for m in mixed.crp)
    assert mixed.recommendation is Recommendation.SUPPORT  # the standard CRP plateaued


def test_comparator_value_is_taken_at_its_limit_and_noted() -> None:
    a = run([crp(0, 100), crp(28, 5, comparator="<"), *GOOD_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "crp-at-limit" in [n.code for n in a.notes]


def test_values_after_the_order_date_are_not_used() -> None:
    a = run([crp(0, 100), crp(20, 50), crp(40, 150), *GOOD_PAIN], order_day=21)
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 50
    assert a.counts["afterEvaluation"] == 1


def test_latest_authored_on_is_the_evaluation_time() -> None:
    orders = [order(10, ref="ServiceRequest/a"), order(29, ref="ServiceRequest/b")]
    a = run(improving(), orders=orders)
    assert a.evaluation_time_source == "authoredOn"
    assert a.figures.days_since_t0 == 29
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        assess([order(None)], PatientData(), RuleSettings(), datetime(2024, 1, 1))


# --- neuro / complication ----------------------------------------------------------------


@pytest.mark.parametrize(("onset", "fires"), [(-1, False), (0, False), (3, False), (4, True)])
def test_neuro_is_new_only_after_the_diagnosis_window(onset: int, fires: bool) -> None:
    # known at diagnosis (up to day 3): insufficient-data, the exam decides; new: urgent
    a = run(improving(), [nvo(), neuro(onset=onset)])
    assert ("neuro" in rule_ids(a)) is fires
    expected = Recommendation.SUPPORT_URGENT if fires else Recommendation.INSUFFICIENT_DATA
    assert a.recommendation is expected


@pytest.mark.parametrize(
    "kw",
    [{"clinical": "resolved"}, {"verification": "refuted"}, {"verification": "entered-in-error"}],
)
def test_resolved_or_refuted_deficit_does_not_count(kw: dict[str, str]) -> None:
    a = run(improving(), [nvo(), neuro(onset=10, **kw)])
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_undated_deficit_counts() -> None:
    a = run(improving(), [nvo(), neuro(onset=None)])  # type: ignore[arg-type]
    assert a.recommendation is Recommendation.SUPPORT_URGENT


def test_complication_after_t0_supports() -> None:
    a = run(improving(), [nvo(), complication(onset=12)])
    assert a.recommendation is Recommendation.SUPPORT
    assert rule_ids(a) == ["complication"]


def test_all_fired_rules_are_recorded_in_order_and_most_severe_wins() -> None:
    data = [crp(0, 100), crp(28, 95), pain(0, 3), pain(28, 6)]
    a = run(data, [nvo(verification="provisional"), complication(onset=5), neuro(onset=20)])
    assert rule_ids(a) == [
        "neuro",
        "complication",
        "uncertain-dx",
        "markers-not-responding",
        "pain-worse",
    ]
    assert a.recommendation is Recommendation.SUPPORT_URGENT


# --- uncertain-dx ------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["provisional", "differential", "unconfirmed"])
def test_unconfirmed_nvo_is_uncertain(status: str) -> None:
    a = run(improving(), [nvo(verification=status)])
    assert rule_ids(a) == ["uncertain-dx"]
    assert a.recommendation is Recommendation.SUPPORT


@pytest.mark.parametrize(
    ("verification", "fires"), [(None, True), ("unconfirmed", True), ("confirmed", False)]
)
def test_discitis_unspecified_needs_confirmation(verification: str | None, fires: bool) -> None:
    m464 = condition("M46.46", ConditionCategory.NVO_UNSPECIFIED, verification=verification)
    a = run(improving(), [m464])
    assert ("uncertain-dx" in rule_ids(a)) is fires


def test_active_mimic_is_uncertain_but_resolved_one_is_not() -> None:
    assert run(improving(), [nvo(), mimic()]).recommendation is Recommendation.SUPPORT
    resolved = mimic(clinical="resolved")
    assert run(improving(), [nvo(), resolved]).recommendation is Recommendation.ADVISE_AGAINST


# --- insufficient data -------------------------------------------------------------------


def test_no_pain_score_since_t0_is_missing() -> None:
    a = run([crp(0, 140), crp(28, 20), pain(-2, 8)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["pain-none"]


def test_no_crp_at_all_is_missing() -> None:
    a = run([pain(0, 5), pain(20, 3)])
    assert [r.code for r in a.missing] == ["crp-none"]


def test_unknown_t0_is_insufficient_unless_a_red_flag_fires() -> None:
    undated = nvo(onset=None)
    a = run(improving(), [undated])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["episode-start-unknown"]
    b = run(improving(), [undated, neuro(onset=3)])
    assert b.recommendation is Recommendation.SUPPORT_URGENT


def test_early_order_in_improving_patient_is_still_advise_against() -> None:
    data = [crp(0, 140), crp(14, 50), pain(0, 8), pain(14, 4)]
    a = run(data, order_day=15)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "early-order" in [n.code for n in a.notes]


# --- settings are honoured and recorded --------------------------------------------------


def test_settings_change_the_outcome() -> None:
    data = [crp(0, 100), crp(22, 80), *GOOD_PAIN]
    default = run(data, order_day=22)
    earlier = run(data, order_day=22, settings=RuleSettings(plateau_after_days=21))
    assert default.recommendation is Recommendation.INSUFFICIENT_DATA
    assert earlier.recommendation is Recommendation.SUPPORT


def test_audit_record_is_json() -> None:
    a = run([*improving(), esr(14, 70)], [nvo(), mimic()])
    record = json.loads(json.dumps(a.to_dict()))
    assert record["recommendation"] == "support"
    assert record["settings"]["plateau_min_fall_pct"] == 25.0
    assert record["rulesFired"][0]["id"] == "uncertain-dx"
    assert record["episode"]["t0"] == "2024-03-04"


def test_evaluation_is_independent_of_input_order() -> None:
    data = improving()
    conds = [nvo(onset=0, ref="Condition/a"), nvo(onset=0, ref="Condition/b")]
    one = run(data, conds)
    two = run(list(reversed(data)), list(reversed(conds)))
    assert one.to_dict() == two.to_dict()
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert one.evaluated_at != now
