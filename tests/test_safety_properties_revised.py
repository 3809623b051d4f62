"""The safety property for the rules revised 2026-12-06 (clinical-rules.md): never
advise-against when any of these is present, over arbitrary improving timelines:

- a neurologic deficit known at diagnosis (the exam decides; never urgent on its own);
- a pending rise (a non-final CRP after the latest counted one, >= 10 mg/L, > 20% above);
- a slow fall (from day 28, a 25-50% fall with the latest CRP above 27.5 mg/L);
- a discordant latest pair (< 12 h apart, > 50% apart);
- no order covering the infected level.

Each case starts from a patient the engine would advise against, checked first, so that
removing the check under test makes the property fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import (
    Coding,
    ConditionFact,
    DataIssue,
    ImagingOrder,
    Measurement,
    MeasurementKind,
    PatientData,
    When,
)
from tests.engine.builders import LOINC, T0, crp, neuro, nvo, order, pain

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
RULES = RuleSettings()


def evaluate(
    data: list[Measurement],
    ords: list[ImagingOrder],
    conds: list[ConditionFact] | None = None,
    issues: tuple[DataIssue, ...] = (),
) -> Assessment:
    patient = PatientData(
        conditions=tuple(conds if conds is not None else [nvo()]),
        measurements=tuple(data),
        issues=issues,
    )
    return assess(ords, patient, RULES, datetime(2030, 1, 1, tzinfo=UTC))


@st.composite
def improving(draw: st.DrawFn) -> tuple[list[Measurement], int]:
    """A CRP that falls by half or more to a latest value within a week of the order, and
    pain that falls: advise-against (checked by each property before it adds a blocker)."""
    start = draw(st.floats(min_value=30, max_value=300))
    latest_day = draw(st.integers(1, 45))
    middle = sorted(draw(st.lists(st.integers(1, latest_day), max_size=2, unique=True)))
    days_ = [0, *[d for d in middle if d < latest_day], latest_day]
    values = [round(start * (0.5**i), 1) for i in range(len(days_))]
    data = [crp(d, v, hour=8) for d, v in zip(days_, values, strict=True)]
    data += [pain(0, 7), pain(latest_day, 3)]
    order_day = latest_day + draw(st.integers(0, RULES.crp_max_age_days))
    return data, order_day


def advised_against(data: list[Measurement], order_day: int) -> bool:
    return evaluate(data, [order(order_day)]).recommendation is Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(improving(), st.integers(-20, RULES.diagnosis_window_days))
def test_a_deficit_known_at_diagnosis_never_gives_advise_against_nor_urgent(
    case: tuple[list[Measurement], int], onset: int
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    a = evaluate(data, [order(order_day)], [nvo(), neuro(onset=onset)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    assert a.known


@PROPERTY_SETTINGS
@given(improving(), st.floats(min_value=1.201, max_value=5), st.integers(1, 12))
def test_a_pending_rise_never_gives_advise_against(
    case: tuple[list[Measurement], int], factor: float, hours_later: int
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    latest = max((m for m in data if m.kind is MeasurementKind.CRP), key=lambda m: m.when.instant)
    value = max(RULES.crp_normal_mg_l, round(latest.value * factor, 1) + 0.1)
    when = latest.when.instant + timedelta(hours=hours_later)
    assume(when.date() <= (T0 + timedelta(days=order_day)))
    pending = DataIssue(
        reference="Observation/pending",
        reason="status preliminary: not used",
        kind="crp",
        plain="not yet final",
        value=value,
        unit="mg/L",
        when=When(when, when.date()),
        status="preliminary",
    )
    a = evaluate(data, [order(order_day)], issues=(pending,))
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(
    st.floats(min_value=60, max_value=400),
    st.floats(min_value=RULES.plateau_min_fall_pct, max_value=RULES.slow_fall_max_pct - 0.01),
    st.integers(RULES.plateau_after_days, 60),
)
def test_a_slow_fall_never_gives_advise_against(
    baseline: float, fall_pct: float, latest_day: int
) -> None:
    latest = round(baseline * (1 - fall_pct / 100), 1)
    assume(latest > RULES.slow_fall_crp_mg_l)
    fall = (baseline - latest) / baseline * 100
    # away from the thresholds by more than float noise: 49.99999999999995% computed here
    # may be 50.0 in the engine's arithmetic (hypothesis found baseline 60.99999999999994)
    assume(RULES.plateau_min_fall_pct + 1e-9 <= fall < RULES.slow_fall_max_pct - 1e-9)
    data = [crp(0, baseline), crp(latest_day, latest), pain(0, 7), pain(latest_day, 3)]
    a = evaluate(data, [order(latest_day + 1)])
    assert a.recommendation is Recommendation.INSUFFICIENT_DATA
    # the same fall ending at the limit would be advise-against: the check is what blocks
    at_limit = [crp(0, baseline), crp(latest_day, round(baseline * 0.49, 1)), *data[2:]]
    assert evaluate(at_limit, [order(latest_day + 1)]).recommendation is (
        Recommendation.ADVISE_AGAINST
    )


@PROPERTY_SETTINGS
@given(improving(), st.integers(1, 11 * 60 + 59), st.floats(min_value=1.51, max_value=4))
def test_a_discordant_latest_pair_never_gives_advise_against(
    case: tuple[list[Measurement], int], minutes: int, factor: float
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    latest = max((m for m in data if m.kind is MeasurementKind.CRP), key=lambda m: m.when.instant)
    assume(latest.value > 0)
    instant = latest.when.instant + timedelta(minutes=minutes)
    assume(instant.date() == latest.when.day)
    # the second value of the pair lower than the first, so that no rise is involved
    second = Measurement(
        reference="Observation/second",
        kind=MeasurementKind.CRP,
        value=round(latest.value / factor, 2),
        unit="mg/L",
        when=When(instant, instant.date()),
        code=Coding(LOINC, "1988-5"),
        status="final",
        original_value=round(latest.value / factor, 2),
        original_unit="mg/L",
    )
    assume(second.value > 0 and (latest.value - second.value) / second.value * 100 > 50)
    a = evaluate([*data, second], [order(order_day)])
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(
    improving(),
    st.sampled_from(["cervical", "thoracic", "lumbar"]),
    st.sampled_from(["cervical", "thoracic", "lumbar", "cervicothoracic", "sacral"]),
)
def test_no_order_covering_the_infection_never_gives_advise_against(
    case: tuple[list[Measurement], int], ordered: str, infected: str
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    seen_from = {
        "cervical": {"cervical"},
        "thoracic": {"thoracic"},
        "lumbar": {"lumbar"},
        "cervicothoracic": {"cervical", "thoracic"},
        "sacral": {"lumbar"},
    }
    a = evaluate(data, [order(order_day, region=ordered)], [nvo(region=infected)])
    if ordered in seen_from[infected]:
        assert a.recommendation is Recommendation.ADVISE_AGAINST
    else:
        assert a.recommendation is Recommendation.NOT_APPLICABLE
