"""A fresh service under gunicorn: warm before its first call, and a call that waits on
a slow FHIR server does not hold up the calls that need none (issue 27).

The real thing: ``spine-cds serve`` (gunicorn, the default worker settings) against the
Node FHIR test server, and tests/support/faulty_fhir_server.py where a server must hang
or be counted. How fast the first call is against later ones is a benchmark figure
(bench/run.py, "first call"), not asserted here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import requests

from cds_service.examples import load_example
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import SELECT_ID
from tests.support.ehr_calls import order_request
from tests.support.faulty_fhir_server import FaultyFhirServer
from tests.support.jwks_server import JwksServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "tok-warm-start-5d20"  # synthetic; the test server only compares it
EXAMPLE = load_example("e01-improving", date.today())


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as server:
        server.load_bundle(EXAMPLE.bundle)
        yield server


def fetching_call(fhir_server: str) -> dict[str, Any]:
    return order_request(
        "order-select", EXAMPLE.patient_id, EXAMPLE.draft_order, None, fhir_server, TOKEN
    )


def recommendation(response: requests.Response) -> str | None:
    cards = response.json()["cards"]
    value = cards[0]["extension"]["spine-cds-assessment"]["recommendation"] if cards else None
    return value if isinstance(value, str) else None


def test_the_first_calls_of_a_fresh_service_fetch_and_decide(
    fhir: FhirTestServer, tmp_path: Path
) -> None:
    """The issue: on a busy machine the very first call got a 412 with no FHIR delay.
    Each worker's first fetching call (each on a new connection) gets its card."""
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, workers=2, log_path=tmp_path / "service.log") as service:
        url = f"{service.url}/cds-services/{SELECT_ID}"
        for _ in range(4):
            response = requests.post(url, json=fetching_call(fhir.base_url), timeout=10)
            assert response.status_code == 200, response.text
            assert recommendation(response) == EXAMPLE.expected
        ready = requests.get(service.url + "/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["checks"]["warmUp"] == "ok"


def test_every_worker_connects_to_the_configured_fhir_server_before_it_serves(
    tmp_path: Path,
) -> None:
    with FaultyFhirServer() as configured, JwksServer() as keys:
        keys.publish({"keys": []})  # /readyz fetches the client's key set once
        clients = tmp_path / "clients.json"
        entry = {
            "iss": "https://ehr.example.org",
            "jwks_url": keys.url(),
            "fhir_servers": [configured.url("ok")],
        }
        clients.write_text(json.dumps([entry]), encoding="utf-8")
        env = {
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        }
        with ServiceProcess(env=env, args=(), workers=2) as service:
            # /health answered: at least one worker has loaded, so has warmed up.
            assert any(seen.path == "/ok/metadata" for seen in configured.seen)
            deadline = time.monotonic() + 20
            while len(configured.seen) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [seen.path for seen in configured.seen] == ["/ok/metadata"] * 2
            assert all(seen.authorization is None for seen in configured.seen)
            assert requests.get(service.url + "/readyz", timeout=5).status_code == 200


def test_a_listed_fhir_server_that_drips_its_metadata_cannot_keep_the_workers_out(
    tmp_path: Path,
) -> None:
    """An attack review: a listed server whose metadata came a byte every 100 ms kept
    both workers from answering anything for 73 s, and a gzip bomb took each to 2 GB.
    Now each worker gives such a server its connect and read timeouts, says so in a
    WARNING naming the server's origin, and serves."""
    with (
        FaultyFhirServer(hang_seconds=60.0) as dripping,
        FaultyFhirServer() as bomb,
        JwksServer() as keys,
    ):
        keys.publish({"keys": []})
        clients = tmp_path / "clients.json"
        entry = {
            "iss": "https://ehr.example.org",
            "jwks_url": keys.url(),
            "fhir_servers": [dripping.url("trickle"), bomb.url("gzip-bomb")],
        }
        clients.write_text(json.dumps([entry]), encoding="utf-8")
        env = {
            "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
            "SPINE_CDS_TRUSTED_CLIENTS_FILE": str(clients),
        }
        log = tmp_path / "service.log"
        started = time.monotonic()
        with ServiceProcess(env=env, args=(), workers=2, log_path=log) as service:
            healthy = time.monotonic() - started
            for _ in range(4):  # each worker answers, not only the first one up
                assert requests.get(service.url + "/readyz", timeout=5).status_code == 200
        assert healthy < 20, healthy  # gunicorn's start and the warm-ups, not the drip
        said = log.read_text(encoding="utf-8", errors="replace")
        for server in (dripping, bomb):
            lines = [line for line in said.splitlines() if server.base_url in line]
            assert lines and all("WARNING" in line for line in lines), lines


def test_a_call_waiting_on_a_hung_fhir_server_does_not_hold_up_one_that_needs_none(
    fhir: FhirTestServer, tmp_path: Path
) -> None:
    """One worker: with sync workers the prefetched call would wait for the hung calls'
    budgets; with threads it is answered while they still wait."""
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    prefetched = order_request(
        "order-select",
        EXAMPLE.patient_id,
        EXAMPLE.draft_order,
        prefetch=_prefetch_of(fhir),
    )
    with (
        FaultyFhirServer(hang_seconds=5.0) as hung,
        ServiceProcess(env=env, workers=1) as service,
        ThreadPoolExecutor(max_workers=4) as pool,
    ):
        url = f"{service.url}/cds-services/{SELECT_ID}"
        requests.post(url, json=prefetched, timeout=10).raise_for_status()

        def post(body: dict[str, Any]) -> tuple[int, float]:
            response = requests.post(url, json=body, timeout=10)
            return response.status_code, time.monotonic()

        waiting = [pool.submit(post, fetching_call(hung.url("hang"))) for _ in range(3)]
        deadline = time.monotonic() + 5
        while len(hung.seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)  # every waiting call has reached the hung server
        status, answered = post(prefetched)
        results = [future.result() for future in waiting]
    assert status == 200
    assert all(code == 412 for code, _ in results)
    assert answered < min(done for _, done in results)


def _prefetch_of(fhir: FhirTestServer) -> dict[str, Any]:
    from tests.support.ehr_calls import prefetch_from_server

    return prefetch_from_server(
        fhir.base_url, {"patientId": EXAMPLE.patient_id}, SELECT_ID, fhir.auth_headers
    )
