"""A hook call may hold at most 200 draft orders (``context.draftOrders.entry``).

An attack review posted 16,000 draft spine MRIs, all selected, in 4 MB (under
``max_body_bytes``): the cards' work grew with the square of their number and held a
worker for a minute. The orders of one order-select or order-sign are far fewer, so
more than 200 is a 400 that names the field and the limit, before any work is done.
"""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.builders import EMPTY_PREFETCH, SELECT_ID, SIGN_ID, hook_request, service_request

FIELD = "$.context.draftOrders.entry"
LIMIT = 200


def _call(client: FlaskClient, hook: str, count: int) -> tuple[int, dict[str, object]]:
    orders = [service_request(f"o{i}") for i in range(count)]
    selections = [f"ServiceRequest/{order['id']}" for order in orders]
    body = hook_request(
        hook,
        orders,
        selections=selections if hook == "order-select" else None,
        prefetch=dict(EMPTY_PREFETCH),
    )
    service = SELECT_ID if hook == "order-select" else SIGN_ID
    response = client.post(f"/cds-services/{service}", json=body)
    return response.status_code, response.get_json()


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_200_draft_orders_are_answered(client: FlaskClient, hook: str) -> None:
    status, answer = _call(client, hook, LIMIT)
    assert status == 200, answer
    assert "cards" in answer


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
def test_201_draft_orders_are_refused_naming_the_field_and_the_limit(
    client: FlaskClient, hook: str
) -> None:
    status, answer = _call(client, hook, LIMIT + 1)
    assert status == 400, answer
    assert answer["error"] == "invalid_request"
    details = answer["details"]
    assert isinstance(details, list)
    assert [d["path"] for d in details] == [FIELD], details
    assert "at most 200 draft orders" in details[0]["message"], details
