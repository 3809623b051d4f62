"""The safety property for the imaging revision (clinical-rules.md, "Imaging",
2026-12-06): never advise-against, over arbitrary improving timelines, when

- the order is urgent, asap or stat, or states a reason other than the infection or
  spinal pain (not routine follow-up of the infection).

Each case starts from a patient the engine would advise against, checked first, so that
removing the check under test makes the property fail.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds_service.engine import Recommendation
from fhir_mappers.model import OrderReason
from tests.engine.builders import order
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
