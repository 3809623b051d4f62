"""The safety property for the imaging revision (clinical-rules.md, "Imaging",
2026-12-06): never advise-against, over arbitrary improving timelines, when

- the order is urgent, asap or stat, or states a reason other than the infection or
  spinal pain (not routine follow-up of the infection);
- the patient is younger than min_age_years (18): no card at all;
- an immunosuppression Condition is active (transplant, neutropenia, immunodeficiency,
  HIV disease, long-term systemic steroids), whatever its date;
- a CT is ordered after spine surgery in the episode.

And on a support or urgent card, a study that cannot answer the question (the level
missed, no contrast for a soft-tissue question, a CT for a new deficit) is never rated
appropriate.

Each case starts from a patient the engine would advise against, checked first, so that
removing the check under test makes the property fail.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service.cards import CardContext, render_response
from cds_service.engine import Recommendation, RuleSettings, assess
from fhir_mappers.model import (
    ConditionCategory,
    Modality,
    OrderReason,
    PatientData,
    SpineSurgery,
)
from tests.engine.builders import (
    T0,
    complication,
    condition,
    crp,
    day,
    neuro,
    nvo,
    order,
    pain,
)
from tests.test_safety_properties_revised import advised_against, evaluate, improving

PROPERTY_SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
OTHER_REASONS = st.sampled_from(
    [
        OrderReason(name="fall at home", routine=False),
        OrderReason(name="staging of a lung cancer", routine=False),
        OrderReason(name=None, routine=None, reference="Condition/not-in-the-record"),
    ]
)


@PROPERTY_SETTINGS
@given(improving(), st.sampled_from(["urgent", "asap", "stat"]))
def test_an_urgent_order_never_gives_advise_against(case: tuple[list, int], priority: str) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    a = evaluate(data, [replace(order(order_day), priority=priority)])
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(improving(), OTHER_REASONS)
def test_an_order_for_another_reason_never_gives_advise_against(
    case: tuple[list, int], reason: OrderReason
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    a = evaluate(data, [replace(order(order_day), reasons=(reason,))])
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


REGIONS = ["cervical", "thoracic", "lumbar", "spine"]
CONTRASTS = ["without", "with", "without-and-with", None]


@PROPERTY_SETTINGS
@given(
    st.sampled_from(["cervical", "thoracic", "lumbar", None]),
    st.sampled_from(REGIONS),
    st.sampled_from([Modality.MRI, Modality.CT]),
    st.sampled_from(CONTRASTS),
    st.sampled_from(["neuro", "plateau", "abscess"]),
)
def test_a_study_that_cannot_answer_the_question_is_never_rated_appropriate(
    infected: str | None, ordered: str, modality: Modality, contrast: str | None, flag: str
) -> None:
    conds = [nvo(region=infected)]
    data = [crp(0, 120), crp(14, 110), crp(28, 105), pain(0, 7), pain(28, 6)]
    if flag == "neuro":
        conds.append(neuro(onset=20))
    elif flag == "abscess":
        conds.append(complication(onset=20))
    the_order = replace(order(29, modality=modality, region=ordered), contrast=contrast)
    a = evaluate(data, [the_order], conds)
    assert a.recommendation in (Recommendation.SUPPORT, Recommendation.SUPPORT_URGENT)
    response = render_response(a, CardContext(patient_id="p1"))
    rated = [
        e["valueCodeableConcept"]["coding"][0]["code"]
        for act in response.get("systemActions", [])
        for e in act["resource"]["extension"]
        if e["url"].endswith("pama-rating")
    ]
    answers = (
        (ordered == "spine" or infected is None or ordered == infected)
        and contrast != "without"
        and not (modality is Modality.CT and contrast is None)  # may be one without
        and not (a.recommendation is Recommendation.SUPPORT_URGENT and modality is Modality.CT)
    )
    at_level = ordered == "spine" or infected is None or ordered == infected
    # an emergency MRI of the right level without gadolinium still shows cord compression:
    # not rated rather than "not appropriate" (an outside neuroradiology reading)
    unrated = (
        a.recommendation is Recommendation.SUPPORT_URGENT
        and modality is Modality.MRI
        and at_level
        and contrast == "without"
    )
    # a CT that can answer a soft-tissue question, where the card prefers MRI with
    # gadolinium to it: not rated either (an outside review, 2026-12-07)
    ct_second = answers and modality is Modality.CT
    assert "appropriate" not in rated or answers
    if answers:
        assert rated == ([] if ct_second else ["appropriate"])
    else:
        assert rated == ([] if unrated else ["not-appropriate"])


@PROPERTY_SETTINGS
@given(improving(), st.integers(0, 17 * 365 + 4))
def test_a_child_never_gets_advise_against(case: tuple[list, int], days_old: int) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    born = T0 + timedelta(days=order_day) - timedelta(days=days_old)
    patient = PatientData(conditions=(nvo(),), measurements=tuple(data), birth_date=born)
    a = assess([order(order_day)], patient, RuleSettings(), datetime(2030, 1, 1, tzinfo=UTC))
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(
    improving(),
    st.sampled_from(["Z94.0", "D70.9", "D84.821", "B20", "Z79.52"]),
    st.integers(-5000, 40),
)
def test_immunosuppression_never_gives_advise_against(
    case: tuple[list, int], code: str, onset: int
) -> None:
    data, order_day = case
    assume(advised_against(data, order_day))
    host = condition(code, ConditionCategory.IMMUNOSUPPRESSION, onset=onset)
    a = evaluate(data, [order(order_day)], [nvo(), host])
    assert a.recommendation is not Recommendation.ADVISE_AGAINST


@PROPERTY_SETTINGS
@given(improving(), st.integers(0, 45))
def test_a_ct_after_spine_surgery_never_gives_advise_against(
    case: tuple[list, int], surgery_day: int
) -> None:
    data, order_day = case
    ct = replace(order(order_day), modality=Modality.CT)
    plain = PatientData(conditions=(nvo(),), measurements=tuple(data))
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assume(assess([ct], plain, RuleSettings(), now).recommendation is Recommendation.ADVISE_AGAINST)
    done = SpineSurgery("Procedure/fusion", "lumbar fusion", day(surgery_day))
    after = replace(plain, spine_surgery=(done,))
    assert assess([ct], after, RuleSettings(), now).recommendation is not (
        Recommendation.ADVISE_AGAINST
    )
