"""What the rules say at their edges, as example patients through the engine.

Written from clinical-rules.md and the contracts of rules.py and response.py:

- The normal limit is "below 10 mg/L": a latest CRP of exactly 10 is not below it, and
  the card's machine-readable ``belowNormal`` says so.
- A fall of exactly the minimum (25 %) is a fall: the card says "Improving" with the
  percentage; an advise-against reached through the normal limit instead says the CRP
  trend *and* that the latest value is below the limit.
- A baseline of 0 mg/L gives no percentage: a later CRP above the normal limit is "not
  yet down", said without a made-up percentage (and without failing).
- A baseline window narrower than the look-back: values before T0 outside it are no
  baseline, so a trend of pre-treatment values shows no response.
- Comparisons are made on values rounded to 6 decimals (rules.py), so float noise below
  a millionth never decides a threshold.
- The red-flag summaries: a deficit present at diagnosis is not called "new", a second
  deficit is named, a complication with no date says "recorded" and nothing more, a
  rise from 0 mg/L has no percentage, and every mimic is named.
"""

from __future__ import annotations

from cds_service.cards.phrasebook import phrase
from cds_service.cards.words import MINUS
from cds_service.engine import Recommendation, RuleSettings
from cds_service.engine.rules import pct_change
from fhir_mappers.model import ConditionCategory
from tests.engine.builders import condition, crp, mimic, neuro, nvo, pain, run

GOOD_PAIN = [pain(0, 8), pain(14, 5), pain(28, 3)]


# --- advise-against: the favourable response ---------------------------------------------


