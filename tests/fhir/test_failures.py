"""The words of a FHIR failure: the server's codes are passed on, its free text never
(an OperationOutcome's diagnostics may echo the query, and so the patient id)."""

from __future__ import annotations

import json

import pytest

from cds_service.fhir.failures import OUTCOME_BYTES, bearer_error, outcome_code, status_reason


def outcome(code: object, diagnostics: str = "Observation?patient=pat-77") -> bytes:
    issue = {"severity": "error", "code": code, "diagnostics": diagnostics}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


def test_the_first_issue_code_of_a_small_outcome_is_named() -> None:
    assert status_reason(400, "", outcome("not-supported")) == (
        "FHIR server answered 400; OperationOutcome issue code: not-supported"
    )
    assert status_reason(503, "", outcome("transient")) == (
        "FHIR server answered 503 (server error); OperationOutcome issue code: transient"
    )


def test_a_refused_search_names_its_result_parameters_never_its_values() -> None:
    url = "https://ehr.example.org/fhir/Observation?patient=pat-77&code=x&_sort=-date&_count=100"
    assert status_reason(400, "", outcome("not-supported"), url) == (
        "FHIR server answered 400; OperationOutcome issue code: not-supported; "
        "the search used _sort, _count, which the server must support or ignore"
    )
    # Only a 400 says so, and only for the result parameters the service itself sends.
    assert status_reason(404, "", b"", url) == "FHIR server answered 404 (not found)"
    other = "https://ehr.example.org/fhir/Observation?patient=pat-77&_pat-77=1"
    assert status_reason(400, "", b"", other) == "FHIR server answered 400"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>Bad Request</html>",
        b"[1]",
        json.dumps({"resourceType": "Bundle", "issue": [{"code": "invalid"}]}).encode(),
        json.dumps({"resourceType": "OperationOutcome", "issue": []}).encode(),
        outcome("Patient pat-77 not found"),  # not a code token: could hold anything
        outcome("john-smith"),  # a word, but no FHIR issue type: may be a name
        outcome("not-supported\n"),  # an issue type with a line end after it
        outcome(7),
        outcome("not-supported", "x" * OUTCOME_BYTES),  # past the small read
    ],
)
def test_anything_but_a_small_outcome_with_a_code_token_adds_nothing(body: bytes) -> None:
    assert outcome_code(body) is None
    assert status_reason(400, "", body) == "FHIR server answered 400"


def test_an_expired_token_is_told_from_a_missing_one() -> None:
    expired = 'Bearer realm="fhir", error="invalid_token", error_description="expired"'
    assert status_reason(401, expired) == (
        "FHIR server answered 401: access token refused as invalid or expired (invalid_token)"
    )
    for other in ("", "Bearer", 'Bearer error="insufficient_scope"'):
        assert (
            status_reason(401, other)
            == "FHIR server answered 401 (access token missing or refused)"
        )
    # only a 401 reads the header
    assert status_reason(403, expired) == "FHIR server answered 403 (access not allowed)"


def test_bearer_error_reads_the_error_parameter_only() -> None:
    assert bearer_error('Bearer error="invalid_token"') == "invalid_token"
    assert bearer_error("Bearer error=invalid_token") == "invalid_token"
    assert bearer_error('Bearer error_description="error=invalid_token"') is None
    assert bearer_error('Bearer error_uri="https://x.invalid/"') is None
    assert bearer_error("Basic") is None
