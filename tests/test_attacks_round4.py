"""The attack suite, round four: values at the edges of what the wire can carry.

Each case once answered 500 or was read as something it was not. Sent through the whole
app (routing, checks, mappers, rules, cards, audit) as an EHR sends them; the worker's
own limits (a client that stops sending) are held through gunicorn in
``tests/shell/test_worker.py``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from flask.testing import FlaskClient

from cds_service.discovery import load_discovery
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
from cds_service.examples.stored import load_example
from tests.builders import SELECT_ID
from tests.support.ehr_calls import prefetched

ORDER_DATE = date(2026, 12, 6)


def _improving_body() -> dict[str, Any]:
    example = load_example("e01-improving", ORDER_DATE)
    body = build_request("order-select", str(uuid.uuid4()), example.patient_id, example.draft_order)
    (service,) = (s for s in load_discovery().services.values() if s.id == SELECT_ID)
    body["prefetch"] = local_prefetch(
        service.prefetch, body["context"], bundle_resources(example.bundle)
    )
    return body


@pytest.mark.parametrize(
    "placeholder", ["0001-01-01", "0001", "9999-12-31", "9999-12-31T23:59:59Z"]
)
@pytest.mark.parametrize("element", ["onsetDateTime", "recordedDate"])
def test_placeholder_dates_on_a_condition_are_answered_not_a_crash(
    client: FlaskClient, element: str, placeholder: str
) -> None:
    """EHRs write 0001-01-01 and 9999-12-31 for "unknown" and "open-ended"."""
    body = _improving_body()
    for condition in prefetched(body, "Condition"):
        condition[element] = placeholder
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize("placeholder", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_a_placeholder_date_on_an_observation_is_answered_not_a_crash(
    client: FlaskClient, placeholder: str
) -> None:
    body = _improving_body()
    observations = prefetched(body, "Observation")
    observations[-1]["effectiveDateTime"] = placeholder
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize("field", ["patientId", "userId"])
def test_an_identifier_with_a_trailing_newline_is_refused(client: FlaskClient, field: str) -> None:
    """Python's ``$`` matches before a final newline; JSON Schema's does not. Such a
    patient id once passed, and every prefetched resource then read as another
    patient's: no card, and no word why."""
    body = _improving_body()
    body["context"][field] += "\n"
    answer = client.post(f"/cds-services/{SELECT_ID}", json=body)
    assert answer.status_code == 400
    (problem,) = answer.get_json()["details"]
    assert problem["path"] == f"$.context.{field}"
    assert "expected a string matching" in problem["message"]


def test_answers_over_https_ask_browsers_to_keep_to_https(client: FlaskClient) -> None:
    secure = client.get("/health", base_url="https://cds.example.org")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    plain = client.get("/health")  # over http the header means nothing (RFC 6797)
    assert "Strict-Transport-Security" not in plain.headers
