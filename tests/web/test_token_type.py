"""``fhirAuthorization.token_type`` is "Bearer" in any letter case (RFC 6749 section 5.1:
the token type is case-insensitive); any other type is refused, naming the field.
(tests/integration/test_fhir_calls_of_a_request.py: the token goes to the FHIR server
as "Bearer" whatever the case it came in.)"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import EMPTY_PREFETCH, SIGN_ID, hook_request, service_request

FIELD = "$.fhirAuthorization.token_type"


def _call(client: FlaskClient, token_type: Any) -> Any:
    body = hook_request(
        "order-sign",
        [service_request("o1")],
        prefetch=dict(EMPTY_PREFETCH),
        fhir_server="http://127.0.0.1:9/fhir",  # never asked: prefetch says "none found"
        access_token="a-token",
    )
    body["fhirAuthorization"]["token_type"] = token_type
    return client.post(f"/cds-services/{SIGN_ID}", json=body)


@pytest.mark.parametrize("token_type", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_in_any_case_is_taken(client: FlaskClient, token_type: str) -> None:
    response = _call(client, token_type)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("token_type", ["MAC", "DPoP", "Bearer ", "bearer\n", "Bearers", "", 1])
def test_other_token_types_are_refused_naming_the_field(
    client: FlaskClient, token_type: Any
) -> None:
    response = _call(client, token_type)
    assert response.status_code == 400
    details = {d["path"]: d["message"] for d in response.get_json()["details"]}
    assert FIELD in details, details
