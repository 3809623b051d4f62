"""A 400 for a selection that names no draft order says what in draftOrders is at fault.

An outside integration review sent a draft order without an id, and a draftOrders
Bundle without entries, and was told only "selections must name orders in draftOrders"
at ``$.context.selections[0]``. The draft order's id (or the missing entries) is named
first, with what was sent there and what was expected. In process; the same calls
through gunicorn are in tests/integration/test_draft_order_status_and_ids.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import SELECT_ID, hook_request, service_request


def _id(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(draft_orders: dict[str, Any]) -> None:
        draft_orders["entry"][0]["resource"]["id"] = value

    return change


def _entries(draft_orders: dict[str, Any]) -> None:
    draft_orders["entry"] = []


@pytest.mark.parametrize(
    ("change", "path", "said"),
    [
        (_id(7), "$.context.draftOrders.entry[0].resource.id", "got an integer: expected"),
        (_id(""), "$.context.draftOrders.entry[0].resource.id", "got an empty string: expected"),
        (_entries, "$.context.draftOrders.entry", "got an empty array: expected the draft orders"),
    ],
)
def test_the_draft_orders_fault_is_named_before_the_selection(
    client: FlaskClient, change: Callable[[dict[str, Any]], None], path: str, said: str
) -> None:
    body = hook_request("order-select", [service_request("o1")], ["ServiceRequest/o1"])
    change(body["context"]["draftOrders"])
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 400
    first, selection = answer.get_json()["details"]
    assert first["path"] == path
    assert first["message"].startswith(said), first
    assert selection["path"] == "$.context.selections[0]"
