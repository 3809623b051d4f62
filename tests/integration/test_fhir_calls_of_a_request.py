"""What a hook call sends to the FHIR server, and what the service logs of it, through the
real service (gunicorn, development mode) and a real HTTP FHIR server on 127.0.0.1
(tests/support/faulty_fhir_server.py, which records each request it gets)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID, hook_request, service_request
from tests.support.faulty_fhir_server import FaultyFhirServer

pytestmark = pytest.mark.integration

TOKEN = "tok-fhir-calls-5c1e07"  # synthetic


@pytest.fixture(scope="module")
def fhir() -> Iterator[FaultyFhirServer]:
    with FaultyFhirServer() as server:
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("fhir-calls")
    env = {"SPINE_CDS_DATABASE_PATH": str(folder / "db.sqlite3")}
    with ServiceProcess(env=env, workers=1, log_path=folder / "service.log") as running:
        yield running


def call(service: ServiceProcess, body: dict[str, Any]) -> requests.Response:
    return requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=10)


def fetching(fhir_server: str, patient_id: str, token_type: str = "Bearer") -> dict[str, Any]:
    """An order-select call with no prefetch: everything is fetched from ``fhir_server``."""
    body = hook_request(
        "order-select",
        [service_request("o1", patient_id=patient_id)],
        patient_id=patient_id,
        fhir_server=fhir_server,
        access_token=TOKEN,
    )
    body["fhirAuthorization"]["token_type"] = token_type
    return body


def test_a_lower_case_token_type_is_sent_on_as_bearer(
    service: ServiceProcess, fhir: FaultyFhirServer
) -> None:
    patient = "token-type-patient"
    response = call(service, fetching(fhir.url("ok"), patient, token_type="bearer"))
    assert response.status_code in (200, 412), response.text
    sent = [seen.authorization for seen in fhir.seen if patient in seen.path]
    assert sent, service.log_tail()
    assert set(sent) == {f"Bearer {TOKEN}"}


def lines_for(service: ServiceProcess, request_id: str) -> list[str]:
    """The log lines written for one request, once its request line is written (the
    worker writes it as it answers: give it a moment)."""
    assert service.log_path is not None
    deadline = time.monotonic() + 5
    while True:
        text = service.log_path.read_text(encoding="utf-8", errors="replace")
        found = [line for line in text.splitlines() if f"request_id={request_id}:" in line]
        if any("request method=" in line for line in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_a_failed_fetch_is_logged_with_the_calls_request_id(
    service: ServiceProcess, fhir: FaultyFhirServer
) -> None:
    response = call(service, fetching(fhir.url("500"), "fetch-fails-patient"))
    assert response.status_code == 412, response.text
    request_id = response.headers["X-Request-Id"]
    failed = [line for line in lines_for(service, request_id) if "FHIR fetch failed" in line]
    keys = {item["key"] for item in response.json()["missing"]}
    assert len(failed) >= len(keys) >= 4, service.log_tail()
    assert all("status=500" in line and "WARNING" in line for line in failed), failed
    anonymous = [
        line
        for line in service.log_tail(1_000_000).splitlines()
        if "FHIR fetch failed" in line and "request_id=-:" in line
    ]
    assert anonymous == []
