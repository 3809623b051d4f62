"""Which spine orders are orders being placed, read from their status.

order-sign may carry re-signed orders that are no longer drafts (CDS Hooks order-sign
1.0, "Workflow"), so an active or on-hold order is still assessed; a revoked,
entered-in-error or completed one is not being placed (FHIR R4 request-status) and an
outside review saw one get "Remove the ... order" and a not-appropriate rating.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.valuesets import load_value_sets
from fhir_mappers.orders import NOT_BEING_PLACED, map_orders
from fhir_mappers.valuesets import ValueSets
from tests.builders import bundle, service_request


@pytest.fixture(scope="module")
def vs() -> ValueSets:
    return load_value_sets()


def _spine(order_id: str, status: Any) -> dict[str, Any]:
    """A lumbar MRI order with ``status`` (None: without one)."""
    order = service_request(order_id)
    if status is None:
        del order["status"]
    else:
        order["status"] = status
    return order


@pytest.mark.parametrize("status", sorted(NOT_BEING_PLACED))
def test_an_order_not_being_placed_is_not_in_question_and_says_its_status(
    vs: ValueSets, status: str
) -> None:
    found = map_orders(bundle(_spine("o1", status)), None, vs)
    assert found.orders == ()
    (left,) = found.not_placed
    assert left.reference == "ServiceRequest/o1"
    assert left.status == status
    assert f"status {status!r}" in left.reason and "not an order being placed" in left.reason
    # nothing in it was unreadable: it is no issue the card would count as not used
    assert found.issues == ()


@pytest.mark.parametrize("status", ["draft", "active", "on-hold", "unknown", None, ["draft"], 7])
def test_a_draft_a_re_signed_order_and_an_unclear_status_are_still_assessed(
    vs: ValueSets, status: Any
) -> None:
    """A status the service cannot read (missing, not a string) is no reason to go quiet."""
    found = map_orders(bundle(_spine("o1", status)), None, vs)
    assert [o.reference for o in found.orders] == ["ServiceRequest/o1"]
    assert found.not_placed == ()


def test_selections_still_narrow_the_orders_and_a_revoked_sibling_is_left_out(
    vs: ValueSets,
) -> None:
    drafts = bundle(_spine("kept", "active"), _spine("gone", "revoked"), _spine("other", "draft"))
    found = map_orders(drafts, ["ServiceRequest/kept", "ServiceRequest/gone"], vs)
    assert [o.reference for o in found.orders] == ["ServiceRequest/kept"]
    assert [i.reference for i in found.not_placed] == ["ServiceRequest/gone"]
