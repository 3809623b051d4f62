"""`bash scripts/fhir-test-server.sh`: the FHIR test server on its own, on a fixed port.

The script is run as a user runs it, from another directory, and must: listen on the
port given, load the example patients, print a CDS Hooks sandbox link per patient that
names this server and the service, print a `try` command that runs as printed from that
directory, answer CORS, and stop (with its Node process) on Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from cds_service.examples import load_examples
from spine_cds_dev.fhir_server_command import act_as_the_ehr
from spine_cds_dev.service_process import ServiceProcess, free_port
from tests.support.signals import sigint_at_default

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fhir-test-server.sh"
ORDER_DATE = date(2026, 11, 26)


def port_is_free(port: int) -> bool:
    """Nothing listens there (connections in TIME_WAIT do not count)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_runs_on_the_given_port_prints_sandbox_links_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    # the service the sandbox links and the try line name, on a port of its own
    with ServiceProcess(
        env={"SPINE_CDS_DATABASE_PATH": str(tmp_path / "db.sqlite3")},
        workers=1,
        log_path=tmp_path / "service.log",
    ) as service:
        _run_the_script_and_follow_its_lines(tmp_path, service.url)


def _run_the_script_and_follow_its_lines(tmp_path: Path, service_url: str) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout's code, from anywhere
    env.pop("CDS_TOOL_CALLER_CWD", None)
    process = subprocess.Popen(
        [
            *("bash", str(SCRIPT), "--port", str(port), "--load-examples"),
            *("--date", ORDER_DATE.isoformat(), "--service-url", service_url),
        ],
        cwd=tmp_path,  # the user stands somewhere else than the checkout
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=sigint_at_default,  # Ctrl-C below reaches it in a background job too
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        out = "".join(lines)
        base = f"http://127.0.0.1:{port}/fhir"
        assert f"FHIR R4 base URL: {base}" in out, out

        # Every example patient is there, with its sandbox link.
        links = [line.strip() for line in lines if "sandbox.cds-hooks.org" in line]
        examples = load_examples(ORDER_DATE)
        assert len(links) == len(examples), out
        for example, link in zip(examples, links, strict=True):
            parts = urlsplit(link)
            assert (parts.scheme, parts.netloc, parts.path) == (
                "https",
                "sandbox.cds-hooks.org",
                "/",
            )
            assert parse_qs(parts.query) == {
                "screen": ["pama"],
                "hook": ["order-select"],
                "serviceDiscoveryURL": [f"{service_url}/cds-services"],
                "fhirServiceUrl": [base],
                "patientId": [example.patient_id],
            }
            patient = requests.get(f"{base}/Patient/{example.patient_id}", timeout=10)
            assert patient.status_code == 200

        # What the sandbox's page needs: CORS, and a CapabilityStatement for R4.
        preflight = requests.options(
            f"{base}/metadata",
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization",
            },
            timeout=10,
        )
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "*"
        metadata = requests.get(
            f"{base}/metadata", headers={"Origin": "https://sandbox.cds-hooks.org"}, timeout=10
        )
        assert metadata.json()["fhirVersion"] == "4.0.1"
        assert metadata.headers["Access-Control-Allow-Origin"] == "*"

        # The suggested command runs as printed, from the user's directory, and calls
        # the service named (not one of its own in process: an outside review).
        hint = next(line.strip() for line in lines if " try --" in line)
        assert f" try --service-url {service_url} --fhir-server {base} " in hint
        assert not hint.startswith("spine-cds ") or _spine_cds_on_path()
        tried = subprocess.run(
            hint,
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert tried.returncode == 0, hint + "\n" + tried.stdout + tried.stderr
        assert "advise-against" in tried.stdout

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # only when an assertion failed above
            os.killpg(process.pid, signal.SIGTERM)
            process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "Stopped the FHIR test server." in rest
    deadline = time.monotonic() + 10
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(port), "the FHIR test server outlived the script"


def _spine_cds_on_path() -> bool:
    import shutil

    return shutil.which("spine-cds") is not None


def test_a_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["bash", str(SCRIPT), "--port", str(port)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"port {port} is in use" in done.stderr


def test_the_try_line_of_a_server_with_a_token_says_to_set_it_and_never_prints_it() -> None:
    # An outside review followed the line of a server started with --token: 401.
    example = load_examples(ORDER_DATE)[0]
    base = "http://127.0.0.1:8090/fhir"
    lines = act_as_the_ehr(base, example, "http://127.0.0.1:9000", "tok-secret-4411")
    text = "\n".join(lines)
    assert "export FHIR_ACCESS_TOKEN=" in text
    assert "tok-secret-4411" not in text
    assert lines[-1].strip().endswith(f"--date {ORDER_DATE}")
    assert " try --service-url http://127.0.0.1:9000 --fhir-server " in lines[-1]
    open_lines = act_as_the_ehr(base, example, "http://127.0.0.1:9000", None)
    assert "FHIR_ACCESS_TOKEN" not in "\n".join(open_lines)
