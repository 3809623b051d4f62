"""Start and stop the project's FHIR R4 test server (tests/fhir_server) from Python.

The service must be tested against a real FHIR server, not a mock: real search
semantics, paging links, 401s and OperationOutcomes. The server is Medplum's
in-memory FHIR engine behind a small Node front (its code and pinned npm packages are
in the checkout's tests/fhir_server); it needs Node 22, which the npm package pinned
there ships, so the system's Node is only used to run npm. The one launcher of it, for
pytest fixtures, the benchmarks, ``spine-cds demo`` and ``spine-cds fhir-test-server``::

    with FhirTestServer(token="secret") as server:
        server.load_bundle(bundle)
        requests.get(f"{server.base_url}/Observation", headers=server.auth_headers)

Run ``python -m spine_cds_dev.fhir_server`` to keep one running by hand.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

CHECKOUT = Path(__file__).resolve().parent.parent
SERVER_DIR = CHECKOUT / "tests" / "fhir_server"
NODE_BIN = SERVER_DIR / "node_modules" / ".bin" / "node"
_INSTALLED_MARKERS = (
    NODE_BIN,
    SERVER_DIR / "node_modules" / "@medplum" / "fhir-router" / "package.json",
    SERVER_DIR / "node_modules" / "@medplum" / "definitions" / "package.json",
)
_READY = re.compile(r"listening on (http://\S+)")
START_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 600.0


class FhirServerError(RuntimeError):
    """The test server could not be installed or started, or refused a request."""


def _is_installed() -> bool:
    return all(path.exists() for path in _INSTALLED_MARKERS)


def ensure_installed() -> None:
    """Run ``npm ci`` in tests/fhir_server unless its packages are already there.

    Idempotent; a file lock keeps two processes (e.g. pytest-xdist workers) from
    installing into the same node_modules at once.
    """
    if _is_installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise FhirServerError("npm is needed to install the FHIR test server; it is not on PATH")
    with open(SERVER_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _is_installed():
                return
            done = subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
                [npm, "ci", "--no-audit", "--no-fund"],
                cwd=SERVER_DIR,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
                check=False,
            )
            if done.returncode != 0 or not _is_installed():
                raise FhirServerError(
                    f"npm ci in {SERVER_DIR} failed ({done.returncode}):\n"
                    f"{done.stdout}\n{done.stderr}"
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _outcome_text(response: requests.Response) -> str:
    """The readable part of an error response: OperationOutcome texts, else the raw body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:2000]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return _issues_text(body)
    return response.text[:2000]


def _issues_text(outcome: dict[str, Any]) -> str:
    parts = []
    for issue in outcome.get("issue", []):
        text = issue.get("diagnostics") or issue.get("details", {}).get("text") or issue.get("code")
        where = ", ".join(issue.get("expression", []))
        parts.append(f"{text} ({where})" if where else str(text))
    return "; ".join(parts)


