"""A number beyond a double's range anywhere the typed hook-body decode keeps as raw
bytes (the envelope's members, the prefetch keys other than Observation searches) gets
the careful parse's 400, never a 500.

msgspec skips such a number inside a raw member without judging it; orjson then refuses
it when the member is read. The typed decode must leave those bodies to the careful
parse (``jsonbody.parse_json_object``), which says what is wrong and where.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cds_service.runtime import Runtime
from tests.builders import SELECT_ID, bundle, hook_request, service_request

MARK = '"__number__"'
NUMBERS = ["1e400", "-1e999", "[1e400]", "1" + "0" * 400]


def _body() -> dict[str, Any]:
    order = service_request("o1")
    body = hook_request(
        "order-select",
        [order],
        prefetch={
            "patient": {"resourceType": "Patient", "id": "p1"},
            "conditions": bundle({"resourceType": "Condition", "id": "c1"}),
            "crp": None,
            "esr": None,
            "pain": None,
        },
        fhir_server="https://ehr.example.org/fhir",
        access_token="a-token",
    )
    body["extension"] = {}
    return body


def _place_in_order(b: dict[str, Any]) -> None:
    order = b["context"]["draftOrders"]["entry"][0]["resource"]
    order["extension"] = [{"url": "http://x", "valueDecimal": "__number__"}]


# Where the number goes: each member the typed decode reads as raw bytes.
PLACES: dict[str, Any] = {
    "draftOrders": _place_in_order,
    "context": lambda b: b["context"].update({"x-number": "__number__"}),
    "fhirAuthorization": lambda b: b["fhirAuthorization"].update({"expires_in": "__number__"}),
    "extension": lambda b: b["extension"].update({"x-number": "__number__"}),
    "hook": lambda b: b.update({"hook": "__number__"}),
    "fhirServer": lambda b: b.update({"fhirServer": "__number__"}),
    "patient prefetch": lambda b: b["prefetch"]["patient"].update({"x": "__number__"}),
    "conditions prefetch": lambda b: b["prefetch"]["conditions"].update({"total": "__number__"}),
}


def _raw(place: str, number: str) -> bytes:
    body = _body()
    PLACES[place](body)
    text = json.dumps(body)
    assert text.count(MARK) == 1
    return text.replace(MARK, number).encode()


@pytest.mark.parametrize("place", sorted(PLACES))
def test_the_body_takes_the_typed_decode_with_an_ordinary_number(app: Flask, place: str) -> None:
    """So the refusals below are the typed decode's business, not the careful parse's."""
    runtime: Runtime = app.extensions["spine_cds"]
    decoded = runtime.hook_decoders[SELECT_ID].decode(_raw(place, "1.5"), 64)
    assert decoded is not None


@pytest.mark.parametrize("number", NUMBERS, ids=["1e400", "-1e999", "list", "400-digits"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_number_beyond_a_double_is_a_400_that_says_where(
    client: FlaskClient, place: str, number: str
) -> None:
    raw = _raw(place, number)
    response = client.post(f"/cds-services/{SELECT_ID}", data=raw, content_type="application/json")
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_json"
    assert "number is infinity when parsed as double" in body["message"]
    # where: the character of the body at which the number starts
    where = raw.index(number.lstrip("[").encode())
    assert f"(char {where})" in body["message"], body["message"]
