"""Smoke test of the real thing: `spine-cds serve` under gunicorn on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

import cds_service
from cds_service.app import create_app
from spine_cds_dev.service_process import ServiceProcess
from tests.builders import EMPTY_PREFETCH, SELECT_ID, hook_request, service_request
from tests.conftest import make_settings
from tests.support.conformance import assert_conformant_response
from tests.web.test_audit_and_shadow import improving_patient_request

pytestmark = pytest.mark.integration
SANDBOX = json.loads((Path(__file__).parents[1] / "data" / "sandbox-requests.json").read_text())


def test_gunicorn_serves_discovery_hooks_feedback_and_preflight(tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=log_path) as service:
        discovery = requests.get(service.url + "/cds-services", timeout=5)
        assert discovery.status_code == 200
        assert {s["id"] for s in discovery.json()["services"]} >= {SELECT_ID}

        page_load = SANDBOX["imaging_tab_page_load_order_select"]
        response = requests.post(
            f"{service.url}/cds-services/{SELECT_ID}", json=page_load, timeout=5
        )
        assert response.status_code == 200
        assert response.json() == {"cards": []}

        body = hook_request("order-select", [service_request("o1")], prefetch=EMPTY_PREFETCH)
        response = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=5)
        assert response.status_code == 200
        assert_conformant_response(response.json())

        bad = requests.post(
            f"{service.url}/cds-services/{SELECT_ID}",
            data=b"{",
            timeout=5,
            headers={"Content-Type": "application/json"},
        )
        assert bad.status_code == 400

        preflight = requests.options(
            f"{service.url}/cds-services/{SELECT_ID}",
            headers={
                "Origin": "https://sandbox.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=5,
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    log = log_path.read_text()
    assert f"serving http://127.0.0.1:{service.port}/cds-services" in log
    assert "effective configuration" in log
    assert "DEVELOPMENT MODE" in log
    assert f"next: curl {service.url}/cds-services (discovery); a hook call, in" in log
    assert f"spine-cds try --service-url {service.url} --fhir-server" in log
    assert "any web page open in a browser here can call this service" in log
    assert service.process is not None and service.process.returncode is not None


def test_shadow_mode_is_said_at_startup_and_on_each_decided_call(tmp_path: Path) -> None:
    """An outside review: shadow mode showed only inside the effective configuration's
    one line, and the request line named a decision no clinician saw."""
    log_path = tmp_path / "service.log"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_SHADOW_MODE": "true",
    }
    body, _ = improving_patient_request(create_app(make_settings(tmp_path)))
    with ServiceProcess(env=env, log_path=log_path, workers=1) as service:
        answer = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=10)
        assert answer.status_code == 200 and answer.json() == {"cards": []}
    log = log_path.read_text()
    assert "WARNING: SHADOW MODE: every call is evaluated and audited; no card is returned" in log
    (line,) = [line for line in log.splitlines() if f"path=/cds-services/{SELECT_ID}" in line]
    assert line.endswith(" decision=advise-against shadow=1")


def test_metrics_add_up_across_gunicorn_workers(tmp_path: Path) -> None:
    """A scrape reaches one worker; multiprocess mode must still count every request."""
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")}
    with ServiceProcess(env=env, workers=2) as service:
        body = SANDBOX["imaging_tab_page_load_order_select"]
        session = requests.Session()
        for _ in range(20):
            fresh = requests.post(f"{service.url}/cds-services/{SELECT_ID}", json=body, timeout=5)
            assert fresh.status_code == 200
        text = session.get(service.url + "/metrics", timeout=5).text
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("spine_cds_requests_total{")
        and 'endpoint="hooks.invoke"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 20


def test_with_log_format_json_every_line_is_json_startup_lines_included(
    tmp_path: Path,
) -> None:
    """docs/deployment.md: one JSON object per line, the development-mode warning and the
    effective configuration included (a pipeline needs those most as records)."""
    log_path = tmp_path / "service.log"
    env = {
        "SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3"),
        "SPINE_CDS_LOG_FORMAT": "json",
        "SPINE_CDS_LOG_LEVEL": "warning",  # the startup lines are written all the same
    }
    with ServiceProcess(env=env, log_path=log_path, workers=1) as service:
        assert requests.get(service.url + "/cds-services", timeout=5).status_code == 200
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # fails on the first plain line
    by_message = {r["message"]: r for r in records}
    serving = f"spine-cds {cds_service.__version__} serving {service.url}/cds-services"
    assert by_message[serving]["level"] == "INFO"
    configuration = by_message["effective configuration"]["configuration"]
    assert configuration["dev_mode"] is True and configuration["log_format"] == "json"
    warning = next(r for r in records if r["message"].startswith("DEVELOPMENT MODE:"))
    assert warning["level"] == "WARNING" and warning["logger"] == "cds_service.serve"
