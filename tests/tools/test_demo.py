"""`spine-cds demo`: the real FHIR test server and the real gunicorn service, started,
used and stopped by one command; nothing it started may outlive it.

The demo prints the pid of each server it starts; the tests check afterwards that
neither process, nor any process of the service's group (its gunicorn workers), is left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner

import spine_cds_dev.demo as demo_module
from cds_service.cli import main
from cds_service.examples import load_examples
from cds_service.tools.errors import ServiceError
from tests.support.signals import sigint_at_default

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
ORDER_DATE = date(2026, 11, 26)
STARTED = re.compile(r"(FHIR test server|service) at (\S+) \(pid (\d+)\)")
PROC = Path("/proc")


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cds_service", "demo", "--date", ORDER_DATE.isoformat(), *args]


def started(output: str) -> dict[str, tuple[str, int]]:
    """What the demo says it started: name -> (URL, pid)."""
    found = {m.group(1): (m.group(2), int(m.group(3))) for m in STARTED.finditer(output)}
    assert set(found) == {"FHIR test server", "service"}, output
    return found


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name; None when there is no such process."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"  # a zombie has stopped already


def group_alive(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (the service's master and workers)."""
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def assert_all_gone(servers: dict[str, tuple[str, int]]) -> None:
    fhir_pid = servers["FHIR test server"][1]
    service_pid = servers["service"][1]
    deadline = time.monotonic() + 10  # stop() waited already; this only absorbs /proc lag
    while time.monotonic() < deadline:
        if not alive(fhir_pid) and not alive(service_pid) and not group_alive(service_pid):
            return
        time.sleep(0.1)
    raise AssertionError(
        f"left running: FHIR server {alive(fhir_pid)}, service {alive(service_pid)}, "
        f"service group {group_alive(service_pid)}"
    )


def squashed(text: str) -> str:
    """Text without any whitespace, so that wrapped lines compare with the original."""
    return "".join(text.split())


@pytest.fixture(autouse=True)
def needs_proc() -> None:
    if not PROC.is_dir():
        pytest.skip("checking for leftover processes needs /proc")


def test_demo_shows_each_example_with_its_story_and_stops_everything() -> None:
    done = subprocess.run(
        demo_command(), cwd=ROOT, capture_output=True, text=True, timeout=200, check=False
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    servers = started(out)
    examples = load_examples(ORDER_DATE)
    for example in examples:
        assert f"{example.key} · {example.patient_id} · {example.title}" in out
        assert squashed(f"Story: {example.story}") in squashed(out)
        assert f"Expected {example.expected}, got {example.expected}: as expected." in out
    with_card = [e for e in examples if e.expected != "no-card"]
    assert out.count("── Card 1 of 1 ──") == len(with_card)
    assert out.count("No card.") == len(examples) - len(with_card)
    assert f"{len(examples)} patient(s): {len(examples)} decision(s) as expected" in out
    assert "Stopped everything the demo started." in out
    assert_all_gone(servers)


def test_keep_running_serves_until_ctrl_c_then_stops_both() -> None:
    process = subprocess.Popen(
        demo_command("--keep-running", "--patient", "e01"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=sigint_at_default,  # Ctrl-C below reaches it in a background job too
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        head = "".join(lines)
        assert "Both servers keep running until Ctrl-C" in head, head
        servers = started(head)
        # Both really serve: the discovery document and the loaded patients.
        service_url = servers["service"][0].removesuffix("/cds-services")
        fhir_url = servers["FHIR test server"][0]
        assert requests.get(f"{service_url}/cds-services", timeout=10).status_code == 200
        patient = requests.get(f"{fhir_url}/Patient/spine-cds-e3", timeout=10)
        assert patient.status_code == 200 and patient.json()["id"] == "spine-cds-e3"
        # A CDS Hooks sandbox link for the patient, with both servers in it.
        link = next(line.strip() for line in lines if "sandbox.cds-hooks.org" in line)
        query = parse_qs(urlsplit(link).query)
        assert query == {
            "screen": ["pama"],
            "hook": ["order-select"],
            "serviceDiscoveryURL": [f"{service_url}/cds-services"],
            "fhirServiceUrl": [fhir_url],
            "patientId": ["spine-cds-e1"],
        }
        # The command the demo suggests runs as printed, from where the demo was started.
        hint = next(line.strip() for line in lines if " try --" in line)
        assert hint.startswith(".venv/bin/spine-cds try ") or hint.startswith("spine-cds try ")
        tried = subprocess.run(
            hint,
            shell=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's code
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert tried.returncode == 0, tried.stdout + tried.stderr
        assert "advise-against" in tried.stdout

        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:  # only when an assertion failed above
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "Stopped everything the demo started." in rest
    assert_all_gone(servers)


def test_an_error_after_starting_still_stops_both(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_hook(*args: object) -> None:
        raise ServiceError("the service offers no order-select service (injected)")

    monkeypatch.setattr(demo_module, "find_service", no_such_hook)
    result = CliRunner().invoke(main, ["demo", "--patient", "e01-improving"])
    assert result.exit_code == 4, result.output
    assert "offers no order-select service (injected)" in result.output
    assert "Stopped everything the demo started." in result.output
    assert_all_gone(started(result.output))


def test_unknown_patient_starts_nothing() -> None:
    result = CliRunner().invoke(main, ["demo", "--patient", "e99-nobody"])
    assert result.exit_code == 2
    assert "no such example" in result.output and "e01-improving" in result.output
    assert "Starting" not in result.output


def test_outside_a_checkout_it_says_what_it_needs(tmp_path: Path) -> None:
    for package in ("cds_service", "fhir_mappers"):
        shutil.copytree(ROOT / package, tmp_path / package)
    done = subprocess.run(
        [sys.executable, "-m", "cds_service", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the demo runs from a source checkout" in done.stderr
    assert "Starting" not in done.stdout