class FhirTestServer:
    """One FHIR test server process on 127.0.0.1, as a context manager."""

    def __init__(
        self,
        token: str | None = None,
        port: int = 0,
        log_path: Path | None = None,
        cors_origin: str | None = None,
        smart: bool = True,
    ) -> None:
        self.token = token
        self.smart = smart  # the minimal SMART authorization server (/auth, launches)
        self.port = port
        self.cors_origin = cors_origin  # None: any origin (the server's default)
        self.log_path = log_path
        self.base_url = ""
        self._process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._session = requests.Session()

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers a client needs to be let in (empty when no token is set)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Install if needed, start the server and wait for its ready line."""
        if self._process is not None:
            raise FhirServerError("server already started")
        ensure_installed()
        if self.log_path is not None:
            self._log = open(self.log_path, "a+", encoding="utf-8")  # closed in stop()
        else:
            self._log = tempfile.TemporaryFile("a+", encoding="utf-8")  # closed in stop()
        args = [
            str(NODE_BIN),
            "server.mjs",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--watch-stdin",
        ]
        if self.token is not None:
            args += ["--token", self.token]
        if self.cors_origin is not None:
            args += ["--cors-origin", self.cors_origin]
        if not self.smart:
            args.append("--no-smart")
        self._ready.clear()
        self._process = subprocess.Popen(  # noqa: S603 - the pinned Node, our own server
            args,
            cwd=SERVER_DIR,
            stdin=subprocess.PIPE,  # held open: the server exits when this process goes away
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        atexit.register(self.stop)
        self._reader = threading.Thread(
            target=self._read_stdout, name="fhir-server-stdout", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._ready.wait(0.05):
            if self._process.poll() is not None or time.monotonic() > deadline:
                why = (
                    "exited"
                    if self._process.poll() is not None
                    else f"not ready after {START_TIMEOUT_S:.0f} s"
                )
                stderr = self._read_log()
                self.stop()
                raise FhirServerError(f"FHIR test server {why}; its stderr:\n{stderr}")

    def _read_stdout(self) -> None:
        """Find the ready line, then keep draining stdout so the server never blocks on it."""
        process = self._process
        if process is None or process.stdout is None:
            return
        for line in process.stdout:
            match = _READY.search(line)
            if match and not self._ready.is_set():
                self.base_url = match.group(1)
                self._ready.set()

    def _read_log(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()[-10_000:]

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); safe to call more than once."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            if self._reader is not None:
                self._reader.join(timeout=5)  # the server's stdout is at EOF now
                self._reader = None
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
            atexit.unregister(self.stop)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._session.close()

    def __enter__(self) -> FhirTestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def load_bundle(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """POST a transaction (or batch) Bundle; raise with the OperationOutcome text on failure."""
        response = self._session.post(
            self.base_url,
            json=bundle,
            headers={"Content-Type": "application/fhir+json", **self.auth_headers},
            timeout=120,
        )
        if response.status_code >= 400:
            raise FhirServerError(
                f"loading bundle failed ({response.status_code}): {_outcome_text(response)}"
            )
        result: dict[str, Any] = response.json()
        failures = []
        for i, entry in enumerate(result.get("entry", [])):
            reply = entry.get("response", {})
            if not str(reply.get("status", "200")).startswith("2"):
                failures.append(
                    f"entry {i}: {reply.get('status')} {_issues_text(reply.get('outcome', {}))}"
                )
        if failures:
            raise FhirServerError("loading bundle failed: " + "; ".join(failures))
        return result

    def reset(self) -> None:
        """Drop all data, so that test modules can share one server."""
        response = self._session.post(
            f"{self.base_url}/$reset", headers=self.auth_headers, timeout=30
        )
        if response.status_code != 200:
            raise FhirServerError(
                f"reset failed ({response.status_code}): {_outcome_text(response)}"
            )

    def create_launch(self, launch_url: str, patient: str, app_context: str | None = None) -> str:
        """A SMART launch context, as the CDS Hooks sandbox creates one for a card's
        smart link; returns the launch id to open ``launch_url?launch=..&iss=..`` with."""
        parameters: dict[str, Any] = {"patient": patient}
        if app_context is not None:
            parameters["appContext"] = app_context
        response = self._session.post(
            f"{self.base_url}/_services/smart/Launch",
            json={"launchUrl": launch_url, "parameters": parameters},
            headers=self.auth_headers,
            timeout=30,
        )
        if response.status_code != 200:
            raise FhirServerError(f"launch failed ({response.status_code}): {response.text}")
        launch_id: str = response.json()["launch_id"]
        return launch_id

    def auth_events(self) -> list[dict[str, Any]]:
        """What the SMART authorization server did (authorize, token, refusals), in order."""
        origin = self.base_url.rsplit("/fhir", 1)[0]
        response = self._session.get(f"{origin}/auth/log", timeout=30)
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()["events"]
        return events


def main() -> None:
    """Keep a server running until Ctrl-C (demo and manual testing)."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    token = os.environ.get("FHIR_TEST_SERVER_TOKEN") or None
    with FhirTestServer(token=token, port=port) as server:
        print(f"FHIR test server at {server.base_url} (Ctrl-C stops it)", flush=True)
        try:
            while server.is_running():
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
