"""Property tests of the safety invariants, over arbitrary timelines (hypothesis).

- A red flag present in the data never yields advise-against (the 2026-12-06 blockers:
  tests/test_safety_properties_revised.py).
- No card without a spine MRI/CT order or without an in-scope NVO episode.
- Never advise-against with an active out-of-scope infection, with a latest CRP older
  than the recency limit, or with data cut off short of what the decision needs
  (clinical-rules.md, revised 2026-11-28).
- Every rendered response conforms to the response schema, has no empty values, a
  summary under 140 characters and no resource ids or internal names in its text.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cds_service.cards import CardContext, load_override_reasons, render_response
from cds_service.engine import Assessment, Recommendation, RuleSettings, assess
from fhir_mappers.model import (
    ConditionCategory,
    ConditionFact,
    ImagingOrder,
    Measurement,
    MeasurementKind,
    PatientData,
)
from tests.engine.builders import (
    T0,
    complication,
    condition,
    crp,
    esr,
    neuro,
    nvo,
    order,
    pain,
)
from tests.support.conformance import assert_conformant_response

CTX = CardContext(patient_id="p1", override_reasons=load_override_reasons())
STATUSES = ["final", "amended", "corrected", "preliminary", "entered-in-error", "cancelled"]
CLINICAL = ["active", "recurrence", "relapse", "inactive", "remission", "resolved", None]
VERIFICATION = ["confirmed", "provisional", "differential", "unconfirmed", "refuted", None]
OTHER_CATEGORIES = [
    ConditionCategory.COMPLICATION,
    ConditionCategory.NEURO_DEFICIT,
    ConditionCategory.MIMIC,
    ConditionCategory.OTHER,
    ConditionCategory.OUT_OF_SCOPE,
    ConditionCategory.NVO_OTHER_INFECTIVE,
]
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

days = st.integers(min_value=-20, max_value=70)
values = st.floats(min_value=0, max_value=400, allow_nan=False, allow_infinity=False)


@st.composite
def measurements(draw: st.DrawFn) -> list[Measurement]:
    out: list[Measurement] = []
    for _ in range(draw(st.integers(0, 6))):
        out.append(
            crp(
                draw(days),
                round(draw(values), 1),
                status=draw(st.sampled_from(STATUSES)),
                hs=draw(st.booleans()),
                comparator=draw(st.sampled_from([None, None, None, "<", ">"])),
                hour=draw(st.sampled_from([None, 6, 18])),
            )
        )
    for _ in range(draw(st.integers(0, 5))):
        out.append(
            pain(draw(days), draw(st.integers(0, 10)), status=draw(st.sampled_from(STATUSES)))
        )
    for _ in range(draw(st.integers(0, 3))):
        out.append(esr(draw(days), draw(st.integers(1, 120))))
    return out


@st.composite
def other_conditions(draw: st.DrawFn, categories: list[ConditionCategory]) -> list[ConditionFact]:
    return [
        condition(
            draw(st.sampled_from(["X00.0", "A18.01", "T84.7XXA", "G83.4", "G06.1", "C41.2"])),
            draw(st.sampled_from(categories)),
            onset=draw(st.one_of(st.none(), days)),
            clinical=draw(st.sampled_from(CLINICAL)),
            verification=draw(st.sampled_from(VERIFICATION)),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]


@st.composite
def orders(draw: st.DrawFn) -> list[ImagingOrder]:
    authored = draw(st.lists(st.one_of(st.none(), st.integers(0, 70)), min_size=1, max_size=2))
    return [order(d, ref=f"ServiceRequest/sr{i}") for i, d in enumerate(authored)]


now_days = st.integers(min_value=0, max_value=70)


def evaluate(
    ords: list[ImagingOrder],
    conds: list[ConditionFact],
    data: list[Measurement],
    now_day: int,
    cut_off: frozenset[str] = frozenset(),
) -> Assessment:
    now = datetime(T0.year, T0.month, T0.day, 12, tzinfo=UTC) + timedelta(days=now_day)
    patient = PatientData(tuple(conds), tuple(data), cut_off=cut_off)
    return assess(ords, patient, RuleSettings(), now)


def check_response(a: Assessment) -> None:
    response = render_response(a, CTX)
    assert_conformant_response(response)
    if a.recommendation is Recommendation.NOT_APPLICABLE:
        assert response == {"cards": []}
    else:
        assert len(response["cards"]) == 1
        card = response["cards"][0]
        assert len(card["summary"]) < 140
        for word in ("Condition/", "Observation/", "ServiceRequest/", "T0", "->", "NVO"):
            assert word not in card["summary"] and word not in card["detail"], word


# A finding dated after the diagnosis window (T0 + 3 days by default) is new.
after_window = st.integers(RuleSettings().diagnosis_window_days + 1, 70)


@PROPERTY_SETTINGS
@given(measurements(), other_conditions(OTHER_CATEGORIES), orders(), now_days, after_window)
def test_a_new_deficit_always_means_urgent_support(
    data: list[Measurement],
    others: list[ConditionFact],
    ords: list[ImagingOrder],
    now_day: int,
    deficit_day: int,
) -> None:
    a = evaluate(ords, [nvo(), *others, neuro(onset=deficit_day)], data, now_day)
    if a.applicable:
        assert a.recommendation is Recommendation.SUPPORT_URGENT
    check_response(a)


@PROPERTY_SETTINGS
@given(measurements(), other_conditions(OTHER_CATEGORIES), orders(), now_days, after_window)
def test_a_complication_or_uncertain_diagnosis_never_gives_advise_against(
    data: list[Measurement],
    others: list[ConditionFact],
    ords: list[ImagingOrder],
    now_day: int,
    event_day: int,
) -> None:
    for conds in (
        [nvo(), *others, complication(onset=event_day)],
        [nvo(verification="provisional"), *others],
        [condition("M46.46", ConditionCategory.NVO_UNSPECIFIED, verification=None), *others],
    ):
        a = evaluate(ords, conds, data, now_day)
        assert a.recommendation is not Recommendation.ADVISE_AGAINST
        if a.applicable:
            assert a.recommendation in (Recommendation.SUPPORT, Recommendation.SUPPORT_URGENT)
            assert a.red_flags


@PROPERTY_SETTINGS
@given(measurements(), other_conditions(OTHER_CATEGORIES), orders(), now_days)
def test_worse_pain_in_the_data_never_gives_advise_against(
    data: list[Measurement], others: list[ConditionFact], ords: list[ImagingOrder], now_day: int
) -> None:
    a = evaluate(ords, [nvo(), *others], data, now_day)
    check_response(a)
    # Independent reading of the pain rule: usable scores from T0 to the order date.
    authored = [o.authored_on.day for o in ords if o.authored_on is not None]
    eval_day = max(authored) if authored else T0 + timedelta(days=now_day)
    usable = sorted(
        (m for m in data if m.kind is MeasurementKind.PAIN and m.status in STATUSES[:4]),
        key=lambda m: (m.when.instant, m.reference),
    )
    scores = [m for m in usable if T0 <= m.when.day <= eval_day]
    if scores and scores[-1].value - min(m.value for m in scores) >= 2:
        assert a.recommendation is not Recommendation.ADVISE_AGAINST
    if a.recommendation is Recommendation.ADVISE_AGAINST:
        assert not a.red_flags
        assert scores and scores[-1].value <= scores[0].value


@PROPERTY_SETTINGS
@given(measurements(), other_conditions([*OTHER_CATEGORIES, ConditionCategory.NVO]), now_days)
def test_no_card_without_a_spine_order(
    data: list[Measurement], conds: list[ConditionFact], now_day: int
) -> None:
    a = evaluate([], [nvo(), *conds], data, now_day)
    assert render_response(a, CTX) == {"cards": []}


@PROPERTY_SETTINGS
@given(measurements(), other_conditions(OTHER_CATEGORIES), orders(), now_days, st.data())
def test_no_card_without_an_in_scope_episode(
    data: list[Measurement],
    others: list[ConditionFact],
    ords: list[ImagingOrder],
    now_day: int,
    extra: st.DataObject,
) -> None:
    # NVO Conditions that do not count: resolved/inactive, refuted or entered in error.
    dead_nvo = extra.draw(
        st.lists(
            st.one_of(
                st.builds(
                    lambda c: nvo(clinical=c),
                    st.sampled_from(["inactive", "remission", "resolved"]),
                ),
                st.builds(
                    lambda v: nvo(verification=v), st.sampled_from(["refuted", "entered-in-error"])
                ),
                st.builds(lambda d: nvo(clinical=None, abatement=d), st.integers(1, 60)),
            ),
            max_size=2,
        )
    )
    a = evaluate(ords, [*others, *dead_nvo], data, now_day)
    assert render_response(a, CTX) == {"cards": []}


Case = tuple[list[Measurement], list[ImagingOrder]]


@st.composite
def improving_case(draw: st.DrawFn) -> Case:
    """Falling CRP and pain with the order a few days after the last CRP, so that
    advise-against is often in reach and the invariants below are really exercised
    (random values alone rarely get there)."""
    first = draw(st.integers(-10, 5))  # around the start of the baseline window (T0 - 7)
    later = draw(st.lists(st.integers(first + 1, 30), min_size=1, max_size=4, unique=True))
    crp_days = sorted([first, *later])
    order_day = max(0, crp_days[-1]) + draw(st.integers(0, 10))
    start = draw(st.floats(min_value=20, max_value=200))
    out = [crp(d, round(start * (0.7**i), 1)) for i, d in enumerate(crp_days)]
    pain_days = sorted(draw(st.lists(st.integers(0, order_day), min_size=1, max_size=3)))
    out += [pain(d, max(0, 7 - 2 * i)) for i, d in enumerate(pain_days)]
    return out, [order(order_day)]


@st.composite
def random_case(draw: st.DrawFn) -> Case:
    return draw(measurements()), draw(orders())


@PROPERTY_SETTINGS
@given(
    st.one_of(random_case(), improving_case()),
    other_conditions(OTHER_CATEGORIES),
    now_days,
    st.one_of(
        st.just(frozenset({"crp"})),
        st.frozensets(st.sampled_from(["conditions", "crp", "esr", "pain"])),
    ),
)
def test_advise_against_only_on_complete_recent_in_scope_data(
    case: Case, others: list[ConditionFact], now_day: int, cut_off: frozenset[str]
) -> None:
    data, ords = case
    a = evaluate(ords, [nvo(), *others], data, now_day, cut_off)
    check_response(a)
    if a.recommendation is not Recommendation.ADVISE_AGAINST:
        return
    # Independent readings of the revised rules, from the raw inputs.
    assert not any(
        c.category is ConditionCategory.OUT_OF_SCOPE
        and c.clinical_status in ("active", "recurrence", "relapse", None)
        and c.verification_status not in ("refuted", "entered-in-error")
        and not (c.clinical_status is None and c.abatement is not None)
        for c in others
    )
    latest = a.figures.crp_latest
    assert latest is not None
    assert (a.evaluation_day - latest.when.day).days <= RuleSettings().crp_max_age_days
    assert "conditions" not in cut_off
    if "crp" in cut_off:
        read = [m.when.day for m in data if m.kind is MeasurementKind.CRP]
        assert min(read) <= T0 - timedelta(days=RuleSettings().baseline_window_days)
