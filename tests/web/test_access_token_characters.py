"""``fhirAuthorization.access_token`` must be a string an HTTP header can carry: visible
ASCII characters (RFC 6750's ``b64token`` and any other printable ASCII token).

An attack review sent tokens with CR/LF (requests refused the header, and the 412 blamed
the FHIR server's connection), a NUL and non-ASCII letters (sent as they were: a server
or proxy may cut such a header at the NUL or read it in another charset). Each is now a
400 naming the field and what was expected, before any FHIR server is asked, and the
400 never repeats the token. A token of visible ASCII goes out exactly as it came.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.builders import SIGN_ID, hook_request, service_request
from tests.support.faulty_fhir_server import FaultyFhirServer

FIELD = "$.fhirAuthorization.access_token"


@pytest.fixture
def fhir() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as server:
        yield server


def _post(client: FlaskClient, fhir: FaultyFhirServer, token: str) -> tuple[int, Any]:
    body = hook_request(
        "order-sign", [service_request("o1")], fhir_server=fhir.url("ok"), access_token=token
    )
    response = client.post(f"/cds-services/{SIGN_ID}", json=body)
    return response.status_code, response.get_json()


@pytest.mark.parametrize(
    "token",
    [
        "a\r\nX-Injected: 1",
        "a\nb",
        "token-with-a-newline-at-its-end\n",
        "tok\x00en",
        "é-unicode-token",
        "two words",
        "tab\tinside",
        " leading-space",
        "del\x7f",
    ],
)
def test_a_token_a_header_cannot_carry_is_refused_naming_the_field(
    client: FlaskClient, fhir: FaultyFhirServer, token: str
) -> None:
    status, answer = _post(client, fhir, token)
    assert status == 400, answer
    details = {d["path"]: d["message"] for d in answer["details"]}
    assert list(details) == [FIELD], details
    assert "visible ASCII characters" in details[FIELD]
    assert "bearer token" in details[FIELD]
    shown = str(answer)
    assert all(part not in shown for part in token.split() if len(part) > 2), shown
    assert fhir.seen == []  # refused before any FHIR server was asked


def test_an_empty_token_is_still_said_to_be_empty(
    client: FlaskClient, fhir: FaultyFhirServer
) -> None:
    """(hook_request leaves fhirAuthorization out for an empty token: set by hand.)"""
    body = hook_request(
        "order-sign", [service_request("o1")], fhir_server=fhir.url("ok"), access_token="x"
    )
    body["fhirAuthorization"]["access_token"] = ""
    answer = client.post(f"/cds-services/{SIGN_ID}", json=body).get_json()
    assert [(d["path"], d["message"]) for d in answer["details"]] == [
        (FIELD, "expected a non-empty string")
    ]


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",  # a JWT
        "abc-._~+/xyz==",  # RFC 6750 b64token
        "!#$%&'()*,:;<>?@[]^`{|}\"\\",  # the rest of visible ASCII
    ],
)
def test_a_token_of_visible_ascii_goes_out_as_it_came(
    client: FlaskClient, fhir: FaultyFhirServer, token: str
) -> None:
    status, answer = _post(client, fhir, token)
    assert status == 200, answer
    assert fhir.seen, "the service fetched nothing"
    assert {seen.authorization for seen in fhir.seen} == {f"Bearer {token}"}
