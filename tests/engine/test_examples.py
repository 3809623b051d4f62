"""example-scenarios.md E1..E10, built as domain objects (the mappers are not involved)."""

from __future__ import annotations

from cds_service.engine import NotApplicableReason, Recommendation
from fhir_mappers.model import ConditionCategory
from tests.engine.builders import condition, crp, esr, improving, neuro, nvo, order, pain, run


def test_e1_favourable_response_advises_against() -> None:
    a = run(improving(), order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [f.rule_id for f in a.rules_fired] == ["advise-against"]
    f = a.figures
    assert f.crp_baseline is not None and f.crp_baseline.value == 142
    assert f.crp_latest is not None and f.crp_latest.value == 18
    assert f.crp_percent_change is not None and round(f.crp_percent_change, 1) == -87.3
    assert f.days_since_t0 == 29
    assert not a.red_flags


def test_e2_new_cauda_equina_overrides_falling_crp() -> None:
    a = run(improving(), [nvo(), neuro(onset=26)], order_day=27)
    assert a.recommendation is Recommendation.SUPPORT_URGENT
    assert a.rules_fired[0].rule_id == "neuro"
    # CRP measured on day 28 is after the order date (day 27): not used.
    assert a.figures.crp_latest is not None and a.figures.crp_latest.value == 61
    assert a.counts["afterEvaluation"] == 3


def test_e3_unchanged_markers_after_four_weeks_support() -> None:
    data = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(14, 6), pain(28, 6)]
    a = run(data, order_day=29)
    assert a.recommendation is Recommendation.SUPPORT
    assert [f.rule_id for f in a.rules_fired] == ["markers-not-responding"]
    assert "plateau" in a.rules_fired[0].data
    assert "rise" not in a.rules_fired[0].data


def test_e4_crp_rising_after_initial_decline_supports() -> None:
    data = [crp(0, 90), crp(10, 60), crp(21, 95), pain(0, 6), pain(10, 5), pain(21, 5)]
    a = run(data, order_day=21)
    assert a.recommendation is Recommendation.SUPPORT
    finding = a.rules_fired[0]
    assert finding.rule_id == "markers-not-responding"
    assert finding.data["rise"]["lowestEarlier"]["value"] == 60
    assert "plateau" not in finding.data


def test_e5_mixed_units_read_as_a_fall_not_a_plateau() -> None:
    data = [
        crp(0, 140, original_value=14.0, original_unit="mg/dL"),
        crp(14, 51, original_value=5.1, original_unit="mg/dL"),
        crp(28, 12),
        pain(0, 7),
        pain(14, 4),
        pain(28, 2),
    ]
    a = run(data, order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert a.figures.crp_percent_change is not None and a.figures.crp_percent_change < -25


def test_e6_single_crp_is_insufficient_data() -> None:
    a = run([crp(28, 25), pain(28, 4)], order_day=28)
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert [r.code for r in a.missing] == ["crp-single"]
    assert a.rules_fired[-1].rule_id == "insufficient-data"


def test_e7_resolved_episode_gives_no_card() -> None:
    a = run(improving(), [nvo(clinical="resolved", abatement=75)], order_day=180)
    assert a.recommendation is Recommendation.NOT_APPLICABLE
    assert a.not_applicable_reason is NotApplicableReason.NO_EPISODE


def test_e8_tuberculous_spondylitis_only_gives_no_card() -> None:
    tb = condition("A18.01", ConditionCategory.OUT_OF_SCOPE, display="Tuberculosis of spine")
    a = run(improving(), [tb])
    assert a.recommendation is Recommendation.NOT_APPLICABLE
    assert a.not_applicable_reason is NotApplicableReason.NON_PYOGENIC_ONLY


def test_e9_brain_mri_is_no_spine_order() -> None:
    # The mappers turn only spine MRI/CT into ImagingOrders: a brain MRI yields none.
    a = run(improving(), orders=[])
    assert a.recommendation is Recommendation.NOT_APPLICABLE
    assert a.not_applicable_reason is NotApplicableReason.NO_SPINE_ORDER


def test_e10_entered_in_error_value_is_ignored() -> None:
    data = [
        crp(0, 140),
        crp(14, 60),
        crp(28, 180, status="entered-in-error", hour=8),
        crp(28, 20, hour=10),
        pain(0, 7),
        pain(14, 5),
        pain(28, 3),
    ]
    a = run(data, order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert [m.value for m in a.crp] == [140, 60, 20]
    assert a.counts["ignoredStatus"] == 1


def test_e1_with_the_order_sent_without_authored_on_uses_now() -> None:
    from datetime import UTC, datetime

    from cds_service.engine import RuleSettings, assess
    from fhir_mappers.model import PatientData

    now = datetime(2024, 4, 2, 15, 0, tzinfo=UTC)  # T0 + 29 days
    a = assess([order(None)], PatientData((nvo(),), tuple(improving())), RuleSettings(), now)
    assert a.evaluation_time_source == "now"
    assert a.figures.days_since_t0 == 29
    assert a.recommendation is Recommendation.ADVISE_AGAINST


def test_esr_rising_with_falling_crp_does_not_block_advise_against() -> None:
    data = [m for m in improving() if m.kind.value != "esr"] + [esr(0, 40), esr(28, 70)]
    a = run(data, order_day=29)
    assert a.recommendation is Recommendation.ADVISE_AGAINST
    assert "esr-rising" in [n.code for n in a.notes]
