"""The tools' FHIR endpoint: a 404 for the patient is told apart from a wrong base URL.

Both answer 404 to ``Patient/<id>``; only the server's ``metadata`` (a CapabilityStatement
at a FHIR base URL) says which. The exchanges are stood in for, no socket is opened.
"""

from __future__ import annotations

from typing import Any

import pytest

from cds_service.tools.errors import FhirServerError
from cds_service.tools.fhir_http import FhirEndpoint

BASE = "http://127.0.0.1:18699/wrong"
CAPABILITY = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
NOT_FOUND = {"resourceType": "OperationOutcome", "issue": []}


def refusal(metadata: Any) -> str:
    """The error read_patient raises when Patient/p1 is 404 and metadata is ``metadata``
    (a (status, body) pair, or an exception to raise)."""

    def send(method: str, url: str, body: Any = None) -> tuple[int, Any]:
        if url.endswith("/metadata"):
            if isinstance(metadata, Exception):
                raise metadata
            return metadata  # type: ignore[no-any-return]
        return 404, NOT_FOUND

    with FhirEndpoint(BASE) as fhir:
        fhir._send = send  # type: ignore[method-assign]
        with pytest.raises(FhirServerError) as raised:
            fhir.read_patient("p1")
    return str(raised.value)


def test_a_fhir_server_without_the_patient_says_load_it() -> None:
    said = refusal((200, CAPABILITY))
    assert said.startswith(f"patient 'p1' was not found on the FHIR server at {BASE} (404)")
    assert "load it first" in said


@pytest.mark.parametrize(
    ("metadata", "answered"),
    [((404, NOT_FOUND), "404"), ((200, "<html>"), "200 without a CapabilityStatement")],
)
def test_a_base_url_that_is_no_fhir_server_says_so_not_that_the_patient_is_missing(
    metadata: tuple[int, Any], answered: str
) -> None:
    said = refusal(metadata)
    assert said.startswith(f"{BASE} is not a FHIR server's base URL: GET {BASE}/metadata")
    assert f"answered {answered}" in said and "check --fhir-server" in said
    assert "load it first" not in said and "not found" not in said


def test_when_metadata_cannot_tell_both_causes_are_named() -> None:
    said = refusal(FhirServerError("needs an access token"))
    assert "either the patient is not there" in said
    assert "--fhir-server is not the FHIR base URL" in said
