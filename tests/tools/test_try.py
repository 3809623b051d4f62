"""`spine-cds try`: the EHR's part against the real FHIR test server, with the service
under gunicorn and in process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from cds_service.cli import main
from cds_service.datasources import OPTIONAL_KEYS
from cds_service.discovery import load_discovery
from cds_service.examples import load_example
from cds_service.tools.render import render_cards
from spine_cds_dev.fhir_server import FhirTestServer
from spine_cds_dev.service_process import ServiceProcess, free_port
from tests.support.conformance import assert_conformant_response
from tests.support.faulty_fhir_server import FaultyFhirServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

TOKEN = "try-test-token"
ORDER_DATE = date(2026, 3, 2)
LUMBAR_MRI = "http://www.ama-assn.org/go/cpt|72158"
SELECT_ID = "spine-imaging-followup-select"
IN_PROCESS = "in-process"


@pytest.fixture(scope="module")
def fhir() -> Iterator[FhirTestServer]:
    """One FHIR server for the module, loaded with the examples by the command itself."""
    with FhirTestServer(token=TOKEN) as server:
        result = run(
            "load-examples",
            "--fhir-server",
            server.base_url,
            "--token",
            TOKEN,
            "--date",
            ORDER_DATE.isoformat(),
        )
        assert result.exit_code == 0, result.output
        yield server


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("service")
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3")}
    with ServiceProcess(env=env, log_path=tmp / "service.log", workers=1) as running:
        yield running


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def try_args(
    fhir_url: str,
    patient: str,
    *extra: str,
    token: str | None = TOKEN,
    order: str = LUMBAR_MRI,
    service_url: str | None = None,
) -> list[str]:
    args = ["try", "--fhir-server", fhir_url, "--patient", patient, "--order", order]
    if token:
        args += ["--token", token]
    if service_url:
        args += ["--service-url", service_url]
    return [*args, *extra]


@pytest.fixture(params=["gunicorn", IN_PROCESS])
def service_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == IN_PROCESS:
        return None
    running: ServiceProcess = request.getfixturevalue("service")
    return running.url


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "no-prefetch"])
@pytest.mark.parametrize(
    ("patient", "decision", "indicator", "rating"),
    [
        ("spine-cds-e1", "advise-against", "WARNING", "not-appropriate"),
        ("spine-cds-e2", "support-urgent", "CRITICAL", "appropriate"),
    ],
)
def test_try_shows_the_decision(
    fhir: FhirTestServer,
    service_url: str | None,
    prefetch: bool,
    patient: str,
    decision: str,
    indicator: str,
    rating: str,
) -> None:
    extra = ["--date", ORDER_DATE.isoformat()] + ([] if prefetch else ["--no-prefetch"])
    result = run(*try_args(fhir.base_url, patient, *extra, service_url=service_url))
    assert result.exit_code == 0, result.output
    assert "answered 200" in result.output
    assert f"Card 1 of 1 ── {indicator}" in result.output
    assert f"Decision:    {decision}" in result.output
    assert f"PAMA rating: ServiceRequest/spine-cds-try-order: {rating}" in result.output
    assert ("no prefetch sent" in result.output) is not prefetch
    if decision == "advise-against":
        assert "Suggestions:" in result.output and "(recommended)" in result.output
    else:
        assert "Why:\n  - Neurologic deficit recorded: cauda equina syndrome" in result.output


def test_json_prints_the_exchange_and_the_text_renders_the_same_cards(
    fhir: FhirTestServer, service: ServiceProcess
) -> None:
    args = try_args(fhir.base_url, "spine-cds-e1", "--date", ORDER_DATE.isoformat())
    raw = run(*args, "--service-url", service.url, "--json")
    assert raw.exit_code == 0, raw.output
    exchange = json.loads(raw.stdout)
    request, response = exchange["request"], exchange["response"]
    assert exchange["serviceId"] == SELECT_ID
    assert request["hook"] == "order-select"
    assert request["fhirServer"] == fhir.base_url
    assert request["fhirAuthorization"]["access_token"] == "***"
    assert TOKEN not in raw.stdout
    assert request["context"]["selections"] == ["ServiceRequest/spine-cds-try-order"]
    assert request["context"]["draftOrders"]["entry"][0]["resource"]["authoredOn"].startswith(
        ORDER_DATE.isoformat()
    )
    # Prefetch: every template of the service, each a search Bundle of this patient's data.
    assert set(request["prefetch"]) == set(load_discovery().services[SELECT_ID].prefetch)
    # e1 has no antibiotic order: that search is an empty Bundle
    assert request["prefetch"]["antibiotics"]["total"] == 0
    # the Patient is a read (its birthDate): the resource itself
    assert request["prefetch"]["patient"]["id"] == "spine-cds-e1"
    for key, bundle in request["prefetch"].items():
        if key == "patient":
            continue
        assert bundle["resourceType"] == "Bundle"
        assert bundle.get("entry") or key in (
            "antibiotics",
            "procedures",
            "imaging_studies",
            "imaging_reports",
        ), key
        for entry in bundle.get("entry", []):
            assert entry["resource"]["subject"]["reference"] == "Patient/spine-cds-e1"
    crp = request["prefetch"]["crp"]["entry"]
    assert {e["resource"]["code"]["coding"][0]["code"] for e in crp} == {"1988-5"}
    assert response["status"] == 200
    assert_conformant_response(response["body"])
    card = response["body"]["cards"][0]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "advise-against"

    text = run(*args, "--service-url", service.url)
    assert text.exit_code == 0, text.output
    assert " ".join(card["summary"].split()) in " ".join(text.output.split())
    for suggestion in card["suggestions"]:
        assert suggestion["label"] in text.output
    assert click.unstyle(render_cards(response["body"])) in text.output


def test_the_prefetch_line_counts_a_read_patient_as_one(fhir: FhirTestServer) -> None:
    """The Patient is read, not searched: no Bundle, no entries. An integration review
    read ``patient 0`` as "the Patient read found nothing"."""
    result = run(*try_args(fhir.base_url, "spine-cds-e1", "--date", ORDER_DATE.isoformat()))
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Patient: ")]
    counts = dict(part.rsplit(" ", 1) for part in line.split("; prefetch: ")[1].split(", "))
    assert counts["patient"] == "1"
    assert counts["antibiotics"] == "0"  # an empty search Bundle is still 0
    assert int(counts["crp"]) > 0


def test_json_without_prefetch_sends_none(fhir: FhirTestServer) -> None:
    args = try_args(
        fhir.base_url, "spine-cds-e2", "--no-prefetch", "--json", "--hook", "order-sign"
    )
    result = run(*args, "--date", ORDER_DATE.isoformat())
    assert result.exit_code == 0, result.output
    exchange = json.loads(result.stdout)
    assert "prefetch" not in exchange["request"]
    assert "selections" not in exchange["request"]["context"]
    assert exchange["serviceId"] == "spine-imaging-followup-sign"
    body = exchange["response"]["body"]
    assert body["cards"][0]["extension"]["spine-cds-assessment"]["recommendation"] == (
        "support-urgent"
    )


def test_order_from_a_service_request_file(fhir: FhirTestServer, tmp_path: Path) -> None:
    order = load_example("e01-improving", ORDER_DATE).draft_order
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order), encoding="utf-8")
    result = run(*try_args(fhir.base_url, "spine-cds-e1", "--json", order=str(path)))
    assert result.exit_code == 0, result.output
    exchange = json.loads(result.stdout)
    sent = exchange["request"]["context"]["draftOrders"]["entry"][0]["resource"]
    assert sent == order  # the file's own id and authoredOn are kept
    assert exchange["request"]["context"]["selections"] == [f"ServiceRequest/{order['id']}"]
    card = exchange["response"]["body"]["cards"][0]
    assert card["extension"]["spine-cds-assessment"]["recommendation"] == "advise-against"

    # A file order without authoredOn or id gets them, as an EHR's draft has them.
    bare = {k: v for k, v in order.items() if k not in {"authoredOn", "id"}}
    path.write_text(json.dumps(bare), encoding="utf-8")
    result = run(*try_args(fhir.base_url, "spine-cds-e1", "--json", order=str(path)))
    assert result.exit_code == 0, result.output
    sent = json.loads(result.stdout)["request"]["context"]["draftOrders"]["entry"][0]["resource"]
    assert sent["id"] and sent["authoredOn"][:10] == date.today().isoformat()
    result = run(
        *try_args(fhir.base_url, "spine-cds-e1", "--json", "--date", "2026-02-20", order=str(path))
    )
    sent = json.loads(result.stdout)["request"]["context"]["draftOrders"]["entry"][0]["resource"]
    assert sent["authoredOn"].startswith("2026-02-20T12:00:00")


# --- errors -------------------------------------------------------------------------------


def test_missing_patient(fhir: FhirTestServer) -> None:
    result = run(*try_args(fhir.base_url, "no-such-patient"))
    assert result.exit_code == 3
    assert "'no-such-patient' was not found" in result.output and "404" in result.output


def test_a_wrong_base_url_is_not_called_a_missing_patient(fhir: FhirTestServer) -> None:
    wrong = fhir.base_url.rstrip("/").removesuffix("/fhir") + "/wrong"
    result = run(*try_args(wrong, "spine-cds-e1"))
    assert result.exit_code == 3
    assert f"{wrong} is not a FHIR server's base URL" in result.output
    assert "was not found" not in result.output


def test_wrong_token(fhir: FhirTestServer) -> None:
    result = run(*try_args(fhir.base_url, "spine-cds-e1", token="wrong-token"))
    assert result.exit_code == 3
    assert "refused the access token" in result.output and "401" in result.output


def test_unreachable_fhir_server() -> None:
    closed = f"http://127.0.0.1:{free_port()}/fhir"
    result = run(*try_args(closed, "spine-cds-e1"))
    assert result.exit_code == 3
    assert f"cannot reach the FHIR server at {closed}" in result.output


def test_unreachable_service(fhir: FhirTestServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = run(*try_args(fhir.base_url, "spine-cds-e1", service_url=closed))
    assert result.exit_code == 4
    assert f"cannot reach the service at {closed}" in result.output


def test_service_answering_412_shows_its_reasons(service: ServiceProcess) -> None:
    # An EHR FHIR server too slow for the service's half-second budget: try (which waits
    # for it) finds the patient, but the service, given no prefetch, cannot get the data.
    with FaultyFhirServer(slow_seconds=1.0) as slow:
        args = try_args(slow.url("slow"), "p1", "--no-prefetch", token=None)
        result = run(*args, "--service-url", service.url)
    assert result.exit_code == 4
    assert "the service answered 412" in result.output
    for key in load_discovery().services[SELECT_ID].prefetch:
        if key in OPTIONAL_KEYS:  # the answer goes ahead without it: not a reason for 412
            assert f"  {key}:" not in result.output
        else:
            assert f"  {key}: not prefetched; fetching it failed" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--order", "72158"], "expected SYSTEM|CODE"),
        (["--order", LUMBAR_MRI, "--date", "tomorrow"], "--date 'tomorrow'"),
        (["--order", LUMBAR_MRI, "--hook", "patient-view"], "patient-view"),
    ],
)
def test_usage_errors(fhir: FhirTestServer, args: list[str], message: str) -> None:
    base = ["try", "--fhir-server", fhir.base_url, "--patient", "spine-cds-e1", "--token", TOKEN]
    result = run(*base, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_file_order_for_another_patient_is_refused(fhir: FhirTestServer, tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    path.write_text(json.dumps(load_example("e02-cauda-equina", ORDER_DATE).draft_order))
    result = run(*try_args(fhir.base_url, "spine-cds-e1", order=str(path)))
    assert result.exit_code == 2
    assert "Patient/spine-cds-e2" in result.output


@pytest.fixture(scope="module")
def shadow_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("shadow")
    env = {"SPINE_CDS_DATABASE_PATH": str(tmp / "db.sqlite3"), "SPINE_CDS_SHADOW_MODE": "true"}
    with ServiceProcess(env=env, log_path=tmp / "service.log", workers=1) as running:
        yield running


def test_a_shadow_mode_service_is_named_as_such(
    fhir: FhirTestServer, shadow_service: ServiceProcess
) -> None:
    # Cauda equina: the service would answer an urgent card, but a shadow pilot shows none.
    result = run(*try_args(fhir.base_url, "spine-cds-e2", service_url=shadow_service.url))
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "The service is in SHADOW MODE: it shows no cards." in flat
    assert "No card shown: the service runs in SHADOW MODE" in flat
    assert "does not apply" not in flat


def test_a_service_not_in_shadow_mode_says_it_does_not_apply(
    fhir: FhirTestServer, service: ServiceProcess
) -> None:
    result = run(*try_args(fhir.base_url, "spine-cds-e7", service_url=service.url))
    assert result.exit_code == 0, result.output
    assert "SHADOW" not in result.output
    assert "No card." in result.output


def test_timings_say_what_they_measure(fhir: FhirTestServer, service: ServiceProcess) -> None:
    in_process = run(*try_args(fhir.base_url, "spine-cds-e1", "--no-prefetch"))
    assert in_process.exit_code == 0, in_process.output
    assert "(in-process timing: the hook call alone, after a warm-up call" in in_process.output
    remote = run(*try_args(fhir.base_url, "spine-cds-e1", service_url=service.url))
    assert remote.exit_code == 0, remote.output
    assert "(round trip from this machine, network included" in remote.output


def test_the_in_process_call_is_timed_after_a_warm_up(fhir: FhirTestServer) -> None:
    """The first call in a fresh process pays for imports and caches; the timed call comes
    after a warm-up and must be within the service's budget even without prefetch (the
    service's own FHIR queries to the local test server included)."""
    result = run(*try_args(fhir.base_url, "spine-cds-e3", "--no-prefetch", "--json"))
    assert result.exit_code == 0, result.output
    plain = run(*try_args(fhir.base_url, "spine-cds-e3", "--no-prefetch"))
    line = next(x for x in plain.output.splitlines() if x.startswith("Service: "))
    took_ms = float(line.split(" in ", 1)[1].split(" ms", 1)[0])
    assert took_ms < 450, line
