"""Every command sandbox.md and trend-app.md give that can run offline, run as printed.

test_readme_commands.py checks that such commands exist and take the options given;
here they are run, from the checkout, in their documents' order of use: the servers
(the service in development mode, both ways the docs start it; the FHIR test server with
the example patients, SMART on and off) on free ports instead of 8080/8090 (the only
change made to a line), then the one-shot commands against them, each of which must
succeed. What needs the network or a browser (the public sandbox, a local copy of it)
is not run; ``bash scripts/build-trend-app.sh`` is run by test_trend_app_build.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cds_service.examples import example_keys
from spine_cds_dev.service_process import free_port
from tests.support.signals import sigint_at_default
from tests.test_readme_commands import shell_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "sandbox.md", ROOT / "docs" / "trend-app.md"]
# Lines not run here, and why (anything else must be run below: the test says so).
NOT_RUN = {"bash scripts/build-trend-app.sh": "run by tests/integration/test_trend_app_build.py"}


def commands() -> list[str]:
    return [line for doc in DOCS for line in shell_lines(doc)]


class Running:
    """Background commands started here, each in its own session; stopped by their ids."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, line: str) -> Path:
        log = self.tmp_path / f"cmd{len(self.processes)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPINE_CDS_")}
        env["PYTHONPATH"] = str(ROOT)
        # A database of its own: run from the checkout, the service would otherwise write
        # its audit rows into the checkout's ./spine-cds.sqlite3, a developer's database.
        env["SPINE_CDS_DATABASE_PATH"] = str(self.database(len(self.processes)))
        with log.open("wb") as out:
            self.processes.append(
                subprocess.Popen(  # the documented command line, as printed
                    line,
                    shell=True,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=sigint_at_default,  # stop() sends Ctrl-C, even from a background job
                )
            )
        return log

    def database(self, index: int) -> Path:
        """The database of the index-th command started here."""
        return self.tmp_path / f"cmd{index}.sqlite3"

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the docs say
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    started = Running(tmp_path)
    try:
        yield started
    finally:
        started.stop()


def wait_for(url: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer; log:\n{log.read_text(errors='replace')[-3000:]}")


def wait_for_text(log: Path, text: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise AssertionError(f"{text!r} not printed; log:\n{log.read_text(errors='replace')[-3000:]}")


def on_ports(line: str, service: int, fhir: int) -> str:
    return line.replace("8080", str(service)).replace("8090", str(fhir))


def test_every_offline_command_of_sandbox_and_trend_app_runs(running: Running) -> None:
    ran: set[str] = set()
    lines = commands()
    service, fhir, service2, fhir_open = free_port(), free_port(), free_port(), free_port()

    # The servers: the service (serve.sh, and spine-cds serve --dev), the FHIR test server.
    for line in dict.fromkeys(lines):
        if line in ("bash scripts/serve.sh", ".venv/bin/spine-cds serve --dev"):
            port = service if line == "bash scripts/serve.sh" else service2
            log = running.start(f"{line} --port {port}")
            wait_for(f"http://127.0.0.1:{port}/health", log)
            assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["devMode"]
            assert running.database(len(running.processes) - 1).exists()  # not the checkout's
            ran.add(line)
        elif line.startswith("bash scripts/fhir-test-server.sh"):
            port = fhir_open if "--no-smart" in line else fhir
            log = running.start(on_ports(line, service, port))
            wait_for_text(log, "Press Ctrl-C to stop it.")
            text = log.read_text(errors="replace")
            last = f"spine-cds-e{len(example_keys())}"
            assert last in text  # every stored example, as the docs promise
            smart = requests.get(
                f"http://127.0.0.1:{port}/fhir/.well-known/smart-configuration", timeout=5
            )
            if "--no-smart" in line:
                assert "SMART off" in text and smart.status_code != 200
            else:
                assert "SMART launch and authorization on" in text
                assert smart.status_code == 200
            ran.add(line)

    # The one-shot commands, against those servers.
    for line in dict.fromkeys(lines):
        if line in ran or line in NOT_RUN:
            continue
        result = subprocess.run(  # the documented command line, as printed
            on_ports(line, service, fhir),
            shell=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
        if shlex.split(line)[0] == "curl":  # the trend app's launch, by hand
            launch_id = json.loads(result.stdout)["launch_id"]
            page = requests.get(
                f"http://127.0.0.1:{service}/trend/launch",
                params={"launch": launch_id, "iss": f"http://127.0.0.1:{fhir}/fhir"},
                timeout=10,
            )
            assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
        ran.add(line)

    # The open-server launch URL of trend-app.md, against the --no-smart server.
    page = requests.get(
        f"http://127.0.0.1:{service}/trend/launch",
        params={"iss": f"http://127.0.0.1:{fhir_open}/fhir", "patientId": "spine-cds-e1"},
        timeout=10,
    )
    assert page.status_code == 200
    assert set(lines) == ran | set(NOT_RUN), set(lines) - ran - set(NOT_RUN)
