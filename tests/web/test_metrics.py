"""Prometheus metrics: counts by service and status, decisions, no unbounded labels."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.builders import (
    EMPTY_PREFETCH,
    SELECT_ID,
    hook_request,
    medication_request,
    service_request,
)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample line of the exposition, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_and_statuses_are_counted(client: FlaskClient) -> None:
    ok = hook_request("order-select", [medication_request("m1")])
    for _ in range(3):
        assert client.post(f"/cds-services/{SELECT_ID}", json=ok).status_code == 200
    assert client.post(f"/cds-services/{SELECT_ID}", json={"hook": 1}).status_code == 400
    text = client.get("/metrics").get_data(as_text=True)
    total = "spine_cds_requests_total"
    assert sample(text, total, endpoint="hooks.invoke", service=SELECT_ID, status="200") == 3
    assert sample(text, total, endpoint="hooks.invoke", service=SELECT_ID, status="400") == 1
    assert sample(text, "spine_cds_request_duration_seconds_count", endpoint="hooks.invoke") == 4


def test_unknown_service_ids_do_not_become_labels(client: FlaskClient) -> None:
    for i in range(5):
        client.post(f"/cds-services/made-up-{i}", json={})
    text = client.get("/metrics").get_data(as_text=True)
    assert "made-up" not in text
    assert sample(text, "spine_cds_requests_total", service="-", status="404") == 5


def test_decisions_are_counted(client: FlaskClient) -> None:
    body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
    client.post(f"/cds-services/{SELECT_ID}", json=body)
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        sample(text, "spine_cds_decisions_total", service=SELECT_ID, decision="not-applicable") == 1
    )


def test_fhir_failures_are_counted(client: FlaskClient) -> None:
    body = hook_request("order-select", [service_request("o1")])  # no prefetch, no fhirServer
    assert client.post(f"/cds-services/{SELECT_ID}", json=body).status_code == 412
    text = client.get("/metrics").get_data(as_text=True)
    assert sample(text, "spine_cds_fhir_fetch_failures_total", key="crp") == 1


def test_content_type_names_its_charset_once(client: FlaskClient) -> None:
    content_type = client.get("/metrics").headers["Content-Type"]
    assert content_type.startswith("text/plain; version=")
    assert content_type.lower().count("charset=") == 1, content_type
