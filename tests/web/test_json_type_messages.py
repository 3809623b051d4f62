"""A 400 names JSON's types, and says what to do about a null member.

An outside review, as an EHR integrator: the answers said "expected type 'object', got
NoneType", "got str", "got list", Python's names, which a client developer in another
language must translate; and a null where the spec has a member left out (some clients
write an absent optional member that way) was refused without saying to leave it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request

HOOK = f"/cds-services/{SELECT_ID}"
PYTHON_NAMES = ("NoneType", "str", "list", "dict", "int", "float", "bool")
Change = Callable[[dict[str, Any]], None]


def body() -> dict[str, Any]:
    return hook_request(
        "order-select",
        [service_request("o1")],
        prefetch=dict(EMPTY_PREFETCH),
        fhir_server="https://fhir.example.org/r4",
        access_token="token-1",
    )


def _set(*path: str | int, value: object) -> Change:
    def change(sent: dict[str, Any]) -> None:
        target: Any = sent
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        (
            _set("prefetch", value=None),
            "$.prefetch",
            "null is not allowed here: leave the member out (or send an object)",
        ),
        (
            _set("fhirAuthorization", value=None),
            "$.fhirAuthorization",
            "null is not allowed here: leave the member out (or send an object)",
        ),
        (
            _set("context", "encounterId", value=None),
            "$.context.encounterId",
            "null is not allowed here: leave the member out (or send a string)",
        ),
        (
            _set("context", "patientId", value=None),
            "$.context.patientId",
            "null is not allowed here: the member is required, as a string",
        ),
        (
            _set("context", value=None),
            "$.context",
            "null is not allowed here: the member is required, as an object",
        ),
        (
            _set("fhirAuthorization", "expires_in", value=None),
            "$.fhirAuthorization.expires_in",
            "null is not allowed here: the member is required, as an integer",
        ),
        (
            _set("context", "selections", 0, value=None),
            "$.context.selections[0]",
            "null is not allowed here: send a string",
        ),
        (
            _set("context", "draftOrders", value=[]),
            "$.context.draftOrders",
            "expected an object, got an array",
        ),
        (
            _set("fhirAuthorization", "expires_in", value="300"),
            "$.fhirAuthorization.expires_in",
            "expected an integer, got a string",
        ),
        (
            _set("fhirAuthorization", "expires_in", value=True),
            "$.fhirAuthorization.expires_in",
            "expected an integer, got a boolean",
        ),
        (
            _set("prefetch", "crp", value="none"),
            "$.prefetch.crp",
            "expected an object or null, got a string",
        ),
        (
            _set("extension", value=1.5),
            "$.extension",
            "expected an object, got a number",
        ),
    ],
)
def test_a_wrong_type_is_named_as_json_names_it(
    client: FlaskClient, change: Change, path: str, message: str
) -> None:
    sent = body()
    change(sent)
    answer = client.post(HOOK, json=sent)
    assert answer.status_code == 400
    details = answer.get_json()["details"]
    assert {"path": path, "message": message} in details, details
    for detail in details:
        assert not any(name in detail["message"].split() for name in PYTHON_NAMES), detail


def test_a_body_that_is_no_object_is_named_as_json_names_it(client: FlaskClient) -> None:
    answer = client.post(HOOK, data=b"[1, 2]", headers={"Content-Type": "application/json"})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "expected a JSON object at $, got an array"
