"""`spine-cds load-examples` against the real FHIR test server (token mode)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.examples import load_examples
from cds_service.tools.fhir_http import FhirEndpoint
from cds_service.tools.load_examples import load_into
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TOKEN = "load-examples-test-token"
ORDER_DATE = date(2026, 3, 2)


@pytest.fixture(scope="module")
def server() -> Iterator[FhirTestServer]:
    with FhirTestServer(token=TOKEN) as running:
        yield running


@pytest.fixture
def fhir(server: FhirTestServer) -> FhirTestServer:
    server.reset()
    return server


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def stored(server: FhirTestServer, query: str) -> dict[str, Any]:
    response = requests.get(f"{server.base_url}/{query}", headers=server.auth_headers, timeout=10)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def counts(server: FhirTestServer, patient_id: str) -> dict[str, int]:
    return {
        rtype: stored(server, f"{rtype}?patient={patient_id}&_count=1000")["total"]
        for rtype in ("Condition", "Observation")
    }


def test_loads_every_example_and_says_what_each_demonstrates(fhir: FhirTestServer) -> None:
    args = ("load-examples", "--fhir-server", fhir.base_url, "--token", TOKEN)
    result = run(*args, "--date", ORDER_DATE.isoformat())
    assert result.exit_code == 0, result.output
    examples = load_examples(ORDER_DATE)
    for example in examples:
        assert example.patient_id in result.output
        assert example.title in result.output and example.why in result.output
        assert stored(fhir, f"Patient/{example.patient_id}")["id"] == example.patient_id
        held = [e["resource"]["resourceType"] for e in example.bundle["entry"]]
        expected = {t: held.count(t) for t in ("Condition", "Observation")}
        assert counts(fhir, example.patient_id) == expected
    # Dates are placed for the order date: E1's last CRP is the day before its order.
    crp = stored(fhir, "Observation?patient=spine-cds-e1&code=http://loinc.org|1988-5")
    latest = max(e["resource"]["effectiveDateTime"][:10] for e in crp["entry"])
    assert latest == "2026-03-01"

    # Loading again leaves one copy of everything.
    again = run(*args, "--date", ORDER_DATE.isoformat())
    assert again.exit_code == 0, again.output
    for example in examples:
        held = [e["resource"]["resourceType"] for e in example.bundle["entry"]]
        assert counts(fhir, example.patient_id)["Observation"] == held.count("Observation")


def test_big_bundles_go_in_parts(fhir: FhirTestServer) -> None:
    with FhirEndpoint(fhir.base_url, TOKEN) as endpoint:
        loaded = list(load_into(endpoint, load_examples(ORDER_DATE), max_entries=3))
    e1 = next(x for x in loaded if x.example.patient_id == "spine-cds-e1")
    assert e1.transactions == -(-e1.resources // 3) > 1
    held = [e["resource"]["resourceType"] for e in e1.example.bundle["entry"]]
    assert counts(fhir, "spine-cds-e1")["Observation"] == held.count("Observation")


def test_wrong_token_is_a_clear_401(fhir: FhirTestServer) -> None:
    result = run("load-examples", "--fhir-server", fhir.base_url, "--token", "wrong")
    assert result.exit_code == 3
    assert "refused the access token" in result.output and "401" in result.output
    assert stored(fhir, "Patient?_count=1")["total"] == 0


def test_missing_token_says_to_pass_one(fhir: FhirTestServer) -> None:
    result = run("load-examples", "--fhir-server", fhir.base_url)
    assert result.exit_code == 3
    assert "needs an access token" in result.output and "--token" in result.output


def test_token_from_the_environment_keeps_it_off_the_command_line(fhir: FhirTestServer) -> None:
    result = CliRunner(env={"FHIR_ACCESS_TOKEN": TOKEN}).invoke(
        main, ["load-examples", "--fhir-server", fhir.base_url], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert stored(fhir, "Patient/spine-cds-e1")["id"] == "spine-cds-e1"


def test_unreachable_server() -> None:
    closed = f"http://127.0.0.1:{free_port()}/fhir"
    result = run("load-examples", "--fhir-server", closed)
    assert result.exit_code == 3
    assert f"cannot reach the FHIR server at {closed}" in result.output


def test_a_refused_transaction_shows_the_servers_operation_outcome(fhir: FhirTestServer) -> None:
    # A common slip: a resource endpoint given as the base URL. The server refuses the
    # transaction Bundle there with an OperationOutcome, which the user must see.
    wrong_base = f"{fhir.base_url}/Patient"
    bundle = load_examples(ORDER_DATE)[0].bundle
    direct = requests.post(
        wrong_base,
        json=bundle,
        headers={"Content-Type": "application/fhir+json", **fhir.auth_headers},
        timeout=10,
    )
    assert direct.status_code >= 400
    issue = direct.json()["issue"][0]
    server_text = issue.get("diagnostics") or issue["details"]["text"]

    result = run("load-examples", "--fhir-server", wrong_base, "--token", TOKEN)
    assert result.exit_code == 3
    assert f"refused the transaction ({direct.status_code})" in result.output
    assert server_text in result.output


def test_a_url_that_is_not_a_base_url_is_a_usage_error() -> None:
    result = run("load-examples", "--fhir-server", "ftp://127.0.0.1/fhir")
    assert result.exit_code == 2
    assert "http(s)" in result.output