def test_a_latest_crp_of_exactly_10_is_not_below_the_normal_limit() -> None:
    a = run([crp(0, 100), crp(28, 10), *GOOD_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.rules_fired[0].data["belowNormal"] is False
    b = run([crp(0, 100), crp(28, 9.9), *GOOD_PAIN])
    assert b.rules_fired[0].data["belowNormal"] is True


def test_a_fall_of_exactly_25_percent_is_improving() -> None:
    # 27 mg/L is not above the slow-fall limit (27.5): a 25% fall to it is improving
    a = run([crp(0, 36), crp(28, 27), *GOOD_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    f = a.rules_fired[0]
    assert phrase(f).message == (
        f"Improving: CRP 36\u219227 mg/L, {MINUS}25%; pain 8\u21923; no red flag recorded."
    )
    assert phrase(f).short == f"improving (CRP 36\u219227 mg/L, {MINUS}25%; pain 8\u21923)"


def test_an_unchanged_crp_is_shown_as_0_percent_when_a_site_asks_for_no_fall() -> None:
    settings = RuleSettings(plateau_min_fall_pct=0.0)
    a = run([crp(0, 20), crp(28, 20), *GOOD_PAIN], settings=settings)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert phrase(a.rules_fired[0]).message.startswith("Improving: CRP 20\u219220 mg/L, 0%;")


def test_advise_against_through_the_normal_limit_shows_the_trend_and_the_limit() -> None:
    # 11 -> 9 mg/L is an 18 % fall, less than 25 %, but 9 is below the normal limit.
    a = run([crp(0, 11), crp(28, 9), *GOOD_PAIN])
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    f = a.rules_fired[0]
    assert phrase(f).message == (
        "CRP normal, pain not worse: CRP 11\u21929 mg/L, below the normal limit of 10 mg/L; "
        "pain 8\u21923; no red flag recorded."
    )


# --- insufficient data -------------------------------------------------------------------


def test_a_crp_above_the_limit_after_a_baseline_of_0_is_not_yet_down() -> None:
    # Baseline 0 mg/L on day 0, 20 on day 10: no percentage exists, the latest is above
    # the limit, and before day 14 it is no rise yet: not a favourable response. A rise
    # from its lowest too early to count: the card asks for a repeat CRP first (not also
    # "repeat at about day 28", an outside re-run).
    a = run([crp(0, 0), crp(10, 20), pain(0, 7), pain(10, 5)], order_day=10)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert a.unmet == ()
    assert [r.code for r in a.missing] == ["crp-early-rise"]
    assert phrase(a.missing[0]).short == "CRP up since day 0, repeat CRP"


def test_pre_treatment_values_outside_a_narrow_baseline_window_are_no_baseline() -> None:
    # Baseline window 3 days, look-back 7: values on days -6 and -5 count as data but lie
    # outside the window and before T0, so there is no baseline and no response to judge.
    settings = RuleSettings(baseline_window_days=3)
    a = run([crp(-6, 60), crp(-5, 50), pain(0, 7), pain(2, 5)], order_day=2, settings=settings)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["crp-none-on-treatment"]
    assert a.figures.crp_baseline is None


# --- comparisons on values rounded to 6 decimals -----------------------------------------


def test_float_noise_below_a_millionth_is_no_change() -> None:
    assert pct_change(100.0, 75.0000004) == -25.0
    assert pct_change(100.0, 120.0000004) == 20.0
    # A 25 % fall within noise is a 25 % fall: improving, not a plateau.
    no_slow_fall = RuleSettings(slow_fall_max_pct=25.0)
    a = run([crp(0, 100), crp(28, 75.0000004), *GOOD_PAIN], settings=no_slow_fall)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    # Pain 3 -> 4.9999996 is 2 points within noise: pain is worse.
    b = run([crp(0, 100), crp(28, 20), pain(0, 3), pain(28, 4.9999996)])
    assert [f.rule_id for f in b.rules_fired] == ["pain-worse"]


# --- red-flag summaries ------------------------------------------------------------------


def test_a_deficit_present_at_diagnosis_is_not_called_new() -> None:
    a = run(GOOD_PAIN, [nvo(), neuro(onset=0)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    known = next(r for r in a.missing if r.code == "known-deficit")
    assert phrase(known).message.startswith(
        "Cauda equina syndrome (2024-03-04, the day treatment started) recorded at diagnosis"
    )
    assert "New" not in phrase(known).message


def test_a_second_deficit_is_named_in_the_summary() -> None:
    flags = [
        neuro(onset=4, ref="Condition/n1"),
        condition(
            "G82.20",
            ConditionCategory.NEURO_DEFICIT,
            onset=5,
            display="Paraplegia",
            ref="Condition/n2",
        ),
    ]
    a = run(GOOD_PAIN, [nvo(), *flags])
    assert phrase(a.rules_fired[0]).short == "New cauda equina syndrome (day 4), and paraplegia"


def test_a_complication_without_a_treatment_start_is_recorded_without_a_date() -> None:
    abscess = condition(
        "G06.1",
        ConditionCategory.COMPLICATION,
        onset=None,
        display="Intraspinal abscess and granuloma",
    )
    a = run(GOOD_PAIN, [nvo(onset=None), abscess])
    assert a.recommendation is Recommendation.SUPPORT
    assert phrase(a.rules_fired[0]).short == "Intraspinal abscess and granuloma recorded"


def test_a_rise_from_0_mg_l_is_said_without_a_percentage() -> None:
    a = run([crp(0, 100), crp(10, 0), crp(20, 50), *GOOD_PAIN[:2]], order_day=21)
    f = a.rules_fired[0]
    assert f.rule_id == "markers-not-responding"
    assert phrase(f).short == "CRP rising again: 0\u219250 mg/L since day 10"
    assert phrase(f).message == (
        "CRP rising again: 0 mg/L on day 10, 50 mg/L on day 20, more than 20% above its "
        "lowest since treatment start."
    )


def test_a_fall_from_a_peak_on_treatment_is_no_rise_above_the_admission_value() -> None:
    """CRP often climbs for the first days of antibiotics: 50 on admission, 200 on day 4
    (the baseline), 70 on day 20 is a 65% fall, not a rise from 50 (an outside clinical
    review found it called "CRP rising again")."""
    a = run([crp(0, 50), crp(4, 200), crp(20, 70), pain(0, 8), pain(20, 3)], order_day=21)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "markers-not-responding" not in [f.rule_id for f in a.rules_fired]
    assert a.figures.crp_lowest_earlier is not None and a.figures.crp_lowest_earlier.value == 200


def test_a_rise_after_the_fall_from_that_peak_still_fires() -> None:
    a = run([crp(0, 50), crp(4, 200), crp(12, 40), crp(20, 70), pain(0, 8), pain(20, 3)],
            order_day=21)  # fmt: skip
    assert a.recommendation is Recommendation.SUPPORT
    f = a.rules_fired[0]
    assert f.rule_id == "markers-not-responding"
    assert phrase(f).short == "CRP rising again: 40\u219270 mg/L (+75%) since day 12"


def test_every_mimic_is_named() -> None:
    conditions = [
        nvo(),
        mimic(display="Secondary malignant neoplasm of bone", ref="Condition/m2"),
        mimic(display="Intervertebral disc degeneration", ref="Condition/m1"),
    ]
    a = run(GOOD_PAIN, conditions)
    f = a.rules_fired[0]
    # never "diagnosis unclear" as a fact (clinical-rules.md, 2026-12-06): what is
    # recorded, and why imaging may still be needed
    assert phrase(f).message == (
        "Intervertebral disc degeneration, secondary malignant neoplasm of bone also "
        "recorded: imaging may be needed for the cancer or to tell infection from tumour."
    )
    assert "unclear" not in phrase(f).message
